package server_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

// fileConfig writes data as a configuration file in its own directory and
// loads it.
func fileConfig(t *testing.T, data string) (*conf.Config, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plenary.toml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, path
}

// TestShutdownTellsClientsAndFlushes: on stop every user reads the notice
// and then the end of the connection, edits made until the last moment
// are in the file and a registered user's channel is in the database when
// Serve returns.
func TestShutdownTellsClientsAndFlushes(t *testing.T) {
	cfg, path := fileConfig(t, "[server]\nmessage_limit = 1000\n\n[[channel]]\nname = \"Lobby\"\n\n[[channel]]\nname = \"Hall\"\n")
	dataDir := t.TempDir()
	certs := registerUsers(t, dataDir, "alice")
	s := startTestServer(t, testOpts{config: cfg, dataDir: dataDir, policy: grantAll{}})
	alice := s.join(t, "alice", as(certs["alice"]))
	admin := s.join(t, "admin", withCert(t))
	alice.moveTo("Hall")
	hall := alice.channelID("Hall")

	// A burst of edits, and the stop as soon as the first is confirmed,
	// while the server is still working through the others.
	for i := range 50 {
		admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String(fmt.Sprintf("late %d", i))})
	}
	admin.waitFor("the first edit", func(c *client.Client) bool { _, ok := channelByName(c, "late 0"); return ok })
	took := s.stop()

	for _, p := range []*peer{alice, admin} {
		select {
		case <-p.Done():
		default:
			t.Fatalf("%d: still connected after Serve returned", p.Session())
		}
		if err := p.Err(); !errors.Is(err, io.EOF) {
			t.Errorf("connection ended with %v, want a clean end of file", err)
		}
		p.mu.Lock()
		last := p.msgs[len(p.msgs)-1]
		p.mu.Unlock()
		if m, ok := last.(*mumblepb.TextMessage); !ok || m.GetMessage() != "Server is shutting down" || m.Actor != nil {
			t.Errorf("last message before the end: %v, want the shutdown notice from the server", last)
		}
	}
	file, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, ch := range admin.Channels() {
		if strings.HasPrefix(ch.GetName(), "late ") {
			seen++
			if file.Lookup(ch.GetName()) == nil {
				t.Errorf("channel %q was confirmed but is not in the file", ch.GetName())
			}
		}
	}
	st, err := store.Open(filepath.Join(dataDir, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if u, err := st.UserByName("alice"); err != nil || u.LastChannel != hall {
		t.Errorf("alice's last channel %d (%v), want Hall (%d)", u.LastChannel, err, hall)
	}
	t.Logf("stopped in %v; %d of 50 channels created before the stop, all of them in the file", took.Round(time.Millisecond), seen)
	if took > 2*time.Second {
		t.Errorf("stopping took %v although every client hung up at once", took)
	}
}

// TestShutdownCutsAStalledClient: a client that stopped reading with its
// buffers full does not hold the stop beyond shutdown_timeout, and the
// others are told and let go at once.
func TestShutdownCutsAStalledClient(t *testing.T) {
	const timeout = time.Second
	cfg := conf.Default()
	cfg.Server.ShutdownTimeout = conf.Duration{Duration: timeout}
	cfg.Server.MessageLimit, cfg.Server.MessageBurst = 100000, 100000
	s := startTestServer(t, testOpts{config: cfg})
	stuck := s.rawWith(t, 4096)
	stuck.login("stuck")
	alice := s.join(t, "alice", nil)
	var session uint32
	alice.waitFor("stuck user", func(c *client.Client) bool {
		for id, u := range c.Users() {
			if u.GetName() == "stuck" {
				session = id
				return true
			}
		}
		return false
	})
	// 150 × 4 KB: far more than the stuck client's socket takes, well
	// below the 1 MB at which the server would drop it.
	text := strings.Repeat("x", 4000)
	const sent = 150
	for range sent {
		alice.SendText(text, []uint32{session}, nil, nil)
	}
	syncControl(t, alice) // all of them queued for the stuck client

	ended := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		<-alice.Done()
		ended <- time.Since(start)
	}()
	took := s.stop()
	if took < timeout {
		t.Errorf("stop took %v; the stalled client should have been waited for up to %v", took, timeout)
	}
	if took > timeout+2*time.Second {
		t.Errorf("stop took %v with shutdown_timeout %v: the stalled client held it up", took, timeout)
	}
	aliceEnded := <-ended
	if !slices.ContainsFunc(messagesOf[*mumblepb.TextMessage](alice), func(m *mumblepb.TextMessage) bool {
		return m.GetMessage() == "Server is shutting down"
	}) {
		t.Error("alice was not told")
	}
	if aliceEnded >= timeout {
		t.Errorf("alice was let go only after %v, when the stalled client was cut", aliceEnded)
	}

	// The stuck client really was stuck: it can read only part of what
	// was sent to it before the connection was cut.
	got := 0
	stuck.tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		typ, _, err := stuck.r.Read()
		if err != nil {
			break
		}
		if typ == control.TextMessage {
			got++
		}
	}
	if got >= sent {
		t.Errorf("the stuck client received all %d messages: it was not stuck", got)
	}
	t.Logf("stop took %v with a stalled client (shutdown_timeout %v); alice was let go after %v; the stalled client got %d of %d messages",
		took.Round(time.Millisecond), timeout, aliceEnded.Round(100*time.Microsecond), got, sent)
}
