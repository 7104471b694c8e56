package server

import (
	"bytes"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"
)

func TestGoroutinesAreCountedByName(t *testing.T) {
	var g goroutines
	release := make(chan struct{})
	for range 3 {
		g.Go("worker", func() { <-release })
	}
	g.Go("other", func() { <-release })
	if got, want := g.Running(), map[string]int{"worker": 3, "other": 1}; !maps.Equal(got, want) {
		t.Fatalf("running %v, want %v", got, want)
	}
	waited := make(chan struct{})
	go func() { g.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("Wait returned while goroutines ran")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-waited
	if got := g.Running(); len(got) != 0 {
		t.Fatalf("after Wait, running %v", got)
	}
}

// TestStoppingSaysWhatStillRuns: a stop that waits too long for a
// goroutine names it in the log, then still waits for it.
func TestStoppingSaysWhatStillRuns(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	release := make(chan struct{})
	s.goroutines.Go("stuck writer", func() { <-release })
	waited := make(chan struct{})
	go func() { s.waitForGoroutines(10 * time.Millisecond); close(waited) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-waited:
		t.Fatal("the stop did not wait for the goroutine")
	default:
	}
	close(release)
	<-waited
	if !strings.Contains(logs.String(), "still waiting for goroutines") || !strings.Contains(logs.String(), "stuck writer:1") {
		t.Fatalf("the log does not name what ran: %q", logs.String())
	}
}
