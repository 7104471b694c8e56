//go:build linux

package udpbatch

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Room for the control messages of a datagram read (one SCM_TIMESTAMPNS)
// and written (one UDP_SEGMENT).
var (
	readOOBSpace  = unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{})))
	writeOOBSpace = unix.CmsgSpace(2)
)

// A Conn is one UDP socket, read and written in batches. Several
// goroutines may write to a Conn at once; one at a time may read.
type Conn struct {
	uc     *net.UDPConn
	raw    syscall.RawConn
	v6     bool        // an AF_INET6 socket (dual-stack too): addresses are written as sockaddr_in6
	canGSO bool        // the kernel knows UDP_SEGMENT
	gso    atomic.Bool // canGSO, and coalescing is wanted and has not failed

	rd      reader
	writers sync.Pool // *writer: the scratch of a WriteBatch in progress

	failed atomic.Uint64 // datagrams WriteBatch could not send (SendFailures)
}

// Listen opens n UDP sockets on addr that share its port (SO_REUSEPORT);
// with port 0 the kernel picks one for the first and the others join it.
// It fails if a socket cannot be opened or cannot share the port. Options
// the sockets work without (opts, arrival times) but that could not be
// set are returned as warnings, each option once.
func Listen(addr string, n int, opts Options) (conns []*Conn, warnings []*OptionError, err error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
	}}
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("listen udp: %w", err)
		}
		c, problems, err := newConn(pc.(*net.UDPConn), opts)
		if err != nil {
			pc.Close()
			closeAll()
			return nil, nil, fmt.Errorf("listen udp: %w", err)
		}
		conns = append(conns, c)
		for _, p := range problems {
			if !seen[p.Option] {
				seen[p.Option] = true
				warnings = append(warnings, p)
			}
		}
		addr = pc.LocalAddr().String() // the others join the port the first one got
	}
	return conns, warnings, nil
}

func newConn(uc *net.UDPConn, opts Options) (*Conn, []*OptionError, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	c := &Conn{uc: uc, raw: raw}
	var problems []*OptionError
	var domain int
	var derr error
	err = raw.Control(func(fd uintptr) {
		s := int(fd)
		domain, derr = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_DOMAIN)
		if opts.ReadBuffer > 0 {
			if p := setReadBuffer(s, opts.ReadBuffer); p != nil {
				problems = append(problems, p)
			}
		}
		// The "old" SO_TIMESTAMPNS: a struct timespec of the native width,
		// which is what unix.Timespec is.
		if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			problems = append(problems, &OptionError{"SO_TIMESTAMPNS", err, "datagrams have no arrival time"})
		}
		// Linux 4.18+ knows UDP_SEGMENT; older kernels refuse to read it.
		_, err := unix.GetsockoptInt(s, unix.SOL_UDP, unix.UDP_SEGMENT)
		c.canGSO = err == nil
		if err != nil && opts.GSO {
			problems = append(problems, &OptionError{"UDP_SEGMENT", err, "no segmentation offload: datagrams for one address are sent one by one"})
		}
	})
	if err == nil && derr != nil {
		err = os.NewSyscallError("getsockopt SO_DOMAIN", derr)
	}
	if err != nil {
		return nil, nil, err
	}
	c.v6 = domain == unix.AF_INET6
	c.gso.Store(c.canGSO && opts.GSO)
	c.rd.recv = c.rd.recvmmsg
	c.writers.New = func() any {
		w := &writer{c: c}
		w.send = w.sendmmsg
		return w
	}
	return c, problems, nil
}

// setReadBuffer asks for a receive buffer of size bytes. Linux silently
// caps the size at net.core.rmem_max, so the size it grants is checked.
func setReadBuffer(fd, size int) *OptionError {
	const effect = "bursts may overflow the smaller buffer"
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size); err != nil {
		return &OptionError{"SO_RCVBUF", err, effect}
	}
	got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return &OptionError{"SO_RCVBUF", err, effect}
	}
	if got /= 2; got < size { // Linux reports twice the size, its bookkeeping included
		return &OptionError{"SO_RCVBUF", fmt.Errorf("the kernel granted %d of the %d bytes asked for; raise net.core.rmem_max", got, size), effect}
	}
	return nil
}

// GSO reports whether datagrams for one address are coalesced into
// UDP_SEGMENT messages.
func (c *Conn) GSO() bool { return c.gso.Load() }

// SetGSO turns coalescing on or off; on takes effect only where the
// kernel supports it.
func (c *Conn) SetGSO(on bool) { c.gso.Store(on && c.canGSO) }

// LocalAddr returns the address the socket is bound to.
func (c *Conn) LocalAddr() netip.AddrPort {
	return c.uc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes the socket; a ReadBatch in progress returns an error that
// matches net.ErrClosed.
func (c *Conn) Close() error { return c.uc.Close() }

// reader is the scratch of ReadBatch: recvmmsg's headers, pointing at the
// caller's buffers and at the addresses and control messages here.
type reader struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte

	want  int // datagrams asked for
	n     int // datagrams read
	errno syscall.Errno
	recv  func(fd uintptr) bool // recvmmsg, bound once so that reading allocates nothing
}

// ReadBatch reads up to len(ds) datagrams, waiting for the first, and
// returns how many it read. An error matching net.ErrClosed means the
// socket was closed.
func (c *Conn) ReadBatch(ds []Datagram) (int, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	r := &c.rd
	if len(ds) > len(r.hdrs) {
		r.grow(len(ds))
	}
	for i := range ds {
		iov := &r.iovs[i]
		iov.Base = unsafe.SliceData(ds[i].Buf)
		iov.SetLen(len(ds[i].Buf))
		h := &r.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Iov = iov
		h.SetIovlen(1)
		h.Control = &r.oob[i*readOOBSpace]
		h.SetControllen(readOOBSpace)
		h.Flags = 0
	}
	r.want = len(ds)
	if err := c.raw.Read(r.recv); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", r.errno)
	}
	for i := 0; i < r.n; i++ {
		m := &r.hdrs[i]
		d := &ds[i]
		d.N = int(m.Len)
		d.From = addrPortOf(&r.names[i])
		oob := r.oob[i*readOOBSpace:]
		d.At = arrival(oob[:min(int(m.Hdr.Controllen), readOOBSpace)])
	}
	return r.n, nil
}

func (r *reader) grow(n int) {
	r.hdrs = make([]unix.Mmsghdr, n)
	r.iovs = make([]unix.Iovec, n)
	r.names = make([]unix.RawSockaddrInet6, n)
	r.oob = make([]byte, n*readOOBSpace)
}

// recvmmsg runs under the socket's read lock; it reports false to wait
// until the socket is readable.
func (r *reader) recvmmsg(fd uintptr) bool {
	var ready bool
	r.n, r.errno, ready = mmsg(unix.SYS_RECVMMSG, fd, &r.hdrs[0], r.want)
	return ready
}

// mmsg makes the recvmmsg or sendmmsg system call (trap) for count
// messages from hdrs, again when a signal interrupts it. ready is false
// when the socket would block: the caller waits for it and tries again.
func mmsg(trap, fd uintptr, hdrs *unix.Mmsghdr, count int) (n int, errno syscall.Errno, ready bool) {
	for {
		r, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(hdrs)), uintptr(count), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, 0, false
		case 0:
			return int(r), 0, true
		default:
			return 0, e, true
		}
	}
}

// addrPortOf decodes the sender address recvmmsg wrote: a sockaddr_in or
// a sockaddr_in6 (IPv4 senders on a dual-stack socket as IPv4-mapped
// addresses, as the kernel gives them).
func addrPortOf(sa *unix.RawSockaddrInet6) netip.AddrPort {
	p := (*[2]byte)(unsafe.Pointer(&sa.Port)) // network byte order
	port := uint16(p[0])<<8 | uint16(p[1])
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			ip = ip.WithZone(zones.name(sa.Scope_id))
		}
		return netip.AddrPortFrom(ip, port)
	}
	return netip.AddrPort{}
}

// zones names the interfaces of link-local addresses as package net
// does (so that a sender's address equals the one of its TCP connection),
// remembering each lookup: they are costly, and only link-local datagrams
// take its lock. An interface renamed while the server runs keeps its old
// name here.
var zones zoneTable

type zoneTable struct {
	mu      sync.Mutex
	names   map[uint32]string
	indexes map[string]uint32
}

// name returns the name of the interface with index i, or the number if
// there is none.
func (t *zoneTable) name(i uint32) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if z, ok := t.names[i]; ok {
		return z
	}
	z := strconv.FormatUint(uint64(i), 10)
	if ifi, err := net.InterfaceByIndex(int(i)); err == nil {
		z = ifi.Name
	}
	t.remember(i, z)
	return z
}

// index returns the index of the interface a zone names, by name or by
// number; 0 if there is none.
func (t *zoneTable) index(zone string) uint32 {
	if zone == "" {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.indexes[zone]; ok {
		return i
	}
	var i uint32
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		i = uint32(n)
	} else if ifi, err := net.InterfaceByName(zone); err == nil {
		i = uint32(ifi.Index)
	}
	if i != 0 {
		t.remember(i, zone)
	}
	return i
}

func (t *zoneTable) remember(i uint32, zone string) {
	if t.names == nil {
		t.names, t.indexes = make(map[uint32]string), make(map[string]uint32)
	}
	if _, ok := t.names[i]; !ok {
		t.names[i] = zone
	}
	t.indexes[zone] = i
}

// arrival returns the kernel receive time carried in oob (the control
// messages of one datagram), or zero when there is none.
func arrival(oob []byte) time.Time {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return time.Time{}
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS {
			var ts unix.Timespec
			if copy(unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts)), data) < int(unsafe.Sizeof(ts)) {
				return time.Time{}
			}
			return time.Unix(ts.Unix())
		}
		oob = rest
	}
	return time.Time{}
}

// writer is the scratch of one WriteBatch: sendmmsg's headers, pointing at
// the messages' datagrams and at the addresses and control messages here.
type writer struct {
	c     *Conn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte

	from, to int // the headers to send: hdrs[from:to]
	n        int // headers sent
	errno    syscall.Errno
	send     func(fd uintptr) bool // sendmmsg, bound once so that writing allocates nothing
}

// WriteBatch sends msgs (see Sender). If the network device cannot
// checksum segmented UDP, the socket stops coalescing and the coalesced
// datagrams are sent one by one.
func (c *Conn) WriteBatch(msgs []Message) {
	if len(msgs) == 0 {
		return
	}
	w := c.writers.Get().(*writer)
	w.load(msgs)
	for sent := 0; sent < len(msgs); {
		w.from, w.to = sent, len(msgs)
		if err := c.raw.Write(w.send); err != nil {
			break // closed
		}
		if w.errno == 0 && w.n > 0 {
			sent += w.n
			continue
		}
		// msgs[sent] failed: sendmmsg reports an error only for the
		// first message of a call.
		if m := &msgs[sent]; w.errno == unix.EIO && len(m.Datagrams) > 1 {
			c.gso.Store(false)
			c.writeEach(m)
		} else {
			c.failed.Add(uint64(len(m.Datagrams)))
		}
		sent++
	}
	c.writers.Put(w)
}

// load points the writer's headers at msgs.
func (w *writer) load(msgs []Message) {
	total := 0
	for i := range msgs {
		total += len(msgs[i].Datagrams)
	}
	if len(msgs) > len(w.hdrs) {
		w.hdrs = make([]unix.Mmsghdr, len(msgs))
		w.names = make([]unix.RawSockaddrInet6, len(msgs))
		w.oob = make([]byte, len(msgs)*writeOOBSpace)
	}
	if total > len(w.iovs) {
		w.iovs = make([]unix.Iovec, total)
	}
	iovs := w.iovs
	for i := range msgs {
		m := &msgs[i]
		h := &w.hdrs[i].Hdr
		*h = unix.Msghdr{}
		h.Name = (*byte)(unsafe.Pointer(&w.names[i]))
		h.Namelen = w.c.putSockaddr(&w.names[i], m.To)
		if len(m.Datagrams) == 0 {
			continue
		}
		for j, d := range m.Datagrams {
			iovs[j].Base = unsafe.SliceData(d)
			iovs[j].SetLen(len(d))
		}
		h.Iov = &iovs[0]
		h.SetIovlen(len(m.Datagrams))
		iovs = iovs[len(m.Datagrams):]
		if len(m.Datagrams) > 1 {
			oob := w.oob[i*writeOOBSpace : (i+1)*writeOOBSpace]
			putSegmentSize(oob, len(m.Datagrams[0]))
			h.Control = &oob[0]
			h.SetControllen(len(oob))
		}
	}
}

// sendmmsg runs under the socket's write lock; it reports false to wait
// until the socket is writable.
func (w *writer) sendmmsg(fd uintptr) bool {
	var ready bool
	w.n, w.errno, ready = mmsg(unix.SYS_SENDMMSG, fd, &w.hdrs[w.from], w.to-w.from)
	return ready
}

// putSegmentSize writes a UDP_SEGMENT control message with the segment
// size into oob (writeOOBSpace bytes).
func putSegmentSize(oob []byte, size int) {
	clear(oob)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
}

// putSockaddr writes to as the socket's kind of address into sa and
// returns its length, or 0 when the socket cannot reach it (an IPv6
// address on an IPv4 socket), which makes the kernel refuse that message.
func (c *Conn) putSockaddr(sa *unix.RawSockaddrInet6, to netip.AddrPort) uint32 {
	ip := to.Addr()
	if !c.v6 {
		if ip = ip.Unmap(); !ip.Is4() {
			return 0
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.As4()}
		putPort(&sa4.Port, to.Port())
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16(), Scope_id: zones.index(ip.Zone())}
	putPort(&sa.Port, to.Port())
	return unix.SizeofSockaddrInet6
}

func putPort(dst *uint16, port uint16) {
	p := (*[2]byte)(unsafe.Pointer(dst)) // network byte order
	p[0], p[1] = byte(port>>8), byte(port)
}

// writeEach sends a coalesced message's datagrams separately.
func (c *Conn) writeEach(m *Message) {
	to := m.To
	if !c.v6 {
		to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	}
	for _, d := range m.Datagrams {
		if _, err := c.uc.WriteToUDPAddrPort(d, to); err != nil {
			c.failed.Add(1)
		}
	}
}

// SendFailures counts the datagrams WriteBatch could not send since the
// socket was opened (an unreachable address, a full device queue).
func (c *Conn) SendFailures() uint64 { return c.failed.Load() }
