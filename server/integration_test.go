package server_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/auth"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// testServer is a server a test started with startTestServer. It runs
// until the test ends, or until the test stops it.
type testServer struct {
	*server.Server
	addr       string
	dataDir    string
	configFile string // the file it was started on, "" if none
	// stop stops the server now (the end of the test would) and returns
	// how long Serve took to return; after the first time, at once.
	stop func() time.Duration
}

// testOpts says how a test server differs from the usual one, which the
// zero value gives: the embedded default configuration, a fresh data
// directory, the channels' ACLs, a logger for warnings (everything with
// PLENUM_TEST_LOG set) and an admin listener on a free loopback port.
// It always listens on a free loopback port.
type testOpts struct {
	// The configuration is config if set, else the file configFile, else
	// toml written to plenary.toml in a directory of its own (the data
	// directory then defaults to data/ beside it), else the default;
	// edit, if set, changes it before the start.
	config     *conf.Config
	configFile string
	toml       []byte
	edit       func(*conf.Config)

	dataDir       string             // "" for a fresh temporary directory
	policy        acl.Policy         // nil for the channels' ACLs
	logger        *slog.Logger       // nil for the test logger
	adminListen   string             // "" for a free loopback port; server.NoAdmin for none
	listen        string             // "" for a free loopback port
	trustedRoots  *x509.CertPool     // nil for the system's
	authenticator auth.Authenticator // nil for the providers [auth] configures
	// web runs the web listener and WebRTC on free loopback ports.
	web       bool
	webListen string // with web: the web listener's address; "" for a free loopback port
	cluster   server.ClusterLink
}

// startTestServer runs a server as o says until the test ends; the test
// may stop it earlier with stop. Every server the tests of this package
// talk to over the network starts here.
func startTestServer(t testing.TB, o testOpts) *testServer {
	t.Helper()
	cfg, file := o.config, o.configFile
	if cfg == nil && file == "" && o.toml != nil {
		dir := t.TempDir()
		file = filepath.Join(dir, "plenary.toml")
		if err := os.WriteFile(file, o.toml, 0o600); err != nil {
			t.Fatal(err)
		}
		if o.dataDir == "" {
			o.dataDir = filepath.Join(dir, "data")
		}
	}
	switch {
	case cfg != nil:
	case file != "":
		loaded, err := conf.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		cfg = loaded
	default:
		cfg = conf.Default()
	}
	if o.edit != nil {
		o.edit(cfg)
	}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	if o.adminListen == "" {
		o.adminListen = "127.0.0.1:0"
	}
	if o.logger == nil {
		level := slog.LevelWarn
		if os.Getenv("PLENUM_TEST_LOG") != "" {
			level = slog.LevelDebug
		}
		o.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	if o.listen == "" {
		o.listen = "127.0.0.1:0"
	}
	webListen := server.NoWeb
	if o.web {
		webListen = cmp.Or(o.webListen, "127.0.0.1:0")
		cfg.Server.WebUDPPort, cfg.Server.WebTCPPort = 0, 0
	}
	srv, err := server.New(server.Options{Config: cfg, Listen: o.listen, AdminListen: o.adminListen, WebListen: webListen,
		DataDir: o.dataDir, Logger: o.logger, Policy: o.policy, TrustedRoots: o.trustedRoots, Authenticator: o.authenticator,
		Cluster: o.cluster})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx)
	}()
	stop := func() time.Duration {
		start := time.Now()
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Serve did not return within 30 s")
		}
		return time.Since(start)
	}
	t.Cleanup(func() { stop() })
	return &testServer{Server: srv, addr: srv.Addr().String(), dataDir: o.dataDir, configFile: file, stop: stop}
}

// startServer runs a server on the default configuration, changed by edit
// (nil for none).
func startServer(t testing.TB, edit func(*conf.Config)) *testServer {
	t.Helper()
	return startTestServer(t, testOpts{edit: edit})
}

// peer is a test client with its received voice in a channel.
type peer struct {
	*client.Client
	audio chan client.AudioPacket
	t     testing.TB

	mu   sync.Mutex
	msgs []proto.Message
}

func (s *testServer) join(t testing.TB, name string, edit func(*client.Config)) *peer {
	t.Helper()
	p := &peer{audio: make(chan client.AudioPacket, 4096), t: t}
	cfg := client.Config{
		Address:  s.addr,
		Username: name,
		OnAudio: func(a *client.AudioPacket) {
			select {
			case p.audio <- *a:
			default:
			}
		},
		OnMessage: func(_ control.Type, m proto.Message) {
			p.mu.Lock()
			p.msgs = append(p.msgs, m)
			p.mu.Unlock()
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	p.Client = c
	return p
}

// messages returns the received control messages of type T.
func messagesOf[T proto.Message](p *peer) []T {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []T
	for _, m := range p.msgs {
		if v, ok := m.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func (p *peer) waitFor(what string, cond func(c *client.Client) bool) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Wait(ctx, cond); err != nil {
		p.t.Fatalf("waiting for %s: %v", what, err)
	}
}

func (p *peer) waitUDP() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitUDP(ctx); err != nil {
		p.t.Fatalf("UDP never came up: %v", err)
	}
}

// nextAudio returns the next voice packet, failing after 5 s.
func (p *peer) nextAudio() client.AudioPacket {
	p.t.Helper()
	select {
	case a := <-p.audio:
		return a
	case <-time.After(5 * time.Second):
		p.t.Fatal("no voice packet within 5 s")
		return client.AudioPacket{}
	}
}

// expectFrame asserts that the next packet p hears is frame, so anything sent
// before it (that p must not hear) would show up as a failure. Tests send a
// "fence" packet that everyone hears instead of sleeping.
func (p *peer) expectFrame(frame uint64) client.AudioPacket {
	p.t.Helper()
	a := p.nextAudio()
	if a.Frame != frame {
		p.t.Fatalf("heard frame %d (context %d, from %d), want frame %d", a.Frame, a.Context, a.Sender, frame)
	}
	return a
}

func channelByName(c *client.Client, name string) (uint32, bool) {
	for id, ch := range c.Channels() {
		if ch.GetName() == name {
			return id, true
		}
	}
	return 0, false
}

func (p *peer) channelID(name string) uint32 {
	p.t.Helper()
	id, ok := channelByName(p.Client, name)
	if !ok {
		p.t.Fatalf("no channel %q", name)
	}
	return id
}

// moveTo moves p and waits until observer sees it there.
func (p *peer) moveTo(name string, observers ...*peer) {
	p.t.Helper()
	id := p.channelID(name)
	if err := p.Move(id); err != nil {
		p.t.Fatal(err)
	}
	session := p.Session()
	for _, o := range append(observers, p) {
		o.waitFor("move to "+name, func(c *client.Client) bool {
			u, ok := c.Users()[session]
			return ok && u.GetChannelId() == id
		})
	}
}

var opus = bytes.Repeat([]byte{0xAB}, 100)

func TestJoinSeesTreeAndEachOther(t *testing.T) {
	s := startServer(t, nil)
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)

	a.waitFor("bob", func(c *client.Client) bool {
		u, ok := c.Users()[b.Session()]
		return ok && u.GetName() == "bob"
	})
	if u, ok := b.Users()[a.Session()]; !ok || u.GetName() != "alice" {
		t.Fatalf("bob does not see alice: %v", b.Users())
	}
	if a.Session() == b.Session() || a.Session() == 0 {
		t.Fatalf("sessions %d and %d", a.Session(), b.Session())
	}

	// The whole default tree arrives, with parents and links.
	cfg := conf.Default()
	chans := b.Channels()
	if root, ok := chans[0]; !ok || root.GetName() != cfg.Server.Name {
		t.Fatalf("root channel: %v", chans[0])
	}
	n := 0
	cfg.Walk(func(path string, ch *conf.Channel, parent string) {
		n++
		id, ok := channelByName(b.Client, ch.Name)
		if !ok {
			t.Errorf("channel %q missing", path)
			return
		}
		wantParent := uint32(0)
		if parent != "" {
			wantParent = b.channelID(cfg.Lookup(parent).Name)
		}
		if got := chans[id].GetParent(); got != wantParent {
			t.Errorf("channel %q has parent %d, want %d", path, got, wantParent)
		}
		if chans[id].GetDescription() != ch.Description && chans[id].DescriptionHash == nil {
			t.Errorf("channel %q description %q, want %q", path, chans[id].GetDescription(), ch.Description)
		}
		for _, l := range ch.Links {
			want := b.channelID(cfg.Lookup(l).Name)
			if !containsID(chans[id].GetLinks(), want) {
				t.Errorf("channel %q links %v, want %d (%s) among them", path, chans[id].GetLinks(), want, l)
			}
			if !containsID(chans[want].GetLinks(), id) {
				t.Errorf("link %q → %q is not symmetric", path, l)
			}
		}
	})
	if len(chans) != n+1 {
		t.Errorf("client sees %d channels, config has %d plus root", len(chans), n)
	}

	// Both start in the default channel; ServerSync carries the basics.
	lobby := b.channelID(cfg.Lookup(cfg.Server.DefaultChannel).Name)
	for _, p := range []*peer{a, b} {
		if got := p.Users()[p.Session()].GetChannelId(); got != lobby {
			t.Errorf("user %d is in channel %d, want default channel %d", p.Session(), got, lobby)
		}
		sync := p.ServerSync()
		if sync.GetSession() != p.Session() || sync.GetMaxBandwidth() != uint32(cfg.Server.Bandwidth) {
			t.Errorf("ServerSync = %v", sync)
		}
		perms := sync.GetPermissions()
		if perms&0x4 == 0 || perms&0x8 == 0 || perms&0x1 != 0 {
			t.Errorf("root permissions %#x: want Enter and Speak, not Write", perms)
		}
	}
	// ServerConfig follows ServerSync, so it may arrive after Dial returned.
	b.waitFor("ServerConfig", func(*client.Client) bool { return len(messagesOf[*mumblepb.ServerConfig](b)) > 0 })
	if got := messagesOf[*mumblepb.ServerConfig](b); got[0].GetMaxUsers() != uint32(cfg.Server.MaxUsers) || !got[0].GetAllowHtml() {
		t.Errorf("ServerConfig = %v", got)
	}
	if got := messagesOf[*mumblepb.SuggestConfig](b); len(got) != 0 {
		t.Errorf("SuggestConfig sent although nothing is suggested: %v", got)
	}
	if got := messagesOf[*mumblepb.CodecVersion](b); len(got) == 0 || !got[0].GetOpus() {
		t.Errorf("CodecVersion = %v", got)
	}
	if b.ServerVersion() < control.ProtobufUDPVersion {
		t.Errorf("server announces %s, want at least 1.5.0", control.VersionString(b.ServerVersion()))
	}

	// A clean disconnect is seen by everyone else.
	a.Close()
	b.waitFor("alice to leave", func(c *client.Client) bool {
		_, ok := c.Users()[a.Session()]
		return !ok
	})
}

func TestSuggestConfig(t *testing.T) {
	ptt := true
	s := startServer(t, func(c *conf.Config) {
		c.Server.SuggestPushToTalk = &ptt
		c.Server.SuggestVersion = "1.4.0"
	})
	a := s.join(t, "alice", nil)
	a.waitFor("SuggestConfig", func(*client.Client) bool {
		for _, m := range messagesOf[*mumblepb.SuggestConfig](a) {
			return m.GetPushToTalk() && m.Positional == nil && m.GetVersionV2() == control.MakeVersion(1, 4, 0) && m.GetVersionV1() == 0x10400
		}
		return false
	})
}

func containsID(ids []uint32, id uint32) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

func TestTextMessages(t *testing.T) {
	s := startServer(t, nil)
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	c := s.join(t, "carol", nil)
	c.moveTo("Plenary", a, b)

	got := func(p *peer, text string) bool {
		for _, m := range messagesOf[*mumblepb.TextMessage](p) {
			if m.GetMessage() == text {
				return m.GetActor() == a.Session()
			}
		}
		return false
	}
	waitText := func(p *peer, text string) {
		p.waitFor("text "+text, func(*client.Client) bool { return got(p, text) })
	}

	// To a user.
	if err := a.SendText("hello bob", []uint32{b.Session()}, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitText(b, "hello bob")
	// To a channel: bob (same channel as alice) hears, carol (elsewhere) not.
	lobby := a.Users()[a.Session()].GetChannelId()
	a.SendText("hello lobby", nil, []uint32{lobby}, nil)
	waitText(b, "hello lobby")
	// To a tree from root: everyone but the sender.
	a.SendText("hello tree", nil, nil, []uint32{0})
	waitText(b, "hello tree")
	waitText(c, "hello tree")
	if got(c, "hello lobby") || got(c, "hello bob") {
		t.Error("carol received a message that was not for her")
	}
	if got(a, "hello tree") {
		t.Error("the sender received its own message")
	}
	// Oversized text is refused with TextTooLong.
	a.SendText(string(bytes.Repeat([]byte("x"), 6000)), []uint32{b.Session()}, nil, nil)
	a.waitFor("TextTooLong", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](a) {
			if d.GetType() == mumblepb.PermissionDenied_TextTooLong {
				return true
			}
		}
		return false
	})
}

func TestCommentsAndBlobs(t *testing.T) {
	s := startServer(t, nil)
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	short := "I chair the session"
	long := string(bytes.Repeat([]byte("long comment "), 20))

	a.Send(&mumblepb.UserState{Comment: proto.String(short)})
	b.waitFor("short comment inline", func(c *client.Client) bool {
		return c.Users()[a.Session()].GetComment() == short
	})
	a.Send(&mumblepb.UserState{Comment: proto.String(long)})
	b.waitFor("comment hash", func(c *client.Client) bool {
		return len(c.Users()[a.Session()].GetCommentHash()) == 20
	})
	b.Send(&mumblepb.RequestBlob{SessionComment: []uint32{a.Session()}})
	b.waitFor("comment blob", func(c *client.Client) bool {
		return c.Users()[a.Session()].GetComment() == long
	})
}

func TestSelfMuteDeafAndMoveAreBroadcast(t *testing.T) {
	s := startServer(t, nil)
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	a.SetSelfMute(true, true)
	b.waitFor("self-deaf", func(c *client.Client) bool {
		u := c.Users()[a.Session()]
		return u.GetSelfDeaf() && u.GetSelfMute()
	})
	a.SetSelfMute(false, false)
	b.waitFor("un-deaf", func(c *client.Client) bool {
		u := c.Users()[a.Session()]
		return !u.GetSelfDeaf() && !u.GetSelfMute()
	})
	a.moveTo("Plenary", b)
}

func TestUserStatsForOneself(t *testing.T) {
	s := startServer(t, nil)
	a := s.join(t, "alice", nil)
	a.waitUDP()
	a.Send(&mumblepb.UserStats{Session: proto.Uint32(a.Session())})
	a.waitFor("UserStats", func(*client.Client) bool {
		for _, st := range messagesOf[*mumblepb.UserStats](a) {
			if st.GetSession() == a.Session() && st.Version != nil && st.FromClient != nil && st.GetFromClient().GetGood() > 0 {
				return true
			}
		}
		return false
	})
}

// rawConn is a hand-driven TLS connection for tests of bad behaviour.
type rawConn struct {
	t  testing.TB
	tc *tls.Conn
	r  *control.Reader
}

func (s *testServer) raw(t testing.TB) *rawConn {
	t.Helper()
	return s.rawWith(t, 0)
}

// rawWith dials with a receive buffer of rcvbuf bytes (0: the default), so
// a client that does not read makes the server's writes block quickly.
func (s *testServer) rawWith(t testing.TB, rcvbuf int) *rawConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return serr
		}
	}
	tc, err := tls.DialWithDialer(d, "tcp", s.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	return &rawConn{t: t, tc: tc, r: control.NewReader(tc)}
}

func (c *rawConn) send(m proto.Message) {
	c.t.Helper()
	frame, err := control.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.tc.Write(frame); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) sendFrame(t control.Type, payload []byte) {
	c.t.Helper()
	if _, err := c.tc.Write(control.AppendFrame(nil, t, payload)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) login(name string) {
	c.t.Helper()
	c.send(&mumblepb.Version{VersionV1: proto.Uint32(0x10500), VersionV2: proto.Uint64(control.MakeVersion(1, 5, 0))})
	c.send(&mumblepb.Authenticate{Username: proto.String(name), Opus: proto.Bool(true)})
}

// until reads messages until one satisfies cond, failing on EOF or after 5 s.
func (c *rawConn) until(what string, cond func(control.Type, proto.Message) bool) {
	c.t.Helper()
	c.tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		typ, payload, err := c.r.Read()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", what, err)
		}
		m, _ := control.Unmarshal(typ, payload)
		if cond(typ, m) {
			return
		}
	}
}

// closed asserts the server closes the connection within d.
func (c *rawConn) closed(d time.Duration) {
	c.t.Helper()
	c.tc.SetReadDeadline(time.Now().Add(d))
	for {
		_, _, err := c.r.Read()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection not closed within %v", d)
		}
		return
	}
}
