package udpbatch

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

func TestBackoffDoublesToItsLimitAndResets(t *testing.T) {
	var b Backoff
	want := []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond,
		8 * time.Millisecond, 16 * time.Millisecond, 32 * time.Millisecond, 64 * time.Millisecond,
		MaxBackoff, MaxBackoff}
	for i, w := range want {
		if got := b.Failed(); got != w {
			t.Fatalf("failure %d: wait %v, want %v", i+1, got, w)
		}
	}
	if b.Failures() != len(want) {
		t.Fatalf("%d failures counted, want %d", b.Failures(), len(want))
	}
	if n := b.Succeeded(); n != len(want) {
		t.Fatalf("Succeeded reported %d failures, want %d", n, len(want))
	}
	if b.Failures() != 0 || b.Failed() != 0 || b.Failed() != MinBackoff {
		t.Fatal("a success did not start the waits over")
	}
}

// recorder is a Sender that keeps what it is given.
type recorder struct {
	gso  bool
	msgs []Message // copies
}

func (r *recorder) GSO() bool { return r.gso }

func (r *recorder) WriteBatch(msgs []Message) {
	for _, m := range msgs {
		c := Message{To: m.To}
		for _, d := range m.Datagrams {
			c.Datagrams = append(c.Datagrams, bytes.Clone(d))
		}
		r.msgs = append(r.msgs, c)
	}
}

// TestBatchKeepsMessagesValidForSegmentation: coalesced messages never
// exceed the segment limit, never mix sizes except for a shorter last
// datagram, and a full batch sends what it holds before taking more.
func TestBatchKeepsMessagesValidForSegmentation(t *testing.T) {
	to := netip.MustParseAddrPort("192.0.2.1:1000")
	r := &recorder{gso: true}
	b := NewBatch(r, 8, 40, slotSize)
	for i := 0; i < 40; i++ {
		b.Add(append(b.Slot(), bytes.Repeat([]byte{byte(i)}, 100)...), to)
	}
	if len(r.msgs) != 0 {
		t.Fatalf("sent %d messages before the batch was full", len(r.msgs))
	}
	b.Add(append(b.Slot(), 41), to) // the 41st slot: the batch sends first
	if len(r.msgs) != 2 || len(r.msgs[0].Datagrams) != maxSegments || len(r.msgs[1].Datagrams) != 40-maxSegments {
		t.Fatalf("40 datagrams for one address went out as %d messages", len(r.msgs))
	}
	b.Flush()
	if len(r.msgs) != 3 || len(r.msgs[2].Datagrams) != 1 {
		t.Fatalf("%d messages after the flush", len(r.msgs))
	}
	var n int
	for _, m := range r.msgs {
		for _, d := range m.Datagrams {
			if d[0] != byte(n) && !(n == 40 && d[0] == 41) {
				t.Fatalf("datagram %d out of order", n)
			}
			n++
		}
	}

	// Without GSO every datagram is its own message.
	r = &recorder{}
	b = NewBatch(r, 8, 40, slotSize)
	for i := 0; i < 3; i++ {
		b.Add(append(b.Slot(), 1, 2, 3), to)
	}
	b.Flush()
	if len(r.msgs) != 3 {
		t.Fatalf("without GSO 3 datagrams went out as %d messages", len(r.msgs))
	}
	// Messages run out before slots do.
	r = &recorder{}
	b = NewBatch(r, 2, 40, slotSize)
	for i := 0; i < 3; i++ {
		b.Add(append(b.Slot(), 1, 2, 3), netip.AddrPortFrom(to.Addr(), uint16(i)))
	}
	if len(r.msgs) != 2 {
		t.Fatalf("a batch of 2 messages sent %d before taking a third", len(r.msgs))
	}
}

// A slot that is not added is handed out again.
func TestUnusedSlotIsReused(t *testing.T) {
	b := NewBatch(&recorder{}, 4, 4, slotSize)
	first := b.Slot()
	first = append(first, 1)
	if again := b.Slot(); &again[:1][0] != &first[0] {
		t.Fatal("an unused slot was not handed out again")
	}
}
