package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/server"
	"github.com/plenum-voice/plenum/store"
)

// TestProbe: the probe passes against a server that answers, makes a
// channel that the server saves, and fails where the server refuses.
func TestProbe(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPassword(store.SuperUserID, "pw"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	srv, err := server.New(server.Options{Config: conf.Default(), Listen: "127.0.0.1:0", WebListen: server.NoWeb, AdminListen: server.NoAdmin, DataDir: dir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	addr := srv.Addr().String()

	within := func(d time.Duration) context.Context {
		c, stop := context.WithTimeout(context.Background(), d)
		t.Cleanup(stop)
		return c
	}
	if err := probe(within(10*time.Second), addr, "probe", "", ""); err != nil {
		t.Errorf("a plain login: %v", err)
	}
	if err := probe(within(10*time.Second), addr, "SuperUser", "pw", "Probed"); err != nil {
		t.Errorf("SuperUser making a channel: %v", err)
	}
	saved, err := os.ReadFile(filepath.Join(dir, server.DefaultConfigFile))
	if err != nil || !strings.Contains(string(saved), `name = "Probed"`) {
		t.Errorf("the confirmed channel is not in the saved configuration (%v)", err)
	}
	if err := probe(within(10*time.Second), addr, "SuperUser", "wrong", ""); err == nil {
		t.Error("a login with the wrong password passed")
	}
	if err := probe(within(2*time.Second), addr, "guest", "", "Refused"); err == nil {
		t.Error("a guest's channel, which the server refuses, passed")
	}
}
