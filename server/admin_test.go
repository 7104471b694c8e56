package server_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
)

// grantAll is a policy under which everyone is an administrator, to test
// what happens once a permission check passes.
type grantAll struct{}

func (grantAll) Permissions(acl.Tree, *acl.Subject, uint32) acl.Permission { return acl.All }
func (grantAll) InGroup(t acl.Tree, s *acl.Subject, ch uint32, g string) bool {
	return acl.BuiltinGroup(t, s, ch, g)
}

// startAdminServer runs a server where every user may administer.
func startAdminServer(t *testing.T) *testServer {
	t.Helper()
	return startTestServer(t, testOpts{policy: grantAll{}})
}

func showAddresses(c *conf.Config) { c.Server.ShowAddresses = true }
func hideAddresses(c *conf.Config) { c.Server.ShowAddresses = false }

func withCert(t *testing.T) func(*client.Config) {
	cert := selfSignedCert(t)
	return func(c *client.Config) { c.Certificate = cert }
}

func TestCreateEditMoveLinkRemoveChannels(t *testing.T) {
	s := startAdminServer(t)
	a := s.join(t, "alice", withCert(t))
	b := s.join(t, "bob", nil)

	a.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("Votes"), Description: proto.String("counting")})
	b.waitFor("new channel", func(c *client.Client) bool { _, ok := channelByName(c, "Votes"); return ok })
	votes := b.channelID("Votes")
	if got := b.Channels()[votes]; got.GetParent() != 0 || got.GetDescription() != "counting" {
		t.Fatalf("created channel %v", got)
	}
	// Rename, reposition and move it below Plenary.
	plenary := b.channelID("Plenary")
	a.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(votes), Name: proto.String("Ballots"), Position: proto.Int32(5), Parent: proto.Uint32(plenary)})
	b.waitFor("edit", func(c *client.Client) bool {
		ch := c.Channels()[votes]
		return ch.GetName() == "Ballots" && ch.GetPosition() == 5 && ch.GetParent() == plenary
	})
	// A duplicate sibling name is refused with ChannelName.
	a.Send(&mumblepb.ChannelState{Parent: proto.Uint32(plenary), Name: proto.String("Ballots")})
	a.waitFor("ChannelName denial", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](a) {
			if d.GetType() == mumblepb.PermissionDenied_ChannelName {
				return true
			}
		}
		return false
	})
	// Names are limited to Murmur's 512 characters (UTF-16 units).
	denials := len(messagesOf[*mumblepb.PermissionDenied](a))
	a.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(votes), Name: proto.String(strings.Repeat("ü", 513))})
	a.waitFor("ChannelName denial of 513 characters", func(*client.Client) bool {
		d := messagesOf[*mumblepb.PermissionDenied](a)
		return len(d) > denials && d[len(d)-1].GetType() == mumblepb.PermissionDenied_ChannelName
	})
	long := strings.Repeat("ü", 512)
	a.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(votes), Name: proto.String(long)})
	b.waitFor("rename to 512 characters", func(c *client.Client) bool { return c.Channels()[votes].GetName() == long })
	a.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(votes), Name: proto.String("Ballots")})
	b.waitFor("rename back", func(c *client.Client) bool { return c.Channels()[votes].GetName() == "Ballots" })
	// Moving Plenary below its own child is ignored.
	a.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(plenary), Parent: proto.Uint32(votes)})
	syncControl(t, a)
	if got := a.Channels()[plenary].GetParent(); got != 0 {
		t.Fatalf("cycle created: Plenary's parent is %d", got)
	}

	// Link Room 1 with Ballots: voice crosses the new link.
	room := b.channelID("Room 1")
	a.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(votes), LinksAdd: []uint32{room}})
	b.waitFor("link", func(c *client.Client) bool { return containsID(c.Channels()[room].GetLinks(), votes) })
	a.waitUDP()
	b.waitUDP()
	a.moveTo("Ballots", b)
	b.moveTo("Room 1", a)
	a.SendAudio(0, 1, opus, false, nil)
	if got := b.expectFrame(1); got.Context != voice.ContextNormal {
		t.Errorf("over a new link: context %d", got.Context)
	}
	a.Send(&mumblepb.ChannelState{ChannelId: proto.Uint32(votes), LinksRemove: []uint32{room}})
	b.waitFor("unlink", func(c *client.Client) bool { return !containsID(c.Channels()[room].GetLinks(), votes) })

	// Removing Plenary removes Ballots below it and moves alice out to root.
	a.Send(&mumblepb.ChannelRemove{ChannelId: proto.Uint32(plenary)})
	b.waitFor("removal", func(c *client.Client) bool {
		_, p := c.Channels()[plenary]
		_, v := c.Channels()[votes]
		u := c.Users()[a.Session()]
		return !p && !v && u.GetChannelId() == 0
	})
	a.Send(&mumblepb.ChannelRemove{ChannelId: proto.Uint32(0)})
	a.waitFor("root removal denied", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](a) {
			if d.GetType() == mumblepb.PermissionDenied_Permission && d.GetChannelId() == 0 {
				return true
			}
		}
		return false
	})
}

func TestTemporaryChannelVanishesWhenEmpty(t *testing.T) {
	s := startAdminServer(t)
	a := s.join(t, "alice", withCert(t))
	b := s.join(t, "bob", nil)
	a.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("huddle"), Temporary: proto.Bool(true)})
	var huddle uint32
	b.waitFor("creator moved into the temporary channel", func(c *client.Client) bool {
		id, ok := channelByName(c, "huddle")
		huddle = id
		return ok && c.Users()[a.Session()].GetChannelId() == id
	})
	// A temporary channel cannot have subchannels.
	a.Send(&mumblepb.ChannelState{Parent: proto.Uint32(huddle), Name: proto.String("sub")})
	a.waitFor("TemporaryChannel denial", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](a) {
			if d.GetType() == mumblepb.PermissionDenied_TemporaryChannel {
				return true
			}
		}
		return false
	})
	a.moveTo("Lobby", b)
	b.waitFor("temporary channel removed", func(c *client.Client) bool { _, ok := c.Channels()[huddle]; return !ok })

	// Also when the last user disconnects.
	a.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("huddle2"), Temporary: proto.Bool(true)})
	b.waitFor("second temporary channel", func(c *client.Client) bool {
		id, ok := channelByName(c, "huddle2")
		huddle = id
		return ok && c.Users()[a.Session()].GetChannelId() == id
	})
	a.Close()
	b.waitFor("removed on disconnect", func(c *client.Client) bool { _, ok := c.Channels()[huddle]; return !ok })
}

func TestChannelCreationNeedsCertificateOrRegistration(t *testing.T) {
	s := startAdminServer(t)
	a := s.join(t, "anon", nil)
	a.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("x")})
	a.waitFor("MissingCertificate", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](a) {
			if d.GetType() == mumblepb.PermissionDenied_MissingCertificate {
				return true
			}
		}
		return false
	})
}

func TestChannelListeners(t *testing.T) {
	s := startServer(t, nil) // Listen is part of the default grant
	a, b, c := s.trio(t)
	b.moveTo("Plenary", a, c)
	plenary := a.channelID("Plenary")
	a.Send(&mumblepb.UserState{ListeningChannelAdd: []uint32{plenary}})
	c.waitFor("alice listens", func(cl *client.Client) bool {
		return containsID(cl.Users()[a.Session()].GetListeningChannelAdd(), plenary)
	})
	b.SendAudio(0, 1, opus, false, nil)
	if got := a.expectFrame(1); got.Context != voice.ContextListen {
		t.Errorf("listener context %d, want %d", got.Context, voice.ContextListen)
	}
	// Text to the channel reaches its listeners too.
	b.SendText("to the plenary", nil, []uint32{plenary}, nil)
	a.waitFor("text via listening", func(*client.Client) bool {
		for _, m := range messagesOf[*mumblepb.TextMessage](a) {
			if m.GetMessage() == "to the plenary" {
				return true
			}
		}
		return false
	})
	// Someone in the channel who also listens to it hears normal speech.
	b.Send(&mumblepb.UserState{ListeningChannelAdd: []uint32{plenary}})
	syncControl(t, b)
	a.Send(&mumblepb.UserState{ListeningChannelRemove: []uint32{plenary}})
	c.waitFor("alice stopped", func(cl *client.Client) bool {
		return !containsID(cl.Users()[a.Session()].GetListeningChannelAdd(), plenary)
	})
	a.moveTo("Plenary", b, c)
	a.SendAudio(0, 2, opus, false, nil)
	if got := b.expectFrame(2); got.Context != voice.ContextNormal {
		t.Errorf("member who also listens: context %d, want normal", got.Context)
	}
	c.SendAudio(voice.TargetLoopback, 3, opus, false, nil)
	c.expectFrame(3) // carol, no longer reached through anyone's listening, heard nothing
}

func TestModeratorsMuteMoveKickAndPrioritySpeaker(t *testing.T) {
	s := startAdminServer(t)
	mod := s.join(t, "mod", nil)
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	for _, p := range []*peer{mod, a, b} {
		p.waitUDP()
	}
	// Server mute: alice's voice goes nowhere until unmuted.
	mod.Send(&mumblepb.UserState{Session: proto.Uint32(a.Session()), Mute: proto.Bool(true)})
	b.waitFor("alice muted", func(c *client.Client) bool { return c.Users()[a.Session()].GetMute() })
	s.sendSilenced(t, a, 1)
	mod.Send(&mumblepb.UserState{Session: proto.Uint32(a.Session()), Mute: proto.Bool(false)})
	b.waitFor("alice unmuted", func(c *client.Client) bool { return !c.Users()[a.Session()].GetMute() })
	a.SendAudio(0, 2, opus, false, nil)
	b.expectFrame(2)
	// Deafen implies mute.
	mod.Send(&mumblepb.UserState{Session: proto.Uint32(b.Session()), Deaf: proto.Bool(true)})
	a.waitFor("bob deaf and muted", func(c *client.Client) bool {
		u := c.Users()[b.Session()]
		return u.GetDeaf() && u.GetMute()
	})
	mod.Send(&mumblepb.UserState{Session: proto.Uint32(b.Session()), Mute: proto.Bool(false)})
	a.waitFor("unmute clears deaf", func(c *client.Client) bool {
		u := c.Users()[b.Session()]
		return !u.GetDeaf() && !u.GetMute()
	})
	// Priority speaker is cleared by a channel change.
	mod.Send(&mumblepb.UserState{Session: proto.Uint32(a.Session()), PrioritySpeaker: proto.Bool(true)})
	b.waitFor("priority", func(c *client.Client) bool { return c.Users()[a.Session()].GetPrioritySpeaker() })
	plenary := mod.channelID("Plenary")
	mod.Send(&mumblepb.UserState{Session: proto.Uint32(a.Session()), ChannelId: proto.Uint32(plenary)})
	b.waitFor("moved by moderator, priority cleared", func(c *client.Client) bool {
		u := c.Users()[a.Session()]
		return u.GetChannelId() == plenary && !u.GetPrioritySpeaker() && u.GetActor() == mod.Session()
	})
	// Suppress can be lifted but never set.
	mod.Send(&mumblepb.UserState{Session: proto.Uint32(b.Session()), Suppress: proto.Bool(true)})
	syncControl(t, mod)
	if b.Users()[b.Session()].GetSuppress() {
		t.Fatal("suppress was set by a moderator")
	}
	// Kick.
	mod.Send(&mumblepb.UserRemove{Session: proto.Uint32(b.Session()), Reason: proto.String("disorder")})
	select {
	case <-b.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("kicked user still connected")
	}
	a.waitFor("kick announced", func(*client.Client) bool {
		for _, m := range messagesOf[*mumblepb.UserRemove](a) {
			if m.GetSession() == b.Session() && m.GetActor() == mod.Session() && m.GetReason() == "disorder" {
				return true
			}
		}
		return false
	})
}

func TestListenerLimits(t *testing.T) {
	s := startServer(t, func(c *conf.Config) {
		c.Server.ListenersPerChannel = 1
		c.Server.ListenersPerUser = 1
	})
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	plenary, overflow := a.channelID("Plenary"), a.channelID("Overflow")
	deniedType := func(p *peer, want mumblepb.PermissionDenied_DenyType) func(*client.Client) bool {
		return func(*client.Client) bool {
			for _, d := range messagesOf[*mumblepb.PermissionDenied](p) {
				if d.GetType() == want {
					return true
				}
			}
			return false
		}
	}
	a.Send(&mumblepb.UserState{ListeningChannelAdd: []uint32{plenary}})
	a.Send(&mumblepb.UserState{ListeningChannelAdd: []uint32{overflow}})
	a.waitFor("per-user limit", deniedType(a, mumblepb.PermissionDenied_UserListenerLimit))
	b.Send(&mumblepb.UserState{ListeningChannelAdd: []uint32{plenary}})
	b.waitFor("per-channel limit", deniedType(b, mumblepb.PermissionDenied_ChannelListenerLimit))
	if got := b.Users()[a.Session()].GetListeningChannelAdd(); len(got) != 1 || got[0] != plenary {
		t.Fatalf("alice listens to %v, want only Plenary", got)
	}
}

func TestUserStatsShowAddressesOnlyWhenConfigured(t *testing.T) {
	for _, show := range []bool{false, true} {
		t.Run(fmt.Sprintf("show_addresses=%v", show), func(t *testing.T) {
			s := startTestServer(t, testOpts{policy: grantAll{}, edit: func(c *conf.Config) { c.Server.ShowAddresses = show }})
			admin := s.join(t, "admin", nil)
			alice := s.join(t, "alice", nil)
			for _, who := range []*peer{alice, admin} { // someone else, and oneself
				before := len(messagesOf[*mumblepb.UserStats](admin))
				admin.Send(&mumblepb.UserStats{Session: proto.Uint32(who.Session())})
				var st *mumblepb.UserStats
				admin.waitFor("UserStats", func(*client.Client) bool {
					all := messagesOf[*mumblepb.UserStats](admin)
					if len(all) > before {
						st = all[len(all)-1]
					}
					return st != nil
				})
				if st.Version == nil || st.GetSession() != who.Session() {
					t.Fatalf("not a detailed answer: %v", st)
				}
				want := []byte(nil)
				if show {
					a := netip.MustParseAddr("127.0.0.1").As16()
					want = a[:]
				}
				if got := st.GetAddress(); string(got) != string(want) {
					t.Errorf("UserStats of %d: address %x, want %x", who.Session(), got, want)
				}
			}
		})
	}
}
