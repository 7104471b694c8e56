package web

import (
	"encoding/binary"
	"net"
	"testing"
)

// messages records each Write as one message.
type messages struct {
	net.Conn
	got [][]byte
}

func (m *messages) Write(b []byte) (int, error) {
	m.got = append(m.got, append([]byte(nil), b...))
	return len(b), nil
}

func frame(t uint16, payload string) []byte {
	b := make([]byte, frameHeader, frameHeader+len(payload))
	binary.BigEndian.PutUint16(b, t)
	binary.BigEndian.PutUint32(b[2:], uint32(len(payload)))
	return append(b, payload...)
}

// TestFrameConnSendsWholeFrames: however the writes above cut the
// stream, every message is exactly one frame.
func TestFrameConnSendsWholeFrames(t *testing.T) {
	var stream []byte
	want := []string{"", "a", "hello", string(make([]byte, 300))}
	for i, p := range want {
		stream = append(stream, frame(uint16(i), p)...)
	}
	for _, cut := range []int{1, 2, 5, 6, 7, 64, len(stream)} {
		m := &messages{}
		fc := NewFrameConn(m)
		for rest := stream; len(rest) > 0; {
			n := min(cut, len(rest))
			if k, err := fc.Write(rest[:n]); err != nil || k != n {
				t.Fatalf("cut %d: Write = %d, %v", cut, k, err)
			}
			rest = rest[n:]
		}
		if len(m.got) != len(want) {
			t.Fatalf("cut %d: %d messages, want %d", cut, len(m.got), len(want))
		}
		for i, msg := range m.got {
			if string(msg) != string(frame(uint16(i), want[i])) {
				t.Errorf("cut %d: message %d is not frame %d", cut, i, i)
			}
		}
	}
}
