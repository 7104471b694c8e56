package server_test

import (
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// pq is a PermissionQuery as a test compares it.
type pq struct {
	channel uint32
	perms   acl.Permission
	flush   bool
}

func (p pq) String() string {
	return fmt.Sprintf("{ch %d %#x flush=%v}", p.channel, uint32(p.perms), p.flush)
}

// permissionQueries returns the PermissionQuery messages p received after
// the first skip.
func permissionQueries(p *peer, skip int) []pq {
	var out []pq
	for _, m := range messagesOf[*mumblepb.PermissionQuery](p)[skip:] {
		out = append(out, pq{m.GetChannelId(), acl.Permission(m.GetPermissions()), m.GetFlush()})
	}
	return out
}

// joinSuperUser sets SuperUser's password and logs in as SuperUser.
func joinSuperUser(t *testing.T, s *testServer) *peer {
	t.Helper()
	if err := s.openStore(t).SetPassword(0, "su-secret"); err != nil {
		t.Fatal(err)
	}
	return s.join(t, "SuperUser", func(c *client.Config) { c.Password = "su-secret" })
}

// aclBarrier waits until p has the reply to an ACL query, which the server
// sends after handling everything p sent before.
func aclBarrier(p *peer, channel uint32) {
	p.t.Helper()
	before := len(messagesOf[*mumblepb.ACL](p))
	p.Send(&mumblepb.ACL{ChannelId: proto.Uint32(channel), Query: proto.Bool(true)})
	p.waitFor("ACL reply", func(*client.Client) bool { return len(messagesOf[*mumblepb.ACL](p)) > before })
}

// TestSuperUserGetsAllAndNoPermissionQuery: Murmur 1.5 sends SuperUser
// ServerSync.permissions = All (0x1f0fff, Speak and Whisper included,
// although SuperUser does not have them) and never a PermissionQuery: not
// at login, not after a move, not after an ACL change, and no answer to
// its own queries.
func TestSuperUserGetsAllAndNoPermissionQuery(t *testing.T) {
	s := startServer(t, nil)
	su := joinSuperUser(t, s)
	if got := su.ServerSync().GetPermissions(); got != 0x1f0fff {
		t.Errorf("SuperUser's ServerSync permissions = %#x, want All = 0x1f0fff", got)
	}
	member := s.join(t, "member", nil)
	lobby, plenary := su.channelID("Lobby"), su.channelID("Plenary")
	su.Send(&mumblepb.PermissionQuery{ChannelId: proto.Uint32(0)})
	su.Send(&mumblepb.PermissionQuery{ChannelId: proto.Uint32(lobby)})
	su.moveTo("Plenary", member)
	su.Send(&mumblepb.ACL{ChannelId: proto.Uint32(plenary), InheritAcls: proto.Bool(true), Acls: []*mumblepb.ACL_ChanACL{
		{Group: proto.String("all"), ApplyHere: proto.Bool(true), ApplySubs: proto.Bool(true), Deny: proto.Uint32(uint32(acl.Enter))},
	}})
	aclBarrier(su, plenary)
	if got := permissionQueries(su, 0); len(got) != 0 {
		t.Errorf("SuperUser got PermissionQuery messages %v, want none", got)
	}
	// The member in the Lobby is told, with Murmur's Cached bit.
	if got := permissionQueries(member, 0); len(got) == 0 || got[0].perms&acl.Cached == 0 {
		t.Errorf("member's PermissionQuery messages %v, want some, with the Cached bit", got)
	}
}

// TestPermissionQueryAsMurmurSendsIt: a normal user's ServerSync and every
// PermissionQuery carry Murmur's Cached bit (0x8000000); entering a
// channel pushes that channel's and its parent's permissions only where
// they differ from what the client holds; the client's own query is
// always answered; an ACL change sends a flush only when something the
// client holds went stale, for the channel it last asked about.
func TestPermissionQueryAsMurmurSendsIt(t *testing.T) {
	s := startServer(t, nil)
	su := joinSuperUser(t, s)
	m := s.join(t, "member", nil)
	lobby, plenary, room1 := m.channelID("Lobby"), m.channelID("Plenary"), m.channelID("Room 1")

	// Default config: the root adds SelfRegister (root only) to the
	// default grant.
	rootPerms := acl.Cached | acl.DefaultGrant | acl.SelfRegister
	chanPerms := acl.Cached | acl.DefaultGrant
	if got := acl.Permission(m.ServerSync().GetPermissions()); got != rootPerms {
		t.Errorf("ServerSync permissions = %#x, want %#x", uint32(got), uint32(rootPerms))
	}
	if got, want := permissionQueries(m, 0), []pq{{lobby, chanPerms, false}, {0, rootPerms, false}}; !slices.Equal(got, want) {
		t.Fatalf("at login: %v, want %v", got, want)
	}

	// Into Plenary: its permissions are new, the root's are known.
	m.moveTo("Plenary")
	m.Send(&mumblepb.PermissionQuery{ChannelId: proto.Uint32(0)})
	m.waitFor("answer for root", func(*client.Client) bool { return len(permissionQueries(m, 2)) >= 2 })
	if got, want := permissionQueries(m, 2), []pq{{plenary, chanPerms, false}, {0, rootPerms, false}}; !slices.Equal(got, want) {
		t.Fatalf("after moving and asking: %v, want %v", got, want)
	}

	// An ACL change that leaves the member's permissions as they are
	// sends nothing.
	setACL := func(ch uint32, entries ...*mumblepb.ACL_ChanACL) {
		before := len(messagesOf[*mumblepb.ChannelState](m))
		su.Send(&mumblepb.ACL{ChannelId: proto.Uint32(ch), InheritAcls: proto.Bool(true), Acls: entries})
		// Everyone gets the channel's enter state after the change.
		m.waitFor("ChannelState after the ACL change", func(*client.Client) bool {
			for _, cs := range messagesOf[*mumblepb.ChannelState](m)[before:] {
				if cs.GetChannelId() == ch {
					return true
				}
			}
			return false
		})
	}
	setACL(room1, &mumblepb.ACL_ChanACL{Group: proto.String("all"), ApplyHere: proto.Bool(true), ApplySubs: proto.Bool(true), Deny: proto.Uint32(uint32(acl.Speak))})
	if got := permissionQueries(m, 4); len(got) != 0 {
		t.Errorf("after an ACL change elsewhere: %v, want nothing", got)
	}

	// One that changes Plenary, which the member holds, flushes, with the
	// channel last asked about (the root).
	setACL(plenary, &mumblepb.ACL_ChanACL{Group: proto.String("all"), ApplyHere: proto.Bool(true), ApplySubs: proto.Bool(true), Deny: proto.Uint32(uint32(acl.Speak))})
	if got, want := permissionQueries(m, 4), []pq{{0, rootPerms, true}}; !slices.Equal(got, want) {
		t.Errorf("after an ACL change in Plenary: %v, want %v", got, want)
	}
	// Asked again, Plenary is answered with its new value.
	m.Send(&mumblepb.PermissionQuery{ChannelId: proto.Uint32(plenary)})
	m.waitFor("answer for Plenary", func(*client.Client) bool { return len(permissionQueries(m, 5)) >= 1 })
	if got, want := permissionQueries(m, 5), []pq{{plenary, chanPerms &^ acl.Speak, false}}; !slices.Equal(got, want) {
		t.Errorf("Plenary after the change: %v, want %v", got, want)
	}
}
