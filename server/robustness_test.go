package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/udppb"
	"github.com/plenum-voice/plenum/server"
)

func dialErr(s *testServer, edit func(*client.Config)) error {
	cfg := client.Config{Address: s.addr}
	edit(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err == nil {
		c.Close()
	}
	return err
}

func wantReject(t *testing.T, err error, want mumblepb.Reject_RejectType) {
	t.Helper()
	var rej *client.RejectError
	if !errors.As(err, &rej) {
		t.Fatalf("got %v, want Reject %v", err, want)
	}
	if rej.Type != want {
		t.Fatalf("Reject type %v (%q), want %v", rej.Type, rej.Reason, want)
	}
}

func TestRejects(t *testing.T) {
	s := startServer(t, func(c *conf.Config) {
		c.Server.Password = "plenary"
		c.Server.MaxUsers = 2
	})
	withPW := func(name string) func(*client.Config) {
		return func(c *client.Config) { c.Username, c.Password = name, "plenary" }
	}
	t.Run("wrong server password", func(t *testing.T) {
		wantReject(t, dialErr(s, func(c *client.Config) { c.Username, c.Password = "alice", "guess" }), mumblepb.Reject_WrongServerPW)
	})
	t.Run("invalid username", func(t *testing.T) {
		for _, name := range []string{"", "   ", "tab\tname", "smile😀"} {
			wantReject(t, dialErr(s, withPW(name)), mumblepb.Reject_InvalidUsername)
		}
	})
	s.join(t, "alice", withPW("alice"))
	t.Run("username in use", func(t *testing.T) {
		wantReject(t, dialErr(s, withPW("ALICE")), mumblepb.Reject_UsernameInUse)
	})
	s.join(t, "bob", withPW("bob"))
	t.Run("server full", func(t *testing.T) {
		wantReject(t, dialErr(s, withPW("carol")), mumblepb.Reject_ServerFull)
	})
	if got := s.Stats().Users; got != 2 {
		t.Fatalf("%d users after rejects, want 2", got)
	}
}

func selfSignedCert(t *testing.T) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestReconnectWithSameCertificateReplacesGhost: a phone that lost its
// network reconnects before the old connection timed out.
func TestReconnectWithSameCertificateReplacesGhost(t *testing.T) {
	s := startServer(t, nil)
	cert := selfSignedCert(t)
	withCert := func(c *client.Config) { c.Certificate = cert }
	watcher := s.join(t, "watcher", nil)
	old := s.join(t, "alice", withCert)
	again := s.join(t, "alice", withCert)
	select {
	case <-old.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the old connection was not closed")
	}
	watcher.waitFor("ghost removed, new session present", func(c *client.Client) bool {
		_, ghost := c.Users()[old.Session()]
		u, ok := c.Users()[again.Session()]
		return !ghost && ok && u.GetName() == "alice" && u.GetHash() != ""
	})
}

func TestServerListPing(t *testing.T) {
	ask := func(t *testing.T, s *testServer, req []byte) []byte {
		t.Helper()
		conn, err := net.Dial("udp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write(req)
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 1024)
		n, err := conn.Read(buf)
		if err != nil {
			return nil
		}
		return buf[:n]
	}
	legacy := []byte{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}

	t.Run("protobuf extended, never larger than the request", func(t *testing.T) {
		s := startServer(t, nil)
		s.join(t, "alice", nil)
		body, _ := proto.Marshal(&udppb.Ping{Timestamp: 0x1234567890, RequestExtendedInformation: true})
		req := append([]byte{1}, body...)
		reply := ask(t, s, req)
		if len(reply) == 0 || reply[0] != 1 {
			t.Fatalf("reply %x", reply)
		}
		if len(reply) > len(req) {
			t.Fatalf("reply of %d bytes to a %d-byte request amplifies", len(reply), len(req))
		}
		var p udppb.Ping
		if err := proto.Unmarshal(reply[1:], &p); err != nil || p.Timestamp != 0x1234567890 {
			t.Fatalf("reply %v, %v", &p, err)
		}
		// A padded request has room for all the details.
		padded := append(append([]byte{1}, body...), make([]byte, 0)...)
		padded = append(padded, 0x7a, 20) // field 15, bytes, 20 bytes of padding
		padded = append(padded, make([]byte, 20)...)
		reply = ask(t, s, padded)
		p.Reset()
		if err := proto.Unmarshal(reply[1:], &p); err != nil {
			t.Fatal(err)
		}
		if p.ServerVersionV2 != server.Version || p.UserCount != 1 || p.MaxUserCount != 1000 || p.MaxBandwidthPerUser != 558000 {
			t.Fatalf("extended reply %v", &p)
		}
	})
	t.Run("legacy unanswered by default", func(t *testing.T) {
		s := startServer(t, nil)
		if reply := ask(t, s, legacy); reply != nil {
			t.Fatalf("legacy ping answered with %d bytes although legacy_ping_reply is off", len(reply))
		}
	})
	t.Run("legacy answered when enabled", func(t *testing.T) {
		s := startServer(t, func(c *conf.Config) { c.Server.LegacyPingReply = true })
		reply := ask(t, s, legacy)
		if len(reply) != 24 {
			t.Fatalf("legacy reply %x", reply)
		}
		if binary.BigEndian.Uint32(reply) != control.VersionV1(server.Version) || string(reply[4:12]) != string(legacy[4:]) ||
			binary.BigEndian.Uint32(reply[16:]) != 1000 || binary.BigEndian.Uint32(reply[20:]) != 558000 {
			t.Fatalf("legacy reply %x", reply)
		}
		// Four non-zero leading bytes are not a ping.
		if reply := ask(t, s, []byte{1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}); reply != nil {
			t.Fatalf("answered a non-ping: %x", reply)
		}
	})
}

func TestIdleClientIsDisconnected(t *testing.T) {
	s := startServer(t, func(c *conf.Config) { c.Server.Timeout.Duration = time.Second })
	idle := s.raw(t)
	idle.login("idle")
	idle.until("ServerSync", func(_ control.Type, m proto.Message) bool {
		_, ok := m.(*mumblepb.ServerSync)
		return ok
	})
	start := time.Now()
	idle.closed(5 * time.Second)
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("disconnected after %v, before the 1 s timeout", d)
	}
}

func TestBadInputIsIgnoredOrDisconnects(t *testing.T) {
	s := startServer(t, nil)
	bystander := s.join(t, "bystander", nil)

	// Before authentication: voice, text and garbage are ignored.
	c := s.raw(t)
	c.sendFrame(control.UDPTunnel, []byte{0x80, 0x01, 0x02, 0x03})
	c.send(&mumblepb.TextMessage{Message: proto.String("too early"), Session: []uint32{bystander.Session()}})
	c.sendFrame(control.Type(99), []byte("unknown type"))
	c.sendFrame(control.Ping, []byte{0xff, 0xff, 0xff}) // not protobuf
	c.login("late")
	c.until("ServerSync", func(_ control.Type, m proto.Message) bool {
		_, ok := m.(*mumblepb.ServerSync)
		return ok
	})
	// After authentication the same garbage is still ignored: a ping gets
	// its answer afterwards.
	c.sendFrame(control.Type(99), []byte("unknown type"))
	c.sendFrame(control.TextMessage, []byte{0x0a, 0xff})
	c.send(&mumblepb.Ping{Timestamp: proto.Uint64(42)})
	c.until("ping reply", func(_ control.Type, m proto.Message) bool {
		p, ok := m.(*mumblepb.Ping)
		return ok && p.GetTimestamp() == 42
	})
	for _, m := range messagesOf[*mumblepb.TextMessage](bystander) {
		t.Errorf("bystander received %q", m.GetMessage())
	}

	// A header claiming more than Murmur's limit closes the connection.
	big := s.raw(t)
	big.login("big")
	hdr := []byte{0, byte(control.TextMessage), 0x00, 0x80, 0x00, 0x00} // 0x800000 bytes
	big.tc.Write(hdr)
	big.closed(5 * time.Second)

	// The bystander never noticed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := bystander.Ping(ctx); err != nil {
		t.Fatalf("bystander lost its connection: %v", err)
	}
}

func TestPermissionChecksDenyAdministration(t *testing.T) {
	s := startServer(t, nil)
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	denied := func(perm uint32) func(*client.Client) bool {
		return func(*client.Client) bool {
			for _, d := range messagesOf[*mumblepb.PermissionDenied](a) {
				if d.GetType() == mumblepb.PermissionDenied_Permission && d.GetPermission()&perm != 0 {
					return true
				}
			}
			return false
		}
	}
	a.Send(&mumblepb.UserRemove{Session: proto.Uint32(b.Session()), Reason: proto.String("bye")})
	a.waitFor("kick denied", denied(0x10000|0x20000))
	a.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("new")})
	a.waitFor("channel creation denied", denied(0x40))
	a.Send(&mumblepb.UserState{Session: proto.Uint32(b.Session()), Mute: proto.Bool(true)})
	a.waitFor("mute denied", denied(0x10))
	a.Send(&mumblepb.ACL{ChannelId: proto.Uint32(0), Query: proto.Bool(true)})
	a.waitFor("ACL denied", denied(0x1))
	if u := b.Users()[b.Session()]; u.GetMute() {
		t.Fatal("bob was muted")
	}
}

func TestCryptResyncAnswersServerNonce(t *testing.T) {
	s := startServer(t, nil)
	a := s.join(t, "alice", nil)
	a.Send(&mumblepb.CryptSetup{})
	a.waitFor("server nonce", func(*client.Client) bool {
		for _, m := range messagesOf[*mumblepb.CryptSetup](a) {
			if len(m.GetServerNonce()) == 16 && m.Key == nil && m.ClientNonce == nil {
				return true
			}
		}
		return false
	})
}

func TestTextFloodIsDropped(t *testing.T) {
	s := startServer(t, func(c *conf.Config) { c.Server.MessageBurst = 3 })
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	for i := 0; i < 20; i++ {
		a.SendText("flood", []uint32{b.Session()}, nil, nil)
	}
	syncControl(t, a) // PermissionQuery is not rate-limited and orders the floods before it
	syncControl(t, b)
	got := 0
	for _, m := range messagesOf[*mumblepb.TextMessage](b) {
		if m.GetMessage() == "flood" {
			got++
		}
	}
	// The login's Version took one token of the burst of 3; at most one
	// more may have leaked while sending.
	if got < 2 || got > 3 {
		t.Fatalf("%d of 20 flooded messages arrived, want 2 (burst 3 less the Version)", got)
	}
}

// TestNoGoroutinesLeftBehind: every connection's goroutines end with it,
// and the server's own end when it stops.
func TestNoGoroutinesLeftBehind(t *testing.T) {
	settle := func(want int) int {
		n := runtime.NumGoroutine()
		for deadline := time.Now().Add(5 * time.Second); n > want && time.Now().Before(deadline); n = runtime.NumGoroutine() {
			time.Sleep(10 * time.Millisecond)
		}
		return n
	}
	base := runtime.NumGoroutine()
	s := startTestServer(t, testOpts{logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	idle := s.join(t, "first", nil) // the server is up and serving
	withServer := runtime.NumGoroutine()
	for prev := -1; withServer != prev; withServer = runtime.NumGoroutine() {
		prev = withServer // wait until the count is steady
		time.Sleep(50 * time.Millisecond)
	}

	var peers []*peer
	for i := 0; i < 20; i++ {
		peers = append(peers, s.join(t, fmt.Sprintf("user%02d", i), nil))
	}
	raw := s.raw(t)
	raw.sendFrame(control.Type(99), []byte("junk"))
	raw.tc.Close()
	for _, p := range peers {
		p.Close()
	}
	idle.waitFor("everyone gone", func(c *client.Client) bool { return len(c.Users()) == 1 })
	if n := settle(withServer); n > withServer {
		t.Errorf("%d goroutines after 20 clients left, %d before they came", n, withServer)
	}
	// The server names what it runs: the one client left is one connection.
	running := s.RunningGoroutines()
	for _, name := range []string{"accept", "udp reader", "stage clock", "config writer", "config watcher",
		"certificate watcher", "floor clock", "admin listener"} {
		if running[name] == 0 {
			t.Errorf("no %q goroutine among %v", name, running)
		}
	}
	if running["connection"] != 1 {
		t.Errorf("%d connection goroutines with one client connected: %v", running["connection"], running)
	}
	idle.Close()
	s.stop()
	if n := settle(base); n > base {
		t.Errorf("%d goroutines after the server stopped, %d before it started", n, base)
	}
	if running := s.RunningGoroutines(); len(running) != 0 {
		t.Errorf("after Serve returned the server still runs %v", running)
	}
}
