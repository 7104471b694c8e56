package server_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
)

// TestExamplePlenary joins conf/examples/plenary.toml as a plain member, a
// speaker, the chair, a moderator and SuperUser, and checks that each may
// do what the example promises and no more.
func TestExamplePlenary(t *testing.T) {
	cfg, err := conf.Load("../conf/examples/plenary.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certs := registerUsers(t, dir, "delegate-farid", "chair-anna", "mod-ben")
	s := startTestServer(t, testOpts{config: cfg, dataDir: dir})
	st := s.openStore(t)
	if err := st.SetPassword(0, "su-secret"); err != nil {
		t.Fatal(err)
	}
	member := s.join(t, "member", nil)
	speaker := s.join(t, "delegate-farid", as(certs["delegate-farid"]))
	chair := s.join(t, "chair-anna", as(certs["chair-anna"]))
	mod := s.join(t, "mod-ben", as(certs["mod-ben"]))
	su := s.join(t, "SuperUser", func(c *client.Config) { c.Password = "su-secret" })
	everyone := []*peer{member, speaker, chair, mod, su}
	for _, p := range everyone {
		p.waitUDP()
	}
	for _, p := range everyone {
		p.moveTo("Plenary", everyone...)
	}
	user := func(p *peer) *mumblepb.UserState { return member.Users()[p.Session()] }
	member.waitFor("suppress as the example says", func(*client.Client) bool {
		return user(member).GetSuppress() && !user(speaker).GetSuppress() && !user(chair).GetSuppress() &&
			user(mod).GetSuppress() && user(su).GetSuppress() // SuperUser never has Speak, as in Murmur
	})
	// The speaker is heard by everyone in the hall; the member is not.
	speaker.SendAudio(0, 1, opus, false, nil)
	if got := member.expectFrame(1); got.Context != voice.ContextNormal {
		t.Errorf("speaker heard with context %d", got.Context)
	}
	s.sendSilenced(t, member, 2)
	chair.SendAudio(0, 3, opus, false, nil)
	speaker.expectFrame(3)

	denied := func(p *peer, perm uint32) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](p) {
			if d.GetPermission()&perm != 0 {
				return true
			}
		}
		return false
	}
	// A plain member may neither mute nor kick anyone.
	member.Send(&mumblepb.UserState{Session: proto.Uint32(speaker.Session()), Mute: proto.Bool(true)})
	member.waitFor("member may not mute", func(*client.Client) bool { return denied(member, 0x10) })
	member.Send(&mumblepb.UserRemove{Session: proto.Uint32(speaker.Session())})
	member.waitFor("member may not kick", func(*client.Client) bool { return denied(member, 0x30000) })

	// The chair gives the speaker priority and mutes a disruptive member.
	chair.Send(&mumblepb.UserState{Session: proto.Uint32(speaker.Session()), PrioritySpeaker: proto.Bool(true)})
	chair.Send(&mumblepb.UserState{Session: proto.Uint32(member.Session()), Mute: proto.Bool(true)})
	member.waitFor("chair's actions", func(*client.Client) bool {
		return user(speaker).GetPrioritySpeaker() && user(member).GetMute()
	})
	// A moderator moves the member to a breakout room, where everyone may
	// speak once unmuted, and may kick.
	room := mod.channelID("Room 1")
	mod.Send(&mumblepb.UserState{Session: proto.Uint32(member.Session()), ChannelId: proto.Uint32(room), Mute: proto.Bool(false)})
	member.waitFor("moved and unmuted by the moderator", func(*client.Client) bool {
		u := user(member)
		return u.GetChannelId() == room && !u.GetMute() && !u.GetSuppress()
	})
	mod.Send(&mumblepb.UserRemove{Session: proto.Uint32(member.Session()), Reason: proto.String("test")})
	select {
	case <-member.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the moderator's kick did not disconnect the member")
	}
	// SuperUser administers everything: the ACL editor opens for it.
	plenary := su.channelID("Plenary")
	su.Send(&mumblepb.ACL{ChannelId: proto.Uint32(plenary), Query: proto.Bool(true)})
	su.waitFor("ACL for SuperUser", func(*client.Client) bool { return len(messagesOf[*mumblepb.ACL](su)) > 0 })
}

// TestExamplePlenaryFloor runs conf/examples/plenary-floor.toml as the
// README walks through it: a member asks for the floor with !hand, the
// chair gives it with !next, the hall hears the member, the presidium
// always may speak, the chair's !revoke ends the member's turn, and the
// turn is in the minutes.
func TestExamplePlenaryFloor(t *testing.T) {
	cfg, err := conf.Load("../conf/examples/plenary-floor.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certs := registerUsers(t, dir, "chair-anna", "presidium-omar")
	s := startTestServer(t, testOpts{config: cfg, dataDir: dir})
	chair := s.join(t, "chair-anna", as(certs["chair-anna"]))
	omar := s.join(t, "presidium-omar", as(certs["presidium-omar"]))
	member, listener := s.join(t, "member", nil), s.join(t, "listener", nil)
	everyone := []*peer{chair, omar, member, listener}
	for _, p := range everyone {
		p.waitUDP()
	}
	for _, p := range everyone {
		p.moveTo("Plenary", everyone...)
	}
	listener.waitFor("who may speak", func(*client.Client) bool {
		return suppressed(listener, member) && !suppressed(listener, chair) && !suppressed(listener, omar)
	})
	member.say("!hand")
	chair.told("Queue: 1. member.")
	chair.say("!next")
	listener.waitFor("the member has the floor", func(*client.Client) bool { return !suppressed(listener, member) })
	member.told("Your turn is noted for the minutes.")
	member.SendAudio(0, 1, opus, false, nil)
	listener.expectFrame(1)
	omar.SendAudio(0, 2, opus, false, nil)
	listener.expectFrame(2)
	chair.say("!revoke")
	listener.waitFor("the member's turn over", func(*client.Client) bool { return suppressed(listener, member) })
	for _, ch := range s.Status().Channels {
		if ch.Path == "Plenary" && (ch.Floor == nil || len(ch.Floor.Minutes) != 1 || ch.Floor.Minutes[0].Name != "member") {
			t.Errorf("the minutes: %+v", ch.Floor)
		}
	}
}
