package server

import (
	"bytes"
	"testing"
)

// TestHoldKeepsOrderAndLetsVoicePass: control frames behind a hold wait
// for its ticket and then come in the order they were queued; tunnelled
// voice does not wait.
func TestHoldKeepsOrderAndLetsVoicePass(t *testing.T) {
	c := &conn{
		ctrl:  ctrlQueue{ready: make(chan struct{}, 1)},
		voice: make(chan *voiceFrame, voiceQueueLen),
		done:  make(chan struct{}),
	}
	first, second := newTicket(), newTicket()
	c.sendFrame([]byte("a"))
	c.hold(first)
	c.sendFrame([]byte("b"))
	c.hold(first) // the same ticket again: queued once
	c.hold(second)
	c.sendFrame([]byte("c"))
	c.voice <- &voiceFrame{buf: []byte("voice")}

	expect := func(want string) {
		t.Helper()
		e, pooled, ok := c.next(false)
		var got string
		switch {
		case !ok:
			got = "nothing"
		case pooled != nil:
			got = string(pooled.buf)
		default:
			got = string(e.frame)
		}
		if got != want {
			t.Fatalf("next = %s, want %s", got, want)
		}
	}
	expect("a")
	expect("voice") // control waits at the hold, voice does not
	expect("nothing")
	second.finish() // finishing out of order releases nothing yet
	expect("nothing")
	first.finish()
	expect("b")
	expect("c")
	expect("nothing")
	if n := len(c.ctrl.frames); n != 0 {
		t.Errorf("%d entries left in the queue", n)
	}

	// A hold on a finished ticket is not even queued.
	c.hold(first)
	if n := len(c.ctrl.frames); n != 0 {
		t.Errorf("a finished ticket was queued as a hold")
	}
	c.sendFrame([]byte("d"))
	e, _, _ := c.next(true)
	if !bytes.Equal(e.frame, []byte("d")) {
		t.Errorf("next = %q, want d", e.frame)
	}
}
