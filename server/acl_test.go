package server_test

import (
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/store"
)

// registerUsers registers names in a fresh database in dataDir and returns
// a client certificate for each.
func registerUsers(t *testing.T, dataDir string, names ...string) map[string]*tls.Certificate {
	t.Helper()
	st, err := store.Open(filepath.Join(dataDir, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	certs := map[string]*tls.Certificate{}
	for _, name := range names {
		cert := selfSignedCert(t)
		sum := sha1.Sum(cert.Certificate[0])
		if _, err := st.Register(name, hex.EncodeToString(sum[:])); err != nil {
			t.Fatal(err)
		}
		certs[name] = cert
	}
	return certs
}

func as(cert *tls.Certificate) func(*client.Config) {
	return func(c *client.Config) { c.Certificate = cert }
}

// plenaryACL makes Plenary a hall where everyone hears and only the
// speakers group may speak, and makes chair an admin.
func plenaryACL(c *conf.Config) {
	c.Groups["admin"] = &conf.Group{Add: []string{"chair"}}
	for i := range c.Channels {
		if c.Channels[i].Name == "Plenary" {
			c.Channels[i].Groups = map[string]*conf.Group{"speakers": {Add: []string{"speaker"}}}
			c.Channels[i].ACL = []conf.ACLEntry{
				{Group: "all", Deny: []string{"Speak"}},
				{Group: "speakers", Allow: []string{"Speak"}},
			}
		}
	}
}

func TestSpeakOnlyForSpeakersInPlenary(t *testing.T) {
	dir := t.TempDir()
	certs := registerUsers(t, dir, "speaker", "chair")
	s := startTestServer(t, testOpts{dataDir: dir, edit: plenaryACL})
	sp := s.join(t, "speaker", as(certs["speaker"]))
	member := s.join(t, "member", nil)
	listener := s.join(t, "listener", nil)
	for _, p := range []*peer{sp, member, listener} {
		p.waitUDP()
	}
	for _, p := range []*peer{sp, member, listener} {
		p.moveTo("Plenary", sp, member, listener)
	}
	listener.waitFor("member suppressed, speaker not", func(c *client.Client) bool {
		return c.Users()[member.Session()].GetSuppress() && !c.Users()[sp.Session()].GetSuppress()
	})
	s.sendSilenced(t, member, 1) // a suppressed member reaches no one
	sp.SendAudio(0, 2, opus, false, nil)
	if got := listener.expectFrame(2); got.Sender != sp.Session() {
		t.Fatalf("heard %d", got.Sender)
	}
	// Back in the lobby the member may speak again.
	member.moveTo("Lobby", listener)
	listener.waitFor("member unsuppressed", func(c *client.Client) bool { return !c.Users()[member.Session()].GetSuppress() })
}

func TestACLEditorReadsAndWritesACLs(t *testing.T) {
	dir := t.TempDir()
	certs := registerUsers(t, dir, "chair", "speaker")
	s := startTestServer(t, testOpts{dataDir: dir, edit: plenaryACL})
	chair := s.join(t, "chair", as(certs["chair"]))
	member := s.join(t, "member", nil)
	plenary := chair.channelID("Plenary")

	// A plain member may not open the editor.
	member.Send(&mumblepb.ACL{ChannelId: proto.Uint32(plenary), Query: proto.Bool(true)})
	member.waitFor("Write denied", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](member) {
			if d.GetPermission()&0x1 != 0 && d.GetChannelId() == plenary {
				return true
			}
		}
		return false
	})

	// The chair (admin group on root) reads Plenary's ACL: the root's
	// inherited entries, then Plenary's own two, and the groups.
	chair.Send(&mumblepb.ACL{ChannelId: proto.Uint32(plenary), Query: proto.Bool(true)})
	var reply *mumblepb.ACL
	chair.waitFor("ACL reply", func(*client.Client) bool {
		for _, m := range messagesOf[*mumblepb.ACL](chair) {
			reply = m
			return true
		}
		return false
	})
	var own, inherited int
	for _, e := range reply.Acls {
		if e.GetInherited() {
			inherited++
		} else {
			own++
		}
	}
	if own != 2 || inherited == 0 {
		t.Fatalf("ACL reply has %d own and %d inherited entries: %v", own, inherited, reply)
	}
	var speakers *mumblepb.ACL_ChanGroup
	for _, g := range reply.Groups {
		if g.GetName() == "speakers" {
			speakers = g
		}
	}
	if speakers == nil || len(speakers.Add) != 1 {
		t.Fatalf("speakers group in reply: %v", reply.Groups)
	}
	chair.waitFor("names of referenced users", func(*client.Client) bool {
		for _, q := range messagesOf[*mumblepb.QueryUsers](chair) {
			for _, n := range q.Names {
				if n == "speaker" {
					return true
				}
			}
		}
		return false
	})

	// The chair now lets everyone speak in the Lobby be denied: users there
	// become suppressed at once, and lifting it frees them.
	lobby := chair.channelID("Lobby")
	setLobby := func(entries ...*mumblepb.ACL_ChanACL) {
		chair.Send(&mumblepb.ACL{ChannelId: proto.Uint32(lobby), InheritAcls: proto.Bool(true), Acls: entries})
	}
	setLobby(&mumblepb.ACL_ChanACL{Group: proto.String("all"), ApplyHere: proto.Bool(true), ApplySubs: proto.Bool(true), Deny: proto.Uint32(0x8)})
	member.waitFor("suppressed by the new ACL", func(c *client.Client) bool { return c.Users()[member.Session()].GetSuppress() })
	setLobby()
	member.waitFor("free again", func(c *client.Client) bool { return !c.Users()[member.Session()].GetSuppress() })
}

func TestEnterDeniedByACL(t *testing.T) {
	s := startServer(t, func(c *conf.Config) {
		for i := range c.Channels {
			if c.Channels[i].Name == "Overflow" {
				c.Channels[i].ACL = []conf.ACLEntry{{Group: "all", Deny: []string{"Enter"}}}
			}
		}
	})
	a := s.join(t, "alice", nil)
	overflow := a.channelID("Overflow")
	if ch := a.Channels()[overflow]; !ch.GetIsEnterRestricted() || ch.GetCanEnter() {
		t.Errorf("Overflow shown as enterable: %v", ch)
	}
	a.Move(overflow)
	a.waitFor("Enter denied", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](a) {
			if d.GetPermission()&0x4 != 0 && d.GetChannelId() == overflow {
				return true
			}
		}
		return false
	})
}

func TestWhisperTokensAndTraverseFollowTheACL(t *testing.T) {
	s := startServer(t, func(c *conf.Config) {
		for i := range c.Channels {
			switch c.Channels[i].Name {
			case "Plenary": // password-protected the Mumble way: an access token
				c.Channels[i].ACL = []conf.ACLEntry{
					{Group: "all", Deny: []string{"Enter"}},
					{Group: "#opensesame", Allow: []string{"Enter"}},
				}
			case "Breakout rooms": // nobody may whisper or shout into the rooms
				c.Channels[i].ACL = []conf.ACLEntry{{Group: "all", Deny: []string{"Whisper"}}}
			case "Overflow": // hidden: no Traverse
				c.Channels[i].ACL = []conf.ACLEntry{{Group: "all", Deny: []string{"Traverse"}}}
			}
		}
	})
	a, b, c := s.trio(t)
	b.moveTo("Room 1", a, c)

	// Whisper into Room 1 is dropped; the fence shows nothing came before.
	room := a.channelID("Room 1")
	a.SetVoiceTarget(1, &mumblepb.VoiceTarget_Target{ChannelId: proto.Uint32(room)})
	a.SetVoiceTarget(2, &mumblepb.VoiceTarget_Target{Session: []uint32{b.Session()}})
	syncControl(t, a)
	before := s.Stats().VoiceReceived
	a.SendAudio(1, 1, opus, false, nil)
	a.SendAudio(2, 2, opus, false, nil)
	// Senders are served by different socket readers, so b's own loopback
	// is a fence only once a's two packets were routed.
	s.waitRouted(t, before+2)
	b.SendAudio(voice.TargetLoopback, 3, opus, false, nil)
	b.expectFrame(3)

	// Without the token Plenary is closed; with it, it opens.
	plenary := a.channelID("Plenary")
	if a.Channels()[plenary].GetCanEnter() {
		t.Error("Plenary shown as enterable without the token")
	}
	a.Move(plenary)
	a.waitFor("Enter denied", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](a) {
			if d.GetPermission()&0x4 != 0 && d.GetChannelId() == plenary {
				return true
			}
		}
		return false
	})
	c2 := s.join(t, "dave", func(cfg *client.Config) { cfg.Tokens = []string{"OpenSesame"} })
	c2.moveTo("Plenary", a)

	// No Traverse: Overflow cannot be entered.
	overflow := a.channelID("Overflow")
	if a.Channels()[overflow].GetCanEnter() {
		t.Error("a channel without Traverse is shown as enterable")
	}
}

func TestFullChannelRefusesAllButWriters(t *testing.T) {
	dir := t.TempDir()
	certs := registerUsers(t, dir, "chair")
	s := startTestServer(t, testOpts{dataDir: dir, edit: func(c *conf.Config) {
		c.Groups["admin"] = &conf.Group{Add: []string{"chair"}}
		for i := range c.Channels {
			if c.Channels[i].Name == "Overflow" {
				c.Channels[i].MaxUsers = 1
			}
		}
	}})
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	chair := s.join(t, "chair", as(certs["chair"]))
	a.moveTo("Overflow", b)
	b.Move(b.channelID("Overflow"))
	b.waitFor("ChannelFull", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](b) {
			if d.GetType() == mumblepb.PermissionDenied_ChannelFull {
				return true
			}
		}
		return false
	})
	chair.moveTo("Overflow", a) // Write on the channel ignores the limit, as in Murmur
}

// TestACLEditorHasItsOwnRateLimit: a user who has just used up Murmur's
// message limit by chatting still opens the ACL editor, and an editor
// over its own limit is told instead of waiting for an answer.
func TestACLEditorHasItsOwnRateLimit(t *testing.T) {
	s := startAdminServer(t)
	admin := s.join(t, "admin", withCert(t))
	for i := range 8 { // over the burst of 5
		admin.Send(&mumblepb.TextMessage{ChannelId: []uint32{0}, Message: proto.String(fmt.Sprint("line ", i))})
	}
	query := &mumblepb.ACL{ChannelId: proto.Uint32(0), Query: proto.Bool(true)}
	admin.Send(query)
	admin.waitFor("the ACL editor's answer after a burst of chat", func(*client.Client) bool {
		return len(messagesOf[*mumblepb.ACL](admin)) == 1
	})
	for range 5 { // four more fit in the editor's burst, the fifth does not
		admin.Send(query)
	}
	admin.waitFor("the refusal of the sixth query", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](admin) {
			if strings.Contains(d.GetReason(), "Too many ACL requests") {
				return true
			}
		}
		return false
	})
	syncControl(t, admin)
	if n := len(messagesOf[*mumblepb.ACL](admin)); n != 5 {
		t.Errorf("%d ACL answers, want 5 (the burst)", n)
	}
}
