//go:build linux

package udpbatch

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestArrivalParsesKernelTimestamp(t *testing.T) {
	ts := unix.NsecToTimespec(time.Unix(1700000000, 123).UnixNano())
	tsLen := int(unsafe.Sizeof(ts))
	// Another control message first, as a kernel with more options on
	// might send, then the timestamp.
	oob := make([]byte, unix.CmsgSpace(4)+unix.CmsgSpace(tsLen))
	other := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	other.Level, other.Type = unix.SOL_IP, unix.IP_TTL
	other.SetLen(unix.CmsgLen(4))
	stamp := oob[unix.CmsgSpace(4):]
	h := (*unix.Cmsghdr)(unsafe.Pointer(&stamp[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS
	h.SetLen(unix.CmsgLen(tsLen))
	copy(stamp[unix.CmsgLen(0):], unsafe.Slice((*byte)(unsafe.Pointer(&ts)), tsLen))

	if got := arrival(oob); !got.Equal(time.Unix(1700000000, 123)) {
		t.Fatalf("arrival = %v", got)
	}
	if got := arrival(oob[:unix.CmsgSpace(4)+unix.CmsgLen(0)+4]); !got.IsZero() {
		t.Fatalf("truncated control message gave %v", got)
	}
	if got := arrival(oob[:unix.SizeofCmsghdr-1]); !got.IsZero() {
		t.Fatalf("a partial header gave %v", got)
	}
	if got := arrival(nil); !got.IsZero() {
		t.Fatal("no control message gave a time")
	}
}

// TestSegmentControlMessage checks the UDP_SEGMENT control message as the
// kernel parses it.
func TestSegmentControlMessage(t *testing.T) {
	oob := make([]byte, writeOOBSpace)
	putSegmentSize(oob, 1028)
	h, data, _, err := unix.ParseOneSocketControlMessage(oob)
	if err != nil {
		t.Fatal(err)
	}
	if h.Level != unix.SOL_UDP || h.Type != unix.UDP_SEGMENT || len(data) != 2 || binary.NativeEndian.Uint16(data) != 1028 {
		t.Fatalf("control message %+v with data % x", h, data)
	}
}

// TestReadBatchGivesSendersAndArrivalTimes reads datagrams from two
// senders in batches: each comes with its sender's address, its length and
// an arrival time the kernel took when it arrived; one too long for its
// buffer is cut to the buffer's length.
func TestReadBatchGivesSendersAndArrivalTimes(t *testing.T) {
	c := listenOne(t, Options{})
	s1, s2 := dial(t, c), dial(t, c)
	before := time.Now()
	const perSender = 20
	for i := 0; i < perSender; i++ {
		s1.Write(bytes.Repeat([]byte{byte(i)}, 10+i))
		s2.Write(bytes.Repeat([]byte{byte(100 + i)}, 50))
	}
	s1.Write(make([]byte, 300)) // longer than the buffers

	ds := make([]Datagram, 8)
	for i := range ds {
		ds[i].Buf = make([]byte, 200)
	}
	from1 := s1.LocalAddr().(*net.UDPAddr).AddrPort()
	from2 := s2.LocalAddr().(*net.UDPAddr).AddrPort()
	var got1, got2, reads int
	deadline := time.Now().Add(5 * time.Second)
	for got1+got2 < 2*perSender+1 {
		if time.Now().After(deadline) {
			t.Fatalf("read %d and %d datagrams", got1, got2)
		}
		c.uc.SetReadDeadline(deadline)
		n, err := c.ReadBatch(ds)
		if err != nil {
			t.Fatal(err)
		}
		reads++
		for _, d := range ds[:n] {
			if d.At.Before(before.Add(-time.Second)) || d.At.After(time.Now()) {
				t.Fatalf("arrival time %v not between %v and now", d.At, before)
			}
			switch d.From {
			case from1:
				switch {
				case got1 == perSender:
					if d.N != len(d.Buf) {
						t.Fatalf("an oversized datagram read as %d bytes, want %d", d.N, len(d.Buf))
					}
				case d.N != 10+got1 || d.Buf[0] != byte(got1):
					t.Fatalf("datagram %d from sender 1: %d bytes of %d", got1, d.N, d.Buf[0])
				}
				got1++
			case from2:
				if d.N != 50 || d.Buf[0] != byte(100+got2) {
					t.Fatalf("datagram %d from sender 2: %d bytes of %d", got2, d.N, d.Buf[0])
				}
				got2++
			default:
				t.Fatalf("datagram from %v, want %v or %v", d.From, from1, from2)
			}
		}
	}
	if reads >= 2*perSender+1 {
		t.Errorf("%d datagrams took %d reads: not batched", got1+got2, reads)
	}
}

// TestDualStackSocket: on a socket bound to all addresses, an IPv4 sender
// is seen as an IPv4-mapped address, and both that form and the plain
// IPv4 form reach it.
func TestDualStackSocket(t *testing.T) {
	conns, _, err := Listen("[::]:0", 1, Options{})
	if err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	c := conns[0]
	defer c.Close()
	if !c.v6 {
		t.Skip("the socket is not dual-stack")
	}
	port := c.LocalAddr().Port()
	peer, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.Write([]byte("hello"))
	ds := []Datagram{{Buf: make([]byte, 64)}}
	c.uc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.ReadBatch(ds); err != nil {
		t.Fatal(err)
	}
	from := ds[0].From
	want := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	if !from.Addr().Is4In6() || from.Addr().Unmap() != want.Addr() || from.Port() != want.Port() {
		t.Fatalf("sender %v, want %v as an IPv4-mapped address", from, want)
	}
	c.WriteBatch([]Message{
		{To: from, Datagrams: [][]byte{[]byte("mapped")}},
		{To: want, Datagrams: [][]byte{[]byte("plain")}},
	})
	expectDatagrams(t, peer, [][]byte{[]byte("mapped"), []byte("plain")})
}

// TestWriteBatchSkipsWhatFails: a message the kernel refuses (an IPv6
// address on an IPv4 socket) is dropped and the rest of the batch still
// goes out.
func TestWriteBatchSkipsWhatFails(t *testing.T) {
	c := listenOne(t, Options{})
	to, pc := sink(t)
	nowhere := netip.MustParseAddrPort("[2001:db8::1]:9")
	c.WriteBatch([]Message{
		{To: nowhere, Datagrams: [][]byte{[]byte("x")}},
		{To: to, Datagrams: [][]byte{[]byte("one")}},
		{To: nowhere, Datagrams: [][]byte{[]byte("y")}},
		{To: to, Datagrams: [][]byte{[]byte("two")}},
	})
	expectDatagrams(t, pc, [][]byte{[]byte("one"), []byte("two")})
	if n := c.SendFailures(); n != 2 {
		t.Errorf("%d send failures counted, want the 2 to nowhere", n)
	}
}

// TestListenSharesThePort opens several sockets on one port.
func TestListenSharesThePort(t *testing.T) {
	conns, warnings, err := Listen("127.0.0.1:0", 3, Options{ReadBuffer: 1 << 16, GSO: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		defer c.Close()
	}
	if len(conns) != 3 {
		t.Fatalf("%d sockets, want 3", len(conns))
	}
	for _, c := range conns[1:] {
		if c.LocalAddr() != conns[0].LocalAddr() {
			t.Fatalf("sockets on %v and %v", conns[0].LocalAddr(), c.LocalAddr())
		}
	}
	for _, w := range warnings {
		t.Logf("option not in effect: %v", w)
	}
}

// TestReadBufferShortfallIsReported: a receive buffer above what the
// kernel grants is reported, not silently accepted.
func TestReadBufferShortfallIsReported(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip(err)
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	conns, warnings, err := Listen("127.0.0.1:0", 1, Options{ReadBuffer: 4 * max})
	if err != nil {
		t.Fatal(err)
	}
	conns[0].Close()
	for _, w := range warnings {
		if w.Option == "SO_RCVBUF" {
			t.Log(w)
			return
		}
	}
	t.Fatalf("asking for %d bytes with rmem_max %d gave warnings %v", 4*max, max, warnings)
}

// TestReadBatchAllocatesNothing pins the read path's cost: no heap
// allocation per datagram once the socket's scratch exists.
func TestReadBatchAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; run without -race")
	}
	c := listenOne(t, Options{})
	peer := dial(t, c)
	ds := make([]Datagram, 16)
	for i := range ds {
		ds[i].Buf = make([]byte, slotSize)
	}
	pkt := make([]byte, 100)
	readAll := func() {
		for i := 0; i < len(ds); i++ {
			peer.Write(pkt)
		}
		for n := 0; n < len(ds); {
			k, err := c.ReadBatch(ds[:len(ds)-n])
			if err != nil {
				t.Fatal(err)
			}
			n += k
		}
	}
	readAll()
	if allocs := testing.AllocsPerRun(100, readAll); allocs != 0 {
		t.Fatalf("reading %d datagrams allocated %.1f times, want 0", len(ds), allocs)
	}
}

// TestBatchWriteAllocatesNothing pins the write path's cost: queuing and
// sending datagrams allocates nothing, coalesced or not.
func TestBatchWriteAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; run without -race")
	}
	for _, gso := range []bool{true, false} {
		c := listenOne(t, Options{GSO: gso})
		// The sinks are never read: once their buffers are full the
		// kernel drops at once.
		a, _ := sink(t)
		b, _ := sink(t)
		batch := NewBatch(c, 64, 256, slotSize)
		send := func() {
			for i := 0; i < 32; i++ {
				batch.Add(append(batch.Slot(), make([]byte, 100)...), a)
				batch.Add(append(batch.Slot(), make([]byte, 60+i)...), b)
			}
			batch.Flush()
		}
		send()
		if allocs := testing.AllocsPerRun(100, send); allocs != 0 {
			t.Fatalf("gso=%v: sending 64 datagrams allocated %.1f times, want 0", gso, allocs)
		}
	}
}

// TestLinkLocalSender: a link-local sender's address carries its
// interface's name as the zone, as package net gives it for TCP
// connections, and a reply to that address reaches it.
func TestLinkLocalSender(t *testing.T) {
	ip, ifname := linkLocal(t)
	local := netip.AddrPortFrom(ip.WithZone(ifname), 0)
	conns, _, err := Listen(local.String(), 1, Options{})
	if err != nil {
		t.Skipf("cannot listen on %v: %v", local, err)
	}
	c := conns[0]
	defer c.Close()
	peer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(local))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.WriteToUDPAddrPort([]byte("hello"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	ds := []Datagram{{Buf: make([]byte, 64)}}
	c.uc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.ReadBatch(ds); err != nil {
		t.Fatal(err)
	}
	want := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	if ds[0].From != want || ds[0].From.Addr().Zone() != ifname {
		t.Fatalf("sender %v, want %v", ds[0].From, want)
	}
	c.WriteBatch([]Message{{To: ds[0].From, Datagrams: [][]byte{[]byte("back")}}})
	expectDatagrams(t, peer, [][]byte{[]byte("back")})
}

// linkLocal returns a link-local IPv6 address of this machine and its
// interface, skipping the test if there is none.
func linkLocal(t *testing.T) (netip.Addr, string) {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Skip(err)
	}
	for _, ifi := range ifs {
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
					return ip, ifi.Name
				}
			}
		}
	}
	t.Skip("no link-local IPv6 address")
	return netip.Addr{}, ""
}
