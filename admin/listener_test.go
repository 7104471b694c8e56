package admin

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeEndsWithItsContext: Serve answers on the bound address until
// its context ends; then it closes the listener and the open event
// streams and returns nil, and the stream's slot is free again.
func TestServeEndsWithItsContext(t *testing.T) {
	var log bytes.Buffer
	l, _ := newListener(t, "s3cret", &log)
	if l.Addr().IsValid() {
		t.Fatalf("Addr %v before Listen", l.Addr())
	}
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx) }()

	req, err := http.NewRequest("GET", "http://"+l.Addr().String()+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: {") || !strings.Contains(line, `"alice"`) {
		t.Fatalf("the event stream: HTTP %d, first line %q (%v)", resp.StatusCode, line, err)
	}
	if n := l.OpenStreams(); n != 1 {
		t.Fatalf("%d streams open, want 1", n)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after its context ended: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, body); close(ended) }()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream goes on after Serve returned")
	}
	for deadline := time.Now().Add(5 * time.Second); l.OpenStreams() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stream's slot was not given back")
		}
	}
	if _, err := http.Get("http://" + l.Addr().String() + "/metrics"); err == nil {
		t.Error("the listener still answers after Serve returned")
	}
}
