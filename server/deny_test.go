package server_test

import (
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// withholding is a policy that grants everything except what the test
// withholds from a user (by name) in a channel (by id). It has no cache,
// so a change takes effect with the next question.
type withholding struct {
	mu       sync.Mutex
	withheld map[string]map[uint32]acl.Permission
}

func (w *withholding) Permissions(_ acl.Tree, s *acl.Subject, ch uint32) acl.Permission {
	w.mu.Lock()
	defer w.mu.Unlock()
	return acl.All &^ w.withheld[s.Name][ch]
}

func (w *withholding) InGroup(t acl.Tree, s *acl.Subject, ch uint32, g string) bool {
	return acl.BuiltinGroup(t, s, ch, g)
}

// set replaces what is withheld.
func (w *withholding) set(withheld map[string]map[uint32]acl.Permission) {
	w.mu.Lock()
	w.withheld = withheld
	w.mu.Unlock()
}

// TestEveryPermissionDenial pins the PermissionDenied each check that
// refuses by permission sends, as Murmur's PERM_DENIED does: type
// Permission, the permission, the channel and the actor's session. One
// user (mallory) does what a permission it lacks forbids, once for every
// such check in the control plane, and must get exactly that message and
// nothing else.
func TestEveryPermissionDenial(t *testing.T) {
	policy := &withholding{}
	cfg := conf.Default()
	cfg.Channels = append(cfg.Channels,
		conf.Channel{Name: "Hall", Floor: true},
		conf.Channel{Name: "Side"},
		conf.Channel{Name: "Other"})
	cfg.Server.MessageLimit, cfg.Server.MessageBurst = 1000, 1000 // one message a case, quickly
	s := startTestServer(t, testOpts{config: cfg, policy: policy})
	if err := s.openStore(t).SetPassword(0, "su-secret"); err != nil {
		t.Fatal(err)
	}
	su := s.join(t, "SuperUser", func(c *client.Config) { c.Password = "su-secret" })
	mallory, alice := s.join(t, "mallory", nil), s.join(t, "alice", nil)
	alice.moveTo("Other", mallory)
	const root = 0
	hall, side, other := mallory.channelID("Hall"), mallory.channelID("Side"), mallory.channelID("Other")
	m, a := mallory.Session(), alice.Session()
	channels := len(mallory.Channels())
	u32 := proto.Uint32

	for _, tc := range []struct {
		name     string
		withheld map[string]map[uint32]acl.Permission
		send     proto.Message
		perm     acl.Permission
		channel  uint32
	}{
		{"ACL editor without Write here or in the parent",
			map[string]map[uint32]acl.Permission{"mallory": {side: acl.Write, root: acl.Write}},
			&mumblepb.ACL{ChannelId: u32(side), Query: proto.Bool(true)}, acl.Write, side},
		{"someone else's statistics from outside their channel",
			map[string]map[uint32]acl.Permission{"mallory": {root: acl.Register, other: acl.Enter}},
			&mumblepb.UserStats{Session: u32(a)}, acl.Enter, other},
		{"kick",
			map[string]map[uint32]acl.Permission{"mallory": {root: acl.Kick | acl.Ban}},
			&mumblepb.UserRemove{Session: u32(a)}, acl.Kick | acl.Ban, root},
		{"kick SuperUser, which nobody may",
			nil,
			&mumblepb.UserRemove{Session: u32(su.Session())}, acl.Kick | acl.Ban, root},
		{"ban",
			map[string]map[uint32]acl.Permission{"mallory": {root: acl.Ban}},
			&mumblepb.UserRemove{Session: u32(a), Ban: proto.Bool(true)}, acl.Ban, root},
		{"ban list",
			map[string]map[uint32]acl.Permission{"mallory": {root: acl.Ban}},
			&mumblepb.BanList{Query: proto.Bool(true)}, acl.Ban, root},
		{"create a channel",
			map[string]map[uint32]acl.Permission{"mallory": {side: acl.MakeChannel}},
			&mumblepb.ChannelState{Parent: u32(side), Name: proto.String("new")}, acl.MakeChannel, side},
		{"create a temporary channel",
			map[string]map[uint32]acl.Permission{"mallory": {side: acl.MakeTempChannel}},
			&mumblepb.ChannelState{Parent: u32(side), Name: proto.String("new"), Temporary: proto.Bool(true)}, acl.MakeTempChannel, side},
		{"edit a channel",
			map[string]map[uint32]acl.Permission{"mallory": {side: acl.Write}},
			&mumblepb.ChannelState{ChannelId: u32(side), Description: proto.String("mine")}, acl.Write, side},
		{"rename the root",
			nil,
			&mumblepb.ChannelState{ChannelId: u32(root), Name: proto.String("mine")}, acl.Write, root},
		{"move a channel under another",
			map[string]map[uint32]acl.Permission{"mallory": {hall: acl.MakeChannel}},
			&mumblepb.ChannelState{ChannelId: u32(side), Parent: u32(hall)}, acl.MakeChannel, hall},
		{"link from a channel",
			map[string]map[uint32]acl.Permission{"mallory": {side: acl.LinkChannel}},
			&mumblepb.ChannelState{ChannelId: u32(side), LinksAdd: []uint32{hall}}, acl.LinkChannel, side},
		{"link to a channel",
			map[string]map[uint32]acl.Permission{"mallory": {hall: acl.LinkChannel}},
			&mumblepb.ChannelState{ChannelId: u32(side), LinksAdd: []uint32{hall}}, acl.LinkChannel, hall},
		{"remove a channel",
			map[string]map[uint32]acl.Permission{"mallory": {side: acl.Write}},
			&mumblepb.ChannelRemove{ChannelId: u32(side)}, acl.Write, side},
		{"remove the root",
			nil,
			&mumblepb.ChannelRemove{ChannelId: u32(root)}, acl.Write, root},
		{"a chair's floor command",
			map[string]map[uint32]acl.Permission{"mallory": {hall: acl.MuteDeafen}},
			&mumblepb.TextMessage{ChannelId: []uint32{hall}, Message: proto.String("!next")}, acl.MuteDeafen, hall},
		{"listen to a channel",
			map[string]map[uint32]acl.Permission{"mallory": {side: acl.Listen}},
			&mumblepb.UserState{ListeningChannelAdd: []uint32{side}}, acl.Listen, side},
		{"register someone",
			map[string]map[uint32]acl.Permission{"mallory": {root: acl.Register}},
			&mumblepb.UserState{Session: u32(a), UserId: u32(0)}, acl.Register, root},
		{"register oneself",
			map[string]map[uint32]acl.Permission{"mallory": {root: acl.SelfRegister}},
			&mumblepb.UserState{UserId: u32(0)}, acl.SelfRegister, root},
		{"registered-user list",
			map[string]map[uint32]acl.Permission{"mallory": {root: acl.Register}},
			&mumblepb.UserList{}, acl.Register, root},
		{"text to a channel",
			map[string]map[uint32]acl.Permission{"mallory": {side: acl.TextMessage}},
			&mumblepb.TextMessage{ChannelId: []uint32{side}, Message: proto.String("hi")}, acl.TextMessage, side},
		{"text to a tree",
			map[string]map[uint32]acl.Permission{"mallory": {side: acl.TextMessage}},
			&mumblepb.TextMessage{TreeId: []uint32{side}, Message: proto.String("hi")}, acl.TextMessage, side},
		{"text to a user",
			map[string]map[uint32]acl.Permission{"mallory": {other: acl.TextMessage}},
			&mumblepb.TextMessage{Session: []uint32{a}, Message: proto.String("hi")}, acl.TextMessage, other},
		{"mute someone",
			map[string]map[uint32]acl.Permission{"mallory": {other: acl.MuteDeafen}},
			&mumblepb.UserState{Session: u32(a), Mute: proto.Bool(true)}, acl.MuteDeafen, other},
		{"suppress someone, which only the server does",
			nil,
			&mumblepb.UserState{Session: u32(a), Suppress: proto.Bool(true)}, acl.MuteDeafen, other},
		{"clear someone's comment",
			map[string]map[uint32]acl.Permission{"mallory": {root: acl.ResetUserContent}},
			&mumblepb.UserState{Session: u32(a), Comment: proto.String("")}, acl.ResetUserContent, root},
		{"move someone out of their channel",
			map[string]map[uint32]acl.Permission{"mallory": {other: acl.Move}},
			&mumblepb.UserState{Session: u32(a), ChannelId: u32(side)}, acl.Move, other},
		{"move someone where they may not enter",
			map[string]map[uint32]acl.Permission{"mallory": {side: acl.Move}, "alice": {side: acl.Enter}},
			&mumblepb.UserState{Session: u32(a), ChannelId: u32(side)}, acl.Move, side},
		{"enter a channel",
			map[string]map[uint32]acl.Permission{"mallory": {side: acl.Enter}},
			&mumblepb.UserState{ChannelId: u32(side)}, acl.Enter, side},
	} {
		policy.set(tc.withheld)
		before := len(messagesOf[*mumblepb.PermissionDenied](mallory))
		mallory.Send(tc.send)
		mallory.waitFor(tc.name+": the denial", func(*client.Client) bool {
			return len(messagesOf[*mumblepb.PermissionDenied](mallory)) > before
		})
		got := messagesOf[*mumblepb.PermissionDenied](mallory)[before:]
		want := &mumblepb.PermissionDenied{Type: mumblepb.PermissionDenied_Permission.Enum(),
			Permission: u32(uint32(tc.perm)), ChannelId: u32(tc.channel), Session: u32(m)}
		if len(got) != 1 || !proto.Equal(got[0], want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, want)
		}
	}
	// Nothing was done: alice is where she was, unmuted, and the channels
	// are as they were.
	policy.set(nil)
	if _, err := mallory.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if u := mallory.Users()[a]; u.GetChannelId() != other || u.GetMute() || u.GetSuppress() {
		t.Errorf("alice after the denials: %v", u)
	}
	if len(mallory.Users()) != 3 {
		t.Errorf("%d users after the denials, want 3: someone was removed", len(mallory.Users()))
	}
	if n := len(mallory.Channels()); n != channels {
		t.Errorf("%d channels after the denials, %d before", n, channels)
	}
	if d := messagesOf[*mumblepb.PermissionDenied](mallory); len(d) != 29 {
		t.Errorf("%d denials in all, want 29 (one each)", len(d))
	}
}
