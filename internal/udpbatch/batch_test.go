package udpbatch

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// slotSize is the voice path's largest datagram: a full Mumble plaintext
// plus the crypt header.
const slotSize = 1024 + 4

// listenOne opens one socket on loopback with opts, closed at the end of
// the test.
func listenOne(tb testing.TB, opts Options) *Conn {
	tb.Helper()
	conns, _, err := Listen("127.0.0.1:0", 1, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conns[0].Close() })
	return conns[0]
}

// sink opens a plain UDP socket on loopback to receive datagrams.
func sink(tb testing.TB) (netip.AddrPort, *net.UDPConn) {
	tb.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), pc
}

// dial returns a UDP socket on loopback connected to c.
func dial(tb testing.TB, c *Conn) *net.UDPConn {
	tb.Helper()
	uc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(c.LocalAddr()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { uc.Close() })
	return uc
}

// TestBatchCoalescesPerListener sends interleaved datagrams to two
// listeners through one batch: same-size runs are coalesced into UDP_SEGMENT
// messages where the kernel supports it, and either way every listener
// receives every datagram, separately and in order.
func TestBatchCoalescesPerListener(t *testing.T) {
	for _, gso := range []bool{true, false} {
		t.Run(fmt.Sprintf("gso=%v", gso), func(t *testing.T) {
			c := listenOne(t, Options{GSO: true})
			if gso && !c.GSO() {
				t.Skip("this kernel cannot segment UDP (UDP_SEGMENT)")
			}
			c.SetGSO(gso)

			addrA, a := sink(t)
			addrC, cc := sink(t)
			b := NewBatch(c, 16, 64, slotSize)
			// For A: six 100-byte datagrams, then a 60-byte one (closes the
			// run), then 100 bytes again (a new message). For C: sizes that
			// grow, so nothing coalesces.
			var wantA, wantC [][]byte
			queue := func(to netip.AddrPort, size int, tag byte, want *[][]byte) {
				buf := b.Slot()[:size]
				for i := range buf {
					buf[i] = tag
				}
				b.Add(buf, to)
				*want = append(*want, bytes.Clone(buf))
			}
			for i := 0; i < 6; i++ {
				queue(addrA, 100, byte(i), &wantA)
				queue(addrC, 50+10*i, byte(100+i), &wantC)
			}
			queue(addrA, 60, 6, &wantA)
			queue(addrA, 100, 7, &wantA)
			msgs := b.nMsgs
			b.Flush()
			if gso && msgs != 1+1+6 { // A: two messages, C: six
				t.Errorf("%d messages for 14 datagrams, want 8", msgs)
			}
			if !gso && msgs != 14 {
				t.Errorf("%d messages without GSO, want 14", msgs)
			}
			expectDatagrams(t, a, wantA)
			expectDatagrams(t, cc, wantC)
		})
	}
}

func expectDatagrams(t *testing.T, pc *net.UDPConn, want [][]byte) {
	t.Helper()
	buf := make([]byte, 2048)
	for i, w := range want {
		pc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], w) {
			t.Fatalf("datagram %d: %d bytes starting %d, want %d bytes starting %d", i, n, buf[0], len(w), w[0])
		}
	}
}

// counter is a Sealer that numbers the datagrams it seals, as a nonce
// does, in their first byte.
type counter struct{ next byte }

func (c *counter) Seal(pkt []byte) {
	c.next++
	pkt[0] = c.next
}

// TestSealedInTheOrderSent: two batches queue datagrams for one peer, the
// first batch before the second, and the second is sent first. Sealed
// when sent, the peer receives them numbered in the order they arrive.
func TestSealedInTheOrderSent(t *testing.T) {
	c := listenOne(t, Options{})
	to, peer := sink(t)
	first, second := NewBatch(c, 64, 64, slotSize), NewBatch(c, 64, 64, slotSize)
	nonce := &counter{}
	for _, b := range []*Batch{first, second} {
		for range 40 {
			pkt := append(b.Slot(), 0, 'v', 'o', 'i', 'c', 'e')
			b.AddSealed(pkt, to, nonce)
		}
	}
	if nonce.next != 0 {
		t.Fatalf("%d datagrams sealed before they were sent", nonce.next)
	}
	second.Flush()
	first.Flush()
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	for want := 1; want <= 80; want++ {
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", want, err)
		}
		if int(buf[0]) != want || string(buf[1:n]) != "voice" {
			t.Fatalf("datagram %d arrived as %d %q", want, buf[0], buf[1:n])
		}
	}
}

// sealCounter is a Sender that records how many datagrams its counter had
// sealed when each WriteBatch came.
type sealCounter struct {
	recorder
	nonce  *counter
	sealed []byte
}

func (s *sealCounter) WriteBatch(msgs []Message) {
	s.sealed = append(s.sealed, s.nonce.next)
	s.recorder.WriteBatch(msgs)
}

// TestSealedAChunkBeforeItIsSent: a batch of 100 messages is sealed and
// sent 64 messages at a time, so no datagram waits sealed while a whole
// batch is sent; a peer's segments are sealed in the order queued.
func TestSealedAChunkBeforeItIsSent(t *testing.T) {
	nonce := &counter{}
	s := &sealCounter{recorder: recorder{gso: true}, nonce: nonce}
	b := NewBatch(s, 128, 256, slotSize)
	peer := netip.MustParseAddrPort("192.0.2.1:1000")
	for i := range 100 {
		to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(2 + i)}), 1000)
		b.AddSealed(append(b.Slot(), 0, 1, 2), to, nonce)
		if i%10 == 0 { // a peer with segments spread over the batch
			b.AddSealed(append(b.Slot(), 0, 1, 2), peer, nonce)
		}
	}
	b.Flush()
	inFirst := 0 // the datagrams of the first 64 messages
	for _, m := range s.msgs[:64] {
		inFirst += len(m.Datagrams)
	}
	if len(s.sealed) != 2 || int(s.sealed[0]) != inFirst || s.sealed[1] != 110 {
		t.Fatalf("datagrams sealed when each chunk was sent: %v, want [%d 110]", s.sealed, inFirst)
	}
	var got []byte
	for _, m := range s.msgs {
		if m.To == peer {
			for _, d := range m.Datagrams {
				got = append(got, d[0])
			}
		}
	}
	if len(got) != 10 || !slices.IsSorted(got) {
		t.Fatalf("the peer's datagrams were numbered %v, want 10 in order", got)
	}
}
