package server_test

import (
	"crypto/sha1"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// sentEntry is an ACL entry as the editor sends it and the reply shows it.
type sentEntry struct {
	group       string
	here, subs  bool
	grant, deny acl.Permission
}

func (e sentEntry) msg() *mumblepb.ACL_ChanACL {
	return &mumblepb.ACL_ChanACL{Group: proto.String(e.group), ApplyHere: proto.Bool(e.here), ApplySubs: proto.Bool(e.subs),
		Grant: proto.Uint32(uint32(e.grant)), Deny: proto.Uint32(uint32(e.deny))}
}

// ownEntries are the entries of an ACL reply stored on the channel itself.
func ownEntries(m *mumblepb.ACL) []sentEntry {
	var out []sentEntry
	for _, e := range m.Acls {
		if !e.GetInherited() {
			out = append(out, sentEntry{e.GetGroup(), e.GetApplyHere(), e.GetApplySubs(), acl.Permission(e.GetGrant()), acl.Permission(e.GetDeny())})
		}
	}
	return out
}

// queryACL asks for ch's ACL and returns the reply.
func queryACL(p *peer, ch uint32) *mumblepb.ACL {
	p.t.Helper()
	before := len(messagesOf[*mumblepb.ACL](p))
	p.Send(&mumblepb.ACL{ChannelId: proto.Uint32(ch), Query: proto.Bool(true)})
	var reply *mumblepb.ACL
	p.waitFor("ACL reply", func(*client.Client) bool {
		replies := messagesOf[*mumblepb.ACL](p)
		if len(replies) > before {
			reply = replies[len(replies)-1]
			return true
		}
		return false
	})
	return reply
}

// askPermissions returns what a PermissionQuery for ch answers.
func askPermissions(p *peer, ch uint32) acl.Permission {
	p.t.Helper()
	before := len(messagesOf[*mumblepb.PermissionQuery](p))
	p.Send(&mumblepb.PermissionQuery{ChannelId: proto.Uint32(ch)})
	var got acl.Permission
	p.waitFor("PermissionQuery answer", func(*client.Client) bool {
		for _, m := range messagesOf[*mumblepb.PermissionQuery](p)[before:] {
			if m.GetChannelId() == ch && !m.GetFlush() {
				got = acl.Permission(m.GetPermissions())
				return true
			}
		}
		return false
	})
	return got
}

// TestACLEditsAreStoredAsMurmurStoresThem: entries sent from the ACL
// editor are kept as sent, as Murmur keeps them, however odd: a "$" spec
// with an upper-case certificate hash (it matches nobody, and "!$HASH"
// everybody), "sub" with a word for a number (read as 0) or with four
// arguments (the fourth ignored), a root-only permission where it has no
// effect, an entry that grants and denies nothing, a user both added to
// and removed from a group. The reply to the next query shows every entry,
// the written-back file holds them, and after a restart the server reads
// them back identically and evaluates them as Murmur does.
func TestACLEditsAreStoredAsMurmurStoresThem(t *testing.T) {
	cfg, path := fileConfig(t, "[groups.admin]\nadd = [\"chair\"]\n\n[[acl]]\ngroup = \"admin\"\nallow = [\"Write\"]\n\n"+
		"[[channel]]\nname = \"Lobby\"\n\n[[channel]]\nname = \"Hall\"\n")
	dataDir := t.TempDir()
	certs := registerUsers(t, dataDir, "chair")
	s := startTestServer(t, testOpts{config: cfg, dataDir: dataDir})
	chair := s.join(t, "chair", as(certs["chair"]))
	memberCert := selfSignedCert(t)
	sum := sha1.Sum(memberCert.Certificate[0])
	upper := strings.ToUpper(hex.EncodeToString(sum[:]))
	member := s.join(t, "member", as(memberCert))
	hall := chair.channelID("Hall")
	chairID := chair.Users()[chair.Session()].GetUserId()

	sent := []sentEntry{
		{"$" + upper, true, true, acl.MakeChannel, 0},  // the member's hash, upper-case: matches nobody
		{"!$" + upper, true, true, acl.LinkChannel, 0}, // so this matches everybody
		{"sub,1,x", true, true, acl.MuteDeafen, 0},     // anchor past the end: nobody here
		{"sub,a,b,c,d", true, true, acl.Move, 0},       // sub,0,0,0: whoever is in Hall
		{"all", false, true, acl.Kick, 0},              // root-only, not on root: no effect
		{"all", true, true, 0, 0},                      // grants and denies nothing
		{"all", true, true, 0, acl.Speak},
	}
	var msgs []*mumblepb.ACL_ChanACL
	for _, e := range sent {
		msgs = append(msgs, e.msg())
	}
	chair.Send(&mumblepb.ACL{ChannelId: proto.Uint32(hall), InheritAcls: proto.Bool(true), Acls: msgs, Groups: []*mumblepb.ACL_ChanGroup{
		{Name: proto.String("voters"), Inherit: proto.Bool(true), Inheritable: proto.Bool(true), Add: []uint32{chairID}, Remove: []uint32{chairID}},
	}})

	// Murmur 1.5 computes, for a user in Hall: the default grant, with
	// LinkChannel (!$HASH) and Move (sub,0,0,0), without Speak. Debian's
	// murmurd 1.3.4 sends the same for these entries (without Listen,
	// which 1.3 does not know).
	want := (acl.Cached | acl.DefaultGrant | acl.LinkChannel | acl.Move) &^ acl.Speak
	check := func(what string, chair, member *peer) {
		t.Helper()
		reply := queryACL(chair, hall)
		if got := ownEntries(reply); !slices.Equal(got, sent) {
			t.Errorf("%s: the ACL reply shows\n%v\nwant what was sent:\n%v", what, got, sent)
		}
		var voters *mumblepb.ACL_ChanGroup
		for _, g := range reply.Groups {
			if g.GetName() == "voters" {
				voters = g
			}
		}
		if voters == nil || !slices.Equal(voters.Add, []uint32{chairID}) || !slices.Equal(voters.Remove, []uint32{chairID}) {
			t.Errorf("%s: group voters %v, want the chair added and removed", what, voters)
		}
		member.moveTo("Hall")
		if got := askPermissions(member, hall); got != want {
			t.Errorf("%s: member's permissions in Hall %#x (%v), want %#x (%v)", what, uint32(got), got&acl.All, uint32(want), want&acl.All)
		}
	}
	check("after the edit", chair, member)

	// The file holds every entry, as sent.
	file := waitFile(t, path, "Hall's seven entries", func(c *conf.Config) bool {
		ch := c.Lookup("Hall")
		return ch != nil && len(ch.ACL) == len(sent)
	})
	for i, e := range file.Lookup("Hall").ACL {
		allow, deny := e.Permissions()
		got := sentEntry{e.Group, e.Here(), e.Subs(), allow, deny}
		if got != sent[i] {
			t.Errorf("file entry %d: %v, want %v", i, got, sent[i])
		}
	}
	if g := file.Lookup("Hall").Groups["voters"]; g == nil || !slices.Equal(g.Add, []string{"chair"}) || !slices.Equal(g.Remove, []string{"chair"}) {
		t.Errorf("file group voters %+v", g)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `group = "!$`+upper+`"`) {
		t.Errorf("the file lacks the upper-case hash as sent:\n%s", data)
	}

	// A restart reads it all back.
	chair.Close()
	member.Close()
	s.stop()
	again, err := conf.Load(path)
	if err != nil {
		t.Fatalf("the written-back file does not load: %v", err)
	}
	s2 := startTestServer(t, testOpts{config: again, dataDir: dataDir})
	check("after a restart", s2.join(t, "chair", as(certs["chair"])), s2.join(t, "member", as(memberCert)))
}

// TestACLEditorNeedsWriteOnTheChannelOrItsParent: Murmur opens a channel's
// ACL to whoever has Write on the channel or on its parent, not on root.
func TestACLEditorNeedsWriteOnTheChannelOrItsParent(t *testing.T) {
	dataDir := t.TempDir()
	certs := registerUsers(t, dataDir, "ed", "rooter")
	// ed has Write on A only, rooter on root only (apply_subs = false).
	cfg, _ := fileConfig(t, "[[acl]]\nuser = \"rooter\"\napply_subs = false\nallow = [\"Write\"]\n\n"+
		"[[channel]]\nname = \"A\"\n[[channel.acl]]\nuser = \"ed\"\napply_subs = false\nallow = [\"Write\"]\n\n"+
		"  [[channel.channel]]\n  name = \"B\"\n")
	s := startTestServer(t, testOpts{config: cfg, dataDir: dataDir})
	ed := s.join(t, "ed", as(certs["ed"]))
	rooter := s.join(t, "rooter", as(certs["rooter"]))
	b := ed.channelID("B")

	// ed: no Write on B, but on its parent A.
	if reply := queryACL(ed, b); reply.GetChannelId() != b {
		t.Errorf("ACL reply for channel %d, want B (%d)", reply.GetChannelId(), b)
	}
	// rooter: Write neither on B nor on A, only on root.
	rooter.Send(&mumblepb.ACL{ChannelId: proto.Uint32(b), Query: proto.Bool(true)})
	rooter.waitFor("Write denied in B", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](rooter) {
			if d.GetChannelId() == b && acl.Permission(d.GetPermission()) == acl.Write {
				return true
			}
		}
		return false
	})
	if n := len(messagesOf[*mumblepb.ACL](rooter)); n != 0 {
		t.Errorf("rooter got %d ACL replies, want none", n)
	}
}
