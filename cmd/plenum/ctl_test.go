package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
	"google.golang.org/protobuf/proto"
)

// ctlClient is a Mumble client with the text messages it received.
type ctlClient struct {
	*client.Client
	mu    sync.Mutex
	texts []string
}

func (c *ctlClient) got(text string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.texts {
		if t == text {
			return true
		}
	}
	return false
}

func dialCtlClient(t *testing.T, addr, name string) *ctlClient {
	t.Helper()
	c := &ctlClient{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, client.Config{Address: addr, Username: name, DisableUDP: true,
		OnMessage: func(_ control.Type, m proto.Message) {
			if tm, ok := m.(*mumblepb.TextMessage); ok {
				c.mu.Lock()
				c.texts = append(c.texts, tm.GetMessage())
				c.mu.Unlock()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	c.Client = cl
	return c
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
	}
}

func ctlRun(args ...string) (string, error) {
	var out bytes.Buffer
	err := runCtl(args, &out)
	return out.String(), err
}

// TestCtlEndToEnd: plenum ctl lists, moves, mutes and messages users
// with the generated admin token it finds in the data directory; plenum
// token create adds a moderate token to the file, which the running
// server takes up, and with which ctl (token from PLENUM_TOKEN) kicks
// and bans; plenum token revoke ends it. The Mumble clients see each
// action.
func TestCtlEndToEnd(t *testing.T) {
	dir := t.TempDir()
	file, data := filepath.Join(dir, "plenum.toml"), filepath.Join(dir, "data")
	if err := os.WriteFile(file, conf.DefaultTOML(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Config: cfg, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", WebListen: server.NoWeb, DataDir: data,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
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
	url := "http://" + srv.AdminAddr().String()

	alice, bob := dialCtlClient(t, srv.Addr().String(), "alice"), dialCtlClient(t, srv.Addr().String(), "bob")
	waitUntil(t, "both online", func() bool { return alice.NumUsers() == 2 })

	base := []string{"-server", url, "-config", file, "-data", data}
	out, err := ctlRun(append(base, "list")...)
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "bob") || !strings.Contains(out, "Lobby") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if _, err := ctlRun(append(base, "move", "alice", "Overflow")...); err != nil {
		t.Fatal(err)
	}
	overflow, ok := channelNamed(bob.Client, "Overflow")
	if !ok {
		t.Fatal("no channel Overflow")
	}
	waitUntil(t, "alice in Overflow, as bob sees", func() bool { return bob.Users()[alice.Session()].GetChannelId() == overflow })
	if _, err := ctlRun(append(base, "mute", "bob")...); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "bob muted, as alice sees", func() bool { return alice.Users()[bob.Session()].GetMute() })
	if _, err := ctlRun(append(base, "message", "alice", "hello", "from", "the", "desk")...); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "alice's message", func() bool { return alice.got("hello from the desk") })
	if _, err := ctlRun(append(base, "message", "-channel", "Lobby", "to the lobby")...); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "bob's message to the Lobby", func() bool { return bob.got("to the lobby") })
	if _, err := ctlRun(append(base, "move", "nobody", "Overflow")...); err == nil || !strings.Contains(err.Error(), "nobody named") {
		t.Errorf("moving nobody: %v", err)
	}

	var tokOut bytes.Buffer
	if err := runToken([]string{"create", "-name", "desk", "-scope", "moderate", "-config", file}, &tokOut); err != nil {
		t.Fatal(err)
	}
	token, _, _ := strings.Cut(strings.TrimPrefix(tokOut.String(), "token: "), "\n")
	if fileData, _ := os.ReadFile(file); strings.Contains(string(fileData), token) || !strings.Contains(string(fileData), conf.HashAPIToken(token)) {
		t.Fatal("the file holds the token, or not its hash")
	}
	t.Setenv("PLENUM_TOKEN", token)
	waitUntil(t, "the server taking up the new token", func() bool { _, err := ctlRun("-server", url, "list"); return err == nil })
	if _, err := ctlRun("-server", url, "kick", "bob", "see", "you"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "bob kicked", func() bool {
		select {
		case <-bob.Done():
			return true
		default:
			return false
		}
	})
	if _, err := ctlRun("-server", url, "ban", "alice"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "alice banned", func() bool {
		select {
		case <-alice.Done():
			return true
		default:
			return false
		}
	})
	var listOut bytes.Buffer
	if err := runToken([]string{"list", "-config", file}, &listOut); err != nil || listOut.String() != "desk\tmoderate\n" {
		t.Fatalf("token list: %v %q", err, listOut.String())
	}
	if err := runToken([]string{"revoke", "-config", file, "desk"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the revoked token refused", func() bool {
		_, err := ctlRun("-server", url, "list")
		return err != nil && strings.Contains(err.Error(), "admin token")
	})
}

// TestTokenCreateRefusesBadInput: a bad scope or an empty name is
// refused before a token is shown, and the file is left alone.
func TestTokenCreateRefusesBadInput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plenum.toml")
	os.WriteFile(file, conf.DefaultTOML(), 0o600)
	for _, args := range [][]string{{"-name", "x", "-scope", "root"}, {"-name", "", "-scope", "read"}} {
		var out bytes.Buffer
		if err := runToken(append([]string{"create", "-config", file}, args...), &out); err == nil || strings.Contains(out.String(), "token:") {
			t.Errorf("%v: %v %q", args, err, out.String())
		}
	}
	if data, _ := os.ReadFile(file); !bytes.Equal(data, conf.DefaultTOML()) {
		t.Error("the file changed")
	}
}
