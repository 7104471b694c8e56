package server

import (
	"testing"
	"time"
)

func TestLeakyBucketFollowsMurmur(t *testing.T) {
	var b leakyBucket
	t0 := time.Unix(1000, 0)
	passed := 0
	for i := 0; i < 10; i++ {
		if b.allow(t0, 1, 5) {
			passed++
		}
	}
	if passed != 5 {
		t.Fatalf("a burst passed %d messages, want the burst of 5", passed)
	}
	if b.allow(t0.Add(999*time.Millisecond), 1, 5) {
		t.Fatal("a token leaked before a second passed")
	}
	if !b.allow(t0.Add(time.Second), 1, 5) || b.allow(t0.Add(time.Second), 1, 5) {
		t.Fatal("after one second exactly one more message should pass")
	}
	// A steady 1 message/s never runs dry.
	for i := 2; i < 60; i++ {
		if !b.allow(t0.Add(time.Duration(i)*time.Second), 1, 5) {
			t.Fatalf("message %d at the allowed rate was dropped", i)
		}
	}
}
