package client

import (
	"bytes"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/voice"
)

// borrowed is what a BorrowAudio callback copies out of the lent packet.
type borrowed struct {
	ptr    *AudioPacket
	sender uint32
	frame  uint64
	opus   []byte
	pos    [3]float32
	hasPos bool
	viaUDP bool
}

// TestBorrowAudio: with BorrowAudio the callback sees the same packets as
// without it, over UDP and through the tunnel, and one receive goroutine
// lends the same *AudioPacket every time.
func TestBorrowAudio(t *testing.T) {
	for _, udp := range []bool{true, false} {
		name := map[bool]string{true: "udp", false: "tunnel"}[udp]
		t.Run(name, func(t *testing.T) {
			got := make(chan borrowed, 4)
			s, c := dialFake(t, v150, Config{DisableUDP: !udp, BorrowAudio: true, OnAudio: func(p *AudioPacket) {
				b := borrowed{ptr: p, sender: p.Sender, frame: p.Frame, opus: bytes.Clone(p.Opus), viaUDP: p.ViaUDP}
				if p.Position != nil {
					b.hasPos, b.pos = true, *p.Position
				}
				got <- b
			}})
			if udp {
				if err := c.WaitUDP(testCtx(t)); err != nil {
					t.Fatal(err)
				}
			}
			f := voice.FormatFor(v150)
			send := func(a *voice.Audio) borrowed {
				t.Helper()
				plain := voice.AppendAudio(nil, f, a, true)
				if udp {
					s.sendUDP(plain)
				} else {
					s.sendRaw(control.AppendFrame(nil, control.UDPTunnel, plain))
				}
				select {
				case b := <-got:
					return b
				case <-time.After(5 * time.Second):
					t.Fatal("no audio")
					return borrowed{}
				}
			}
			first := send(&voice.Audio{Sender: otherSession, Frame: 7, Opus: []byte{1, 2, 3},
				HasPosition: true, Position: [3]float32{4, 5, 6}})
			second := send(&voice.Audio{Sender: otherSession, Frame: 8, Opus: []byte{9, 9}})
			if first.sender != otherSession || first.frame != 7 || !bytes.Equal(first.opus, []byte{1, 2, 3}) ||
				!first.hasPos || first.pos != [3]float32{4, 5, 6} || first.viaUDP != udp {
				t.Errorf("first packet %+v", first)
			}
			if second.frame != 8 || !bytes.Equal(second.opus, []byte{9, 9}) || second.hasPos || second.viaUDP != udp {
				t.Errorf("second packet %+v", second)
			}
			if first.ptr != second.ptr {
				t.Error("BorrowAudio: a new *AudioPacket per packet, want the goroutine's scratch packet")
			}
		})
	}
}

func TestNumUsers(t *testing.T) {
	_, c := dialFake(t, v150, Config{})
	if n, want := c.NumUsers(), len(c.Users()); n != want || n == 0 {
		t.Errorf("NumUsers %d, len(Users()) %d", n, want)
	}
}
