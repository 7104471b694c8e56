package browsertest

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// hallConfig is the default configuration with a floor-controlled hall
// "Hall" (holders of the token "chair" run it) beside the default's
// channels (Lobby, Plenary ...).
func hallConfig(t testing.TB) *conf.Config {
	// A test clicks faster than people type: Murmur's flood limit of 5
	// messages would drop the page's later ones.
	data := strings.Replace(string(conf.DefaultTOML()), "message_burst = 5", "message_burst = 100", 1) + `
[[channel]]
name = "Hall"
floor = true
floor_groups = ["#chair"]

  [[channel.acl]]
  group = "#chair"
  allow = ["MuteDeafen"]
`
	c, err := conf.Parse([]byte(data), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// env is a running server and the address browsers open.
type env struct {
	t      testing.TB
	srv    *server.Server
	mumble string // the Mumble listener, host:port
	base   string // the page's origin, http://host:port
}

// startServer runs a Plenum server for the test, stopped at its end, its
// web listener on loopback.
func startServer(t testing.TB, c *conf.Config) *env {
	return startServerAnnouncing(t, c, netip.Addr{})
}

// startServerAnnouncing is startServer with the web listener and WebRTC
// on all addresses and announce as the ICE candidates' address, for
// Firefox, which does not connect to a peer's loopback candidates, and
// for a browser in another network namespace: as a server behind a NAT
// is set up.
func startServerAnnouncing(t testing.TB, c *conf.Config, announce netip.Addr) *env {
	t.Helper()
	c.Server.WebUDPPort, c.Server.WebTCPPort = 0, 0
	level := slog.LevelWarn
	if os.Getenv("PLENUM_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	webListen := "127.0.0.1:0"
	if announce.IsValid() {
		webListen = "0.0.0.0:0"
		c.Server.WebAddresses = []string{announce.String()}
	}
	srv, err := server.New(server.Options{Config: c, Listen: "127.0.0.1:0", AdminListen: server.NoAdmin, WebListen: webListen, DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e := &env{t: t, srv: srv, mumble: srv.Addr().String()}
	// The page needs a secure context for the microphone: localhost is one.
	e.base = "http://localhost:" + strconv.Itoa(int(srv.WebAddr().Port()))
	return e
}

// mumbleUser is a Mumble client in the test with what it was told.
type mumbleUser struct {
	*client.Client
	mu    sync.Mutex
	texts []string
	heard map[uint32][][]byte // Opus frames by sender
}

func (e *env) dial(name string, tokens ...string) *mumbleUser {
	e.t.Helper()
	u := &mumbleUser{heard: map[uint32][][]byte{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Address: e.mumble, Username: name, Tokens: tokens,
		OnAudio: func(p *client.AudioPacket) {
			u.mu.Lock()
			u.heard[p.Sender] = append(u.heard[p.Sender], p.Opus)
			u.mu.Unlock()
		},
		OnMessage: func(t control.Type, m proto.Message) {
			if tm, ok := m.(*mumblepb.TextMessage); ok {
				u.mu.Lock()
				u.texts = append(u.texts, tm.GetMessage())
				u.mu.Unlock()
			}
		}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	u.Client = c
	return u
}

// channel returns the id of the channel called name.
func (u *mumbleUser) channel(t testing.TB, name string) uint32 {
	for id, c := range u.Channels() {
		if c.GetName() == name {
			return id
		}
	}
	t.Fatalf("no channel %q", name)
	return 0
}

// join moves the client into the channel called name and waits until it is there.
func (u *mumbleUser) join(t testing.TB, name string) {
	t.Helper()
	id := u.channel(t, name)
	if err := u.Move(id); err != nil {
		t.Fatal(err)
	}
	u.waitFor(t, "in "+name, func(c *client.Client) bool { return c.Users()[c.Session()].GetChannelId() == id })
}

func (u *mumbleUser) waitFor(t testing.TB, what string, cond func(c *client.Client) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := u.Wait(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// told waits until the client was sent a text containing s.
func (u *mumbleUser) told(t testing.TB, s string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		u.mu.Lock()
		for _, m := range u.texts {
			if strings.Contains(m, s) {
				u.mu.Unlock()
				return
			}
		}
		u.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	t.Fatalf("never told %q; told %q", s, u.texts)
}

// externalAddr returns an IPv4 address of this machine other than
// loopback, or skips the test.
func externalAddr(t testing.TB) netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
			return p.Addr()
		}
	}
	t.Skip("no IPv4 address besides loopback: Firefox does not connect to loopback ICE candidates")
	return netip.Addr{}
}
