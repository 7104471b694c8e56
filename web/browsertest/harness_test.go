package browsertest

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
	"github.com/plenum-voice/plenum/web/page"
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

// startServer runs a Plenum server for the test, stopped at its end.
func startServer(t testing.TB, c *conf.Config) *env {
	t.Helper()
	srv, err := server.New(server.Options{Config: c, Listen: "127.0.0.1:0", AdminListen: server.NoAdmin, DataDir: t.TempDir(),
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
	t.Cleanup(func() { cancel(); <-done })
	e := &env{t: t, srv: srv, mumble: srv.Addr().String()}
	e.base = startBridge(t, e.mumble)
	return e
}

// startBridge serves the embedded page and a /ws that carries each
// WebSocket message as one Mumble TCP frame to and from the server's
// Mumble listener: the control half of the web listener's contract,
// without WebRTC. It lets the page's control tests run against a real
// server.
func startBridge(t testing.TB, mumble string) string {
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServerFS(page.FS))
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		tc, err := tls.Dial("tcp", mumble, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer tc.Close()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // server -> browser
			defer wg.Done()
			defer cancel()
			hdr := make([]byte, 6)
			for {
				if _, err := io.ReadFull(tc, hdr); err != nil {
					return
				}
				frame := make([]byte, 6+binary.BigEndian.Uint32(hdr[2:]))
				copy(frame, hdr)
				if _, err := io.ReadFull(tc, frame[6:]); err != nil {
					return
				}
				if control.Type(binary.BigEndian.Uint16(hdr)) == control.UDPTunnel {
					continue
				}
				if ws.Write(ctx, websocket.MessageBinary, frame) != nil {
					return
				}
			}
		}()
		for { // browser -> server; signalling (type 100) has no one to answer it here
			_, b, err := ws.Read(ctx)
			if err != nil || len(b) < 6 {
				break
			}
			if binary.BigEndian.Uint16(b) == 100 {
				continue
			}
			if _, err := tc.Write(b); err != nil {
				break
			}
		}
		tc.Close()
		cancel()
		wg.Wait()
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	// The page needs a secure context for the microphone: localhost is one.
	return strings.Replace(hs.URL, "127.0.0.1", "localhost", 1)
}

// mumbleUser is a Mumble client in the test with what it was told.
type mumbleUser struct {
	*client.Client
	mu    sync.Mutex
	texts []string
}

func (e *env) dial(name string, tokens ...string) *mumbleUser {
	e.t.Helper()
	u := &mumbleUser{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Address: e.mumble, Username: name, Tokens: tokens,
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
