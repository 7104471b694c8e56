package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// TestSigtermDrains: on SIGTERM the server tells its users, ends their
// connections cleanly, writes a pending edit and exits with status 0.
func TestSigtermDrains(t *testing.T) {
	bin := plenumBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "plenary.toml")
	if err := os.WriteFile(cfgPath, []byte(crashConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startChild(t, bin, "-config", cfgPath, "-data", filepath.Join(dir, "data"), "-listen", "127.0.0.1:0")

	var mu sync.Mutex
	var last proto.Message
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Address: srv.addr, Username: "alice", Certificate: cert(t),
		OnMessage: func(_ control.Type, m proto.Message) {
			mu.Lock()
			last = m
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("Votes")})
	if err := c.Wait(ctx, func(c *client.Client) bool { _, ok := channelNamed(c, "Votes"); return ok }); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the client was not let go within 5 s")
	}
	if err := c.Err(); !errors.Is(err, io.EOF) {
		t.Errorf("connection ended with %v, want a clean end of file", err)
	}
	mu.Lock()
	if m, ok := last.(*mumblepb.TextMessage); !ok || m.GetMessage() != "Server is shutting down" {
		t.Errorf("last message %v, want the shutdown notice", last)
	}
	mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- srv.wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("server exited with %v after SIGTERM:\n%s", err, srv.log())
		}
	case <-time.After(10 * time.Second):
		srv.cmd.Process.Kill()
		t.Fatalf("server still running 10 s after SIGTERM:\n%s", srv.log())
	}
	took := time.Since(start)
	if !strings.Contains(srv.log(), `msg="plenum stopped"`) {
		t.Errorf("no \"plenum stopped\" in the log:\n%s", srv.log())
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil || !strings.Contains(string(data), `name = "Votes"`) {
		t.Errorf("the edit is not in the file (%v):\n%s", err, data)
	}
	t.Logf("exit status 0, %v after SIGTERM", took.Round(time.Millisecond))
}
