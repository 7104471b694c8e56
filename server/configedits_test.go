package server_test

// Edits of the configuration from both sides: the admin's file and the
// clients' editors, and the [server] keys that follow client edits.

import (
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// TestAdminFileEditWinsOverConcurrentClientEdits: an admin saves the file
// while client edits wait to be written (one taken by the writer, one
// queued behind it). The file is the truth: the admin's version is
// applied, neither waiting version is written over it, and the editor is
// told. Both orders are covered: the file watcher applies the admin's file
// before the writer goes on, or the writer finds the changed file first.
func TestAdminFileEditWinsOverConcurrentClientEdits(t *testing.T) {
	for _, first := range []string{"watcher", "writer"} {
		t.Run(first+" first", func(t *testing.T) { testConcurrentFileEdit(t, first == "watcher") })
	}
}

func testConcurrentFileEdit(t *testing.T, watcherFirst bool) {
	paused, resume := server.PauseConfigWrites(t)
	logs := &logCapture{}
	s := startTestServer(t, testOpts{toml: conf.DefaultTOML(), policy: grantAll{}, logger: logs.logger()})
	path := s.configFile
	admin := s.join(t, "admin", withCert(t))

	admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("Votes")})
	select {
	case <-paused: // the writer holds the version with Votes
	case <-time.After(5 * time.Second):
		t.Fatal("the writer never took the edit")
	}
	admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("Tally")})
	logs.await(t, 0, `msg="channel created"`, "name=Tally")

	// Meanwhile the admin saves the file with a channel of their own.
	edited, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	edited.Channels = append(edited.Channels, conf.Channel{Name: "Press"})
	if err := conf.WriteFile(path, edited); err != nil {
		t.Fatal(err)
	}
	if watcherFirst {
		logs.await(t, 0, `msg="configuration reloaded"`)
	}
	resume()

	admin.waitFor("the admin's file in force", func(c *client.Client) bool {
		_, press := channelByName(c, "Press")
		_, votes := channelByName(c, "Votes")
		_, tally := channelByName(c, "Tally")
		return press && !votes && !tally
	})
	admin.waitFor("the editor told", func(*client.Client) bool { return hasText(admin, "edited on disk at the same moment") })
	syncControl(t, admin)
	got, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Lookup("Press") == nil || got.Lookup("Votes") != nil || got.Lookup("Tally") != nil {
		data, _ := os.ReadFile(path)
		t.Fatalf("the admin's edit was overwritten by a version queued before it:\n%s", data)
	}

	// From now on client edits are written again, on top of the admin's file.
	admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("After")})
	waitFile(t, path, "a later edit with the admin's channel", func(c *conf.Config) bool {
		return c.Lookup("After") != nil && c.Lookup("Press") != nil
	})
}

// TestRootDescriptionIsKept: the root channel's description, edited from a
// client, lands in the file's [server] root_description, comes back after
// a restart, and an edit of the file reaches clients live. (Renaming root
// from a client is refused, as Murmur refuses it: its name is [server]
// name.)
func TestRootDescriptionIsKept(t *testing.T) {
	s, path := startFileServer(t, conf.DefaultTOML(), grantAll{})
	admin := s.join(t, "admin", withCert(t))
	admin.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(0), Description: proto.String("The <b>convention</b> server")})
	cfg := waitFile(t, path, "the root description", func(c *conf.Config) bool {
		return c.Server.RootDescription == "The <b>convention</b> server"
	})

	admin.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(0), Name: proto.String("Renamed")})
	admin.waitFor("the refusal to rename root", func(*client.Client) bool {
		return len(messagesOf[*mumblepb.PermissionDenied](admin)) > 0
	})
	if got := admin.Channels()[0].GetName(); got != cfg.Server.Name {
		t.Errorf("root is called %q, want %q", got, cfg.Server.Name)
	}

	restarted := startTestServer(t, testOpts{config: cfg})
	bob := restarted.join(t, "bob", nil)
	if got := bob.Channels()[0].GetDescription(); got != "The <b>convention</b> server" {
		t.Errorf("after a restart the root description is %q", got)
	}

	cfg.Server.RootDescription = "Edited in the file"
	if err := conf.WriteFile(path, cfg); err != nil {
		t.Fatal(err)
	}
	admin.waitFor("the file's root description", func(c *client.Client) bool {
		return c.Channels()[0].GetDescription() == "Edited in the file"
	})
}

// TestDefaultChannelFollowsItsChannel: default_channel in the file follows
// the channel when a client renames it, and falls back to the root when a
// client removes it, as Murmur's newcomers then start in the root. Before,
// the file kept the old path, and every later write of it failed.
func TestDefaultChannelFollowsItsChannel(t *testing.T) {
	s, path := startFileServer(t, conf.DefaultTOML(), grantAll{})
	admin := s.join(t, "admin", withCert(t))
	lobby := admin.channelID("Lobby")
	admin.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(lobby), Name: proto.String("Foyer")})
	waitFile(t, path, "the renamed default channel", func(c *conf.Config) bool {
		return c.Server.DefaultChannel == "Foyer" && c.Lookup("Foyer") != nil
	})
	if got := s.join(t, "newcomer", nil); got.Users()[got.Session()].GetChannelId() != lobby {
		t.Errorf("a newcomer starts in channel %d, want the renamed default %d", got.Users()[got.Session()].GetChannelId(), lobby)
	}

	admin.Send(&mumblepb.ChannelRemove{ChannelId: proto.Uint32(lobby)})
	waitFile(t, path, "the default channel gone", func(c *conf.Config) bool {
		return c.Server.DefaultChannel == "" && c.Lookup("Foyer") == nil
	})
	if got := s.join(t, "latecomer", nil); got.Users()[got.Session()].GetChannelId() != 0 {
		t.Errorf("after the default channel was removed a newcomer starts in channel %d, want the root", got.Users()[got.Session()].GetChannelId())
	}
	// Later edits are written again.
	admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("Later")})
	waitFile(t, path, "a later edit", func(c *conf.Config) bool { return c.Lookup("Later") != nil })
}
