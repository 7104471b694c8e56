package server

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestOutBatchCoalescesPerListener sends interleaved datagrams to two
// listeners through one batch: same-size runs are coalesced into UDP_SEGMENT
// messages where the kernel supports it, and either way every listener
// receives every datagram, separately and in order.
func TestOutBatchCoalescesPerListener(t *testing.T) {
	for _, gso := range []bool{true, false} {
		t.Run(fmt.Sprintf("gso=%v", gso), func(t *testing.T) {
			socks, err := listenUDP("127.0.0.1:0", 1)
			if err != nil {
				t.Fatal(err)
			}
			sock := socks[0]
			defer sock.conn.Close()
			if gso && !sock.gso.Load() {
				t.Skip("this kernel cannot segment UDP (UDP_SEGMENT)")
			}
			sock.gso.Store(gso)

			_, a := udpSink(t)
			_, c := udpSink(t)
			addrA, addrC := a.LocalAddr().(*net.UDPAddr), c.LocalAddr().(*net.UDPAddr)
			b := newOutBatch(16, 64)
			// For A: six 100-byte datagrams, then a 60-byte one (closes the
			// run), then 100 bytes again (a new message). For C: sizes that
			// grow, so nothing coalesces.
			var wantA, wantC [][]byte
			queue := func(to *net.UDPAddr, size int, tag byte, want *[][]byte) {
				buf := b.slot(sock)[:size]
				for i := range buf {
					buf[i] = tag
				}
				b.add(sock, buf, to)
				*want = append(*want, bytes.Clone(buf))
			}
			for i := 0; i < 6; i++ {
				queue(addrA, 100, byte(i), &wantA)
				queue(addrC, 50+10*i, byte(100+i), &wantC)
			}
			queue(addrA, 60, 6, &wantA)
			queue(addrA, 100, 7, &wantA)
			msgs := b.nMsgs
			b.flush(sock)
			if gso && msgs != 1+1+6 { // A: two messages, C: six
				t.Errorf("%d messages for 14 datagrams, want 8", msgs)
			}
			if !gso && msgs != 14 {
				t.Errorf("%d messages without GSO, want 14", msgs)
			}
			expectDatagrams(t, a, wantA)
			expectDatagrams(t, c, wantC)
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
