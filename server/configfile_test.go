package server_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// startFileServer runs a server on the configuration data in a file of
// its own, as an admin would, and returns the file's path; policy nil
// means the file's ACLs.
func startFileServer(t *testing.T, data []byte, policy acl.Policy) (*testServer, string) {
	t.Helper()
	s := startTestServer(t, testOpts{toml: data, policy: policy})
	return s, s.configFile
}

// waitFile waits until the file on disk satisfies cond.
func waitFile(t *testing.T, path, what string, cond func(*conf.Config) bool) *conf.Config {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if cfg, err := conf.Load(path); err == nil && cond(cfg) {
			return cfg
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(path)
			t.Fatalf("file never showed %s:\n%s", what, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClientEditsAreWrittenBackToTheFile(t *testing.T) {
	s, path := startFileServer(t, conf.DefaultTOML(), grantAll{})
	admin := s.join(t, "admin", withCert(t))

	admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("Votes"), Description: proto.String("counting room")})
	admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("huddle"), Temporary: proto.Bool(true)})
	cfg := waitFile(t, path, "the new channel", func(c *conf.Config) bool { return c.Lookup("Votes") != nil })
	if cfg.Lookup("Votes").Description != "counting room" {
		t.Errorf("description not written: %+v", cfg.Lookup("Votes"))
	}
	if cfg.Lookup("huddle") != nil {
		t.Error("a temporary channel was written to the file")
	}
	// Command-line overrides (the test listens on a free port, with its
	// own data directory) stay out of the file: it says what the admin said.
	def := conf.Default().Server
	if got := cfg.Server; got.Listen != def.Listen || got.AdminListen != def.AdminListen || got.DataDir != def.DataDir {
		t.Errorf("overrides written to the file: listen %q, admin_listen %q, data_dir %q", got.Listen, got.AdminListen, got.DataDir)
	}
	// The version before the last write is kept beside it (the original,
	// or an earlier write-back if several edits came in).
	if prev, err := conf.Load(path + ".bak"); err != nil || prev.Lookup("Plenary") == nil {
		t.Errorf("no valid previous version in .bak: %v", err)
	}

	// An ACL edit lands in the file too.
	votes := admin.channelID("Votes")
	admin.Send(&mumblepb.ACL{ChannelId: proto.Uint32(votes), InheritAcls: proto.Bool(true), Acls: []*mumblepb.ACL_ChanACL{
		{Group: proto.String("all"), ApplyHere: proto.Bool(true), ApplySubs: proto.Bool(false), Deny: proto.Uint32(uint32(acl.Speak))},
	}})
	cfg = waitFile(t, path, "the ACL", func(c *conf.Config) bool {
		ch := c.Lookup("Votes")
		return ch != nil && len(ch.ACL) == 1 && ch.ACL[0].Group == "all" && !ch.ACL[0].Subs()
	})
	if _, deny := cfg.Lookup("Votes").ACL[0].Permissions(); deny != acl.Speak {
		t.Errorf("written deny %v", deny)
	}
	// Our own write is not taken for an admin's edit: the channel keeps its id.
	syncControl(t, admin)
	if got := admin.channelID("Votes"); got != votes {
		t.Errorf("Votes changed id from %d to %d after the write-back", votes, got)
	}
}

func TestLiveReload(t *testing.T) {
	s, path := startFileServer(t, conf.DefaultTOML(), nil)
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	a.waitUDP()
	b.waitUDP()
	a.moveTo("Plenary", b)
	b.moveTo("Overflow", a)
	a.SendAudio(0, 1, opus, false, nil)
	b.expectFrame(1)

	// The admin edits the file: Plenary becomes listen-only, Overflow goes
	// away, a new channel appears, the welcome text changes.
	cfg, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var kept []conf.Channel
	for _, ch := range cfg.Channels {
		switch ch.Name {
		case "Overflow":
			continue
		case "Plenary":
			ch.Links = nil
			ch.ACL = []conf.ACLEntry{{Group: "all", Deny: []string{"Speak"}}}
		}
		kept = append(kept, ch)
	}
	cfg.Channels = append(kept, conf.Channel{Name: "Press", Description: "for journalists"})
	if err := conf.WriteFile(path, cfg); err != nil {
		t.Fatal(err)
	}
	b.waitFor("reload applied", func(c *client.Client) bool {
		_, overflow := channelByName(c, "Overflow")
		_, press := channelByName(c, "Press")
		alice := c.Users()[a.Session()]
		me := c.Users()[b.Session()]
		return !overflow && press && alice.GetSuppress() && me.GetChannelId() == 0
	})
	s.sendSilenced(t, a, 2) // alice keeps her connection, but her voice is now dropped
	select {
	case <-a.Done():
		t.Fatal("alice was disconnected by the reload")
	default:
	}

	// A broken file is refused and changes nothing.
	os.WriteFile(path, []byte("[server]\nmax_users = \"many\"\n"), 0o600)
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), ":2: server.max_users") {
		t.Fatalf("invalid file: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Ping(ctx); err != nil {
		t.Fatalf("server stopped answering after a bad reload: %v", err)
	}
	if _, ok := channelByName(b.Client, "Press"); !ok {
		t.Fatal("the running configuration changed after a bad reload")
	}
}

// TestConfirmationsFollowTheDisk: whoever hears of a channel edit (the
// editor and a bystander alike) finds it in the file at that moment,
// because the confirming messages wait for the write.
func TestConfirmationsFollowTheDisk(t *testing.T) {
	unlimited := bytes.Replace(conf.DefaultTOML(), []byte("message_limit = 1\n"), []byte("message_limit = 1000\n"), 1)
	s, path := startFileServer(t, unlimited, grantAll{})
	var checked atomic.Int32
	check := func(who string, m proto.Message) {
		cs, ok := m.(*mumblepb.ChannelState)
		if !ok || cs.GetName() == "" || cs.GetChannelId() == 0 {
			return
		}
		cfg, err := conf.Load(path)
		if err != nil {
			t.Errorf("%s: file unreadable when %q was announced: %v", who, cs.GetName(), err)
			return
		}
		// The file may be ahead of the client: a room heard of as created
		// may already be renamed and moved there.
		name := cs.GetName()
		if cfg.Lookup(name) == nil && cfg.Lookup("Breakout rooms/"+name) == nil && cfg.Lookup("Breakout rooms/"+name+"b") == nil {
			t.Errorf("%s heard of channel %q before it was in the file", who, name)
		}
		checked.Add(1)
	}
	join := func(name string, edit func(*client.Config)) *peer {
		return s.join(t, name, func(c *client.Config) {
			if edit != nil {
				edit(c)
			}
			record := c.OnMessage
			c.OnMessage = func(typ control.Type, m proto.Message) {
				record(typ, m)
				check(name, m)
			}
		})
	}
	admin := join("admin", withCert(t))
	bystander := join("bystander", nil)
	syncControl(t, bystander)
	checked.Store(0) // the login burst does not count

	breakout := admin.channelID("Breakout rooms")
	for i := range 20 {
		name := fmt.Sprintf("Room %d", 10+i)
		admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String(name)})
		if i%2 == 1 {
			admin.waitFor(name, func(c *client.Client) bool { _, ok := channelByName(c, name); return ok })
			id := admin.channelID(name)
			admin.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(id), Name: proto.String(name + "b"), Parent: proto.Uint32(breakout)})
		}
	}
	for _, p := range []*peer{admin, bystander} {
		p.waitFor("the last rename", func(c *client.Client) bool {
			_, ok := channelByName(c, "Room 29b")
			return ok
		})
	}
	// OnMessage runs just after the client has taken a message in, so the
	// last checks may still be running.
	for deadline := time.Now().Add(5 * time.Second); checked.Load() < 60; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d announcements checked against the file, want 60 (30 to each client)", checked.Load())
		}
	}
}

// TestSlowDiskHoldsConfirmationsOnlySoLong: a write that hangs holds
// everybody's control messages back for at most the hold limit; the
// confirmation then goes out, the log says so, and the write still lands.
func TestSlowDiskHoldsConfirmationsOnlySoLong(t *testing.T) {
	const slow, limit = 2 * time.Second, 300 * time.Millisecond
	server.SlowConfigWrites(t, slow, limit)
	var logs logBuffer
	s := startTestServer(t, testOpts{toml: conf.DefaultTOML(), policy: grantAll{}, logger: slog.New(slog.NewTextHandler(&logs, nil))})
	path := s.configFile
	admin := s.join(t, "admin", withCert(t))
	alice := s.join(t, "alice", nil)

	start := time.Now()
	admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("Votes")})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rtt, err := alice.Ping(ctx) // queued behind the hold like everything else
	if err != nil {
		t.Fatal(err)
	}
	admin.waitFor("the confirmation", func(c *client.Client) bool { _, ok := channelByName(c, "Votes"); return ok })
	confirmed := time.Since(start)
	if confirmed >= slow || rtt >= slow {
		t.Errorf("the confirmation took %v and a ping %v: a write taking %v held them", confirmed, rtt, slow)
	}
	if !strings.Contains(logs.String(), "a write to disk is slow") {
		t.Errorf("the early confirmation is not in the log:\n%s", logs.String())
	}
	waitFile(t, path, "Votes, once the slow write is done", func(c *conf.Config) bool { return c.Lookup("Votes") != nil })
	t.Logf("with a %v write: confirmed after %v, a bystander's ping took %v", slow, confirmed.Round(time.Millisecond), rtt.Round(time.Millisecond))
}

// TestFloorKeysAreWrittenBack: a client's edit rewrites the file, and a
// hall keeps all of its floor keys in it.
func TestFloorKeysAreWrittenBack(t *testing.T) {
	data := strings.Replace(string(hallTOML(true)), "floor = true\n", "floor = true\nspeaking_time = \"3m\"\nfloor_requests = \"Requests\"\n", 1)
	data += "\n  [[channel.channel]]\n  name = \"Requests\"\n"
	s, path := startFileServer(t, []byte(data), grantAll{})
	admin := s.join(t, "admin", withCert(t))
	admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("Votes")})
	cfg := waitFile(t, path, "the new channel", func(c *conf.Config) bool { return c.Lookup("Votes") != nil })
	hall := cfg.Lookup("Hall")
	if !hall.Floor || !hall.FloorMinutes || hall.SpeakingTime.Duration != 3*time.Minute || hall.FloorRequests != "Requests" ||
		!slices.Equal(hall.FloorGroups, []string{"#chair"}) {
		t.Errorf("the hall written back as %+v", hall)
	}
}
