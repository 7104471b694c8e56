package acl

import (
	"fmt"
	"strings"
	"testing"
)

// fakeTree is an ACLTree for tests:
//
//	0 Root
//	├── 1 Plenary
//	│   └── 2 Hall
//	│       └── 3 Booth
//	│           └── 5 Desk
//	└── 4 Lobby
type fakeTree struct {
	acls map[uint32]*ChannelACL
}

var fakeParents = map[uint32]uint32{1: 0, 2: 1, 3: 2, 4: 0, 5: 3}
var fakeNames = map[uint32]string{0: "Root", 1: "Plenary", 2: "Hall", 3: "Booth", 4: "Lobby", 5: "Desk"}

func (t *fakeTree) Parent(ch uint32) (uint32, bool) {
	p, ok := fakeParents[ch]
	return p, ok
}
func (t *fakeTree) ACL(ch uint32) *ChannelACL    { return t.acls[ch] }
func (t *fakeTree) ChannelName(ch uint32) string { return fakeNames[ch] }

func newTree(acls map[uint32]*ChannelACL) *fakeTree {
	if acls == nil {
		acls = map[uint32]*ChannelACL{}
	}
	return &fakeTree{acls: acls}
}

// ents is a channel that inherits ACLs and has the given entries.
func ents(es ...Entry) *ChannelACL { return &ChannelACL{InheritACL: true, Entries: es} }

// grp entries: who is a group spec; here/subs the apply flags.
func grp(who string, here, subs bool, allow, deny Permission) Entry {
	return Entry{ApplyHere: here, ApplySubs: subs, UserID: -1, Group: who, Allow: allow, Deny: deny}
}

func usr(id int64, here, subs bool, allow, deny Permission) Entry {
	return Entry{ApplyHere: here, ApplySubs: subs, UserID: id, Allow: allow, Deny: deny}
}

var (
	anonIn = func(ch uint32) *Subject { return &Subject{Session: 40, UserID: -1, Channel: ch} }
	regIn  = func(id int64, ch uint32) *Subject { return &Subject{Session: 50 + uint32(id), UserID: id, Channel: ch} }
)

type permCase struct {
	name string
	acls map[uint32]*ChannelACL
	s    *Subject
	ch   uint32
	want Permission
}

func runPermCases(t *testing.T, cases []permCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTree(c.acls)
			if got := Permissions(tr, c.s, c.ch); got != c.want {
				t.Errorf("Permissions(user %d in %d, channel %d) = %#x (%v), want %#x (%v)\n%s",
					c.s.UserID, c.s.Channel, c.ch, uint32(got), got, uint32(c.want), c.want,
					Explain(tr, c.s, c.ch, c.want^got))
			}
			// Explain must always agree with Permissions.
			if ex := Explain(tr, c.s, c.ch, Speak); ex.Granted != c.want {
				t.Errorf("Explain.Granted = %v, want %v", ex.Granted, c.want)
			}
		})
	}
}

func TestConstantsMatchMurmur(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want Permission
	}{
		{"DefaultGrant", DefaultGrant, 0xB0E},
		{"WriteImplies", WriteImplies, 0xEF6},
		{"RootOnly", RootOnly, 0x1F0000},
		{"SuperUser", SuperUserPermissions, 0x1F0EF7},
		{"All", All, 0x1F0FFF},
		{"Cached", Cached, 0x8000000},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, uint32(c.got), uint32(c.want))
		}
	}
}

func TestPermissionsEvaluation(t *testing.T) {
	runPermCases(t, []permCase{
		{"no ACLs: default grant in root", nil, anonIn(0), 0, DefaultGrant},
		{"no ACLs: default grant deep down", nil, regIn(5, 2), 5, DefaultGrant},
		{"unknown channel is evaluated as a lone channel", nil, anonIn(0), 99, DefaultGrant},
		{"allow and deny in one entry: deny wins",
			map[uint32]*ChannelACL{0: ents(grp("all", true, true, Speak|MuteDeafen, Speak|MuteDeafen))},
			anonIn(2), 2, DefaultGrant &^ Speak},
		{"later entry overrides earlier: deny then allow",
			map[uint32]*ChannelACL{0: ents(
				grp("all", true, true, 0, Speak),
				grp("all", true, true, Speak, 0))},
			anonIn(2), 2, DefaultGrant},
		{"later entry overrides earlier: allow then deny",
			map[uint32]*ChannelACL{0: ents(
				grp("all", true, true, Speak, 0),
				grp("all", true, true, 0, Speak))},
			anonIn(2), 2, DefaultGrant &^ Speak},
		{"child channel overrides ancestor",
			map[uint32]*ChannelACL{0: ents(grp("all", true, true, 0, Speak)), 2: ents(grp("all", true, true, Speak, 0))},
			anonIn(3), 3, DefaultGrant},
		{"apply_here acts on the channel itself",
			map[uint32]*ChannelACL{1: ents(grp("all", true, false, MuteDeafen, 0))},
			anonIn(1), 1, DefaultGrant | MuteDeafen},
		{"apply_here does not reach subchannels",
			map[uint32]*ChannelACL{1: ents(grp("all", true, false, MuteDeafen, 0))},
			anonIn(1), 2, DefaultGrant},
		{"apply_subs does not act on the channel itself",
			map[uint32]*ChannelACL{1: ents(grp("all", false, true, MuteDeafen, 0))},
			anonIn(1), 1, DefaultGrant},
		{"apply_subs reaches children",
			map[uint32]*ChannelACL{1: ents(grp("all", false, true, MuteDeafen, 0))},
			anonIn(1), 2, DefaultGrant | MuteDeafen},
		{"apply_subs reaches grandchildren",
			map[uint32]*ChannelACL{1: ents(grp("all", false, true, MuteDeafen, 0))},
			anonIn(1), 5, DefaultGrant | MuteDeafen},
		{"apply_subs does not reach a sibling branch",
			map[uint32]*ChannelACL{1: ents(grp("all", false, true, MuteDeafen, 0))},
			anonIn(1), 4, DefaultGrant},
		{"inherit_acl=false resets to the default grant",
			map[uint32]*ChannelACL{
				0: ents(grp("all", true, true, MuteDeafen, Speak)),
				2: {InheritACL: false}},
			anonIn(2), 2, DefaultGrant},
		{"inherit_acl=false resets for descendants too",
			map[uint32]*ChannelACL{
				0: ents(grp("all", true, true, MuteDeafen, Speak)),
				2: {InheritACL: false}},
			anonIn(2), 3, DefaultGrant},
		{"inherit_acl=false on a child leaves its parent alone",
			map[uint32]*ChannelACL{
				0: ents(grp("all", true, true, MuteDeafen, Speak)),
				2: {InheritACL: false}},
			anonIn(2), 1, (DefaultGrant | MuteDeafen) &^ Speak},
		{"inherit_acl=false then own entries",
			map[uint32]*ChannelACL{
				0: ents(grp("all", true, true, MuteDeafen, 0)),
				2: {InheritACL: false, Entries: []Entry{grp("all", true, true, Move, 0)}}},
			anonIn(2), 3, DefaultGrant | Move},
		{"inherit_acl=false does not restore Traverse cut above",
			map[uint32]*ChannelACL{
				1: ents(grp("all", true, true, 0, Traverse)),
				2: {InheritACL: false}},
			anonIn(2), 3, None},
		{"user entry matches that registered user",
			map[uint32]*ChannelACL{0: ents(usr(7, true, true, MuteDeafen, 0))},
			regIn(7, 1), 1, DefaultGrant | MuteDeafen},
		{"user entry does not match another user",
			map[uint32]*ChannelACL{0: ents(usr(7, true, true, MuteDeafen, 0))},
			regIn(8, 1), 1, DefaultGrant},
		{"user entry does not match unregistered users",
			map[uint32]*ChannelACL{0: ents(usr(7, true, true, MuteDeafen, 0))},
			anonIn(1), 1, DefaultGrant},
		{"entry with user -1 and no group matches nobody",
			map[uint32]*ChannelACL{0: ents(usr(-1, true, true, MuteDeafen, 0))},
			anonIn(1), 1, DefaultGrant},
		{"user entry for SuperUser id 0 never evaluated: fixed set",
			map[uint32]*ChannelACL{0: ents(usr(0, true, true, 0, All))},
			regIn(0, 1), 1, SuperUserPermissions},
	})
}

// TestUnregisteredNamesMatchNobody: the server gives a name nobody has
// registered a user id of -2 or below (a placeholder); entries and group
// members with such an id match no one, registered or not, whatever
// their session, and a negated group then matches everyone.
func TestUnregisteredNamesMatchNobody(t *testing.T) {
	chairs := func(members ...int64) map[string]*Group {
		return map[string]*Group{"chairs": {Name: "chairs", Inherit: true, Inheritable: true, Add: members}}
	}
	var cases []permCase
	for _, s := range []struct {
		who string
		s   *Subject
	}{
		{"unregistered", anonIn(1)},
		{"unregistered in session 2", &Subject{Session: 2, UserID: -1, Channel: 1}},
		{"registered", regIn(7, 1)},
	} {
		cases = append(cases,
			permCase{"user entry for a placeholder, " + s.who,
				map[uint32]*ChannelACL{0: ents(usr(-2, true, true, MuteDeafen, 0), usr(-3, true, true, Move, 0))},
				s.s, 1, DefaultGrant},
			permCase{"group member placeholder, " + s.who,
				map[uint32]*ChannelACL{0: {InheritACL: true, Groups: chairs(-2, -3),
					Entries: []Entry{grp("chairs", true, true, MuteDeafen, 0), grp("!chairs", true, true, Move, 0)}}},
				s.s, 1, DefaultGrant | Move},
		)
	}
	cases = append(cases, permCase{"a placeholder beside a registered member",
		map[uint32]*ChannelACL{0: {InheritACL: true, Groups: chairs(-2, 7), Entries: []Entry{grp("chairs", true, true, MuteDeafen, 0)}}},
		regIn(7, 1), 1, DefaultGrant | MuteDeafen})
	runPermCases(t, cases)

	// Explain says why such an entry does not match.
	ex := Explain(newTree(cases[0].acls), anonIn(1), 1, MuteDeafen).String()
	if want := "(user -2, here+subs, allow MuteDeafen, deny None): does not match: the entry is for a name nobody has registered (user -2)"; !strings.Contains(ex, want) {
		t.Errorf("the explanation lacks %q:\n%s", want, ex)
	}
}

func TestTraverseAndWrite(t *testing.T) {
	admins := &Group{Name: "admins", Inherit: true, Inheritable: true, Add: []int64{3}}
	runPermCases(t, []permCase{
		{"Traverse denied on ancestor: None in the channel",
			map[uint32]*ChannelACL{1: ents(grp("all", true, true, 0, Traverse))},
			anonIn(0), 1, None},
		{"Traverse denied on ancestor: None below",
			map[uint32]*ChannelACL{1: ents(grp("all", true, true, 0, Traverse))},
			anonIn(0), 5, None},
		{"Traverse denied on ancestor: other branch untouched",
			map[uint32]*ChannelACL{1: ents(grp("all", true, true, 0, Traverse))},
			anonIn(0), 4, DefaultGrant},
		{"Traverse re-allowed below a cut is too late",
			map[uint32]*ChannelACL{
				1: ents(grp("all", true, true, 0, Traverse)),
				2: ents(grp("all", true, true, Traverse, 0))},
			anonIn(0), 3, None},
		{"Traverse denied and re-allowed in the same channel",
			map[uint32]*ChannelACL{1: ents(
				grp("all", true, true, 0, Traverse),
				grp("all", true, true, Traverse, 0))},
			anonIn(0), 2, DefaultGrant},
		{"Traverse denied apply_here only on ancestor still cuts below",
			map[uint32]*ChannelACL{1: ents(grp("all", true, false, 0, Traverse))},
			anonIn(0), 2, None},
		// HEAD ignores a Traverse deny with apply_subs only on the channel
		// itself and returns the default grant here.
		{"v1.5.735 Traverse denied apply_subs only cuts its own channel (HEAD: default grant)",
			map[uint32]*ChannelACL{1: ents(grp("all", false, true, 0, Traverse))},
			anonIn(0), 1, None},
		// HEAD ignores an entry that applies neither here nor to subs.
		{"v1.5.735 Traverse denied by an entry applying nowhere still cuts (HEAD: default grant)",
			map[uint32]*ChannelACL{1: ents(grp("all", false, false, 0, Traverse))},
			anonIn(0), 2, None},
		{"Write on the path keeps access despite a Traverse cut",
			map[uint32]*ChannelACL{
				0: {InheritACL: true, Entries: []Entry{grp("admins", true, true, Write, 0)},
					Groups: map[string]*Group{"admins": admins}},
				1: ents(grp("all", true, true, 0, Traverse))},
			regIn(3, 0), 2, DefaultGrant | Write | WriteImplies},
		{"Write holder not in admins is still cut",
			map[uint32]*ChannelACL{
				0: {InheritACL: true, Entries: []Entry{grp("admins", true, true, Write, 0)},
					Groups: map[string]*Group{"admins": admins}},
				1: ents(grp("all", true, true, 0, Traverse))},
			regIn(4, 0), 2, None},
		// HEAD counts Write only from entries that apply, so a root
		// apply_here Write no longer saves the user below: None.
		{"v1.5.735 Write allowed apply_here on root keeps the flag below (HEAD: None)",
			map[uint32]*ChannelACL{
				0: ents(grp("all", true, false, Write, 0)),
				1: ents(grp("all", true, true, 0, Traverse))},
			anonIn(0), 2, DefaultGrant &^ Traverse},
		{"Write denied later on the path lets the Traverse cut act",
			map[uint32]*ChannelACL{
				0: ents(grp("all", true, true, Write, 0)),
				1: ents(grp("all", true, true, 0, Traverse|Write))},
			anonIn(0), 2, None},
		{"Write implies exactly 0xEF6 off root, not Speak or Whisper",
			map[uint32]*ChannelACL{0: ents(grp("all", true, true, Write, Speak|Whisper))},
			anonIn(0), 2, 0xEF7},
		{"Write implies the root-only bits on root",
			map[uint32]*ChannelACL{0: ents(grp("all", true, true, Write, Speak|Whisper))},
			anonIn(0), 0, 0x1F0EF7},
		{"Write implication overrides denies of implied bits",
			map[uint32]*ChannelACL{0: ents(grp("all", true, true, Write, Enter|Kick))},
			anonIn(0), 0, All},
		{"Write denied: no implication",
			map[uint32]*ChannelACL{0: ents(grp("all", true, true, Write, 0), grp("all", true, true, 0, Write))},
			anonIn(0), 1, DefaultGrant},
	})
}

func TestRootOnlyBits(t *testing.T) {
	rootBits := Kick | Ban | Register | SelfRegister | ResetUserContent
	runPermCases(t, []permCase{
		{"granted on root here: present on root",
			map[uint32]*ChannelACL{0: ents(grp("all", true, true, rootBits, 0))},
			anonIn(0), 0, DefaultGrant | rootBits},
		{"granted on root here+subs: absent on children",
			map[uint32]*ChannelACL{0: ents(grp("all", true, true, rootBits, 0))},
			anonIn(0), 1, DefaultGrant},
		{"granted on root subs only: ignored on root",
			map[uint32]*ChannelACL{0: ents(grp("all", false, true, rootBits, 0))},
			anonIn(0), 0, DefaultGrant},
		{"granted on root subs only: ignored on children",
			map[uint32]*ChannelACL{0: ents(grp("all", false, true, rootBits, 0))},
			anonIn(0), 2, DefaultGrant},
		{"granted on a child here: ignored",
			map[uint32]*ChannelACL{1: ents(grp("all", true, true, Kick|Ban, 0))},
			anonIn(1), 1, DefaultGrant},
		{"root-only bit denied in the same entry: denied",
			map[uint32]*ChannelACL{0: ents(grp("all", true, true, Kick, Kick))},
			anonIn(0), 0, DefaultGrant},
		{"root-only bit denied by a later entry",
			map[uint32]*ChannelACL{0: ents(grp("all", true, false, Ban|Kick, 0), grp("auth", true, false, 0, Ban))},
			regIn(9, 0), 0, DefaultGrant | Kick},
		{"Cached bit in an allow is never granted",
			map[uint32]*ChannelACL{0: ents(grp("all", true, true, Cached|MuteDeafen, 0))},
			anonIn(0), 1, DefaultGrant | MuteDeafen},
	})
}

func TestSuperUser(t *testing.T) {
	tr := newTree(map[uint32]*ChannelACL{
		0: ents(grp("all", true, true, 0, All)),
		1: ents(grp("all", true, true, 0, Traverse|Write)),
	})
	su := regIn(0, 4)
	for _, ch := range []uint32{0, 1, 2, 5, 4} {
		if got := Permissions(tr, su, ch); got != 0x1F0EF7 {
			t.Errorf("SuperUser in %d = %#x, want 0x1f0ef7", ch, uint32(got))
		}
	}
	if got := (Open{}).Permissions(tr, su, 3); got != 0x1F0EF7 {
		t.Errorf("Open SuperUser = %#x", uint32(got))
	}
}

func TestOpenEqualsNoACLs(t *testing.T) {
	tr := newTree(nil)
	if got := (Open{}).Permissions(tr, nil, 1); got != DefaultGrant {
		t.Errorf("Open with a nil Subject = %v, want the default grant", got)
	}
	for _, s := range []*Subject{anonIn(2), regIn(5, 1), regIn(0, 0)} {
		for ch := range uint32(6) {
			if got, want := (Open{}).Permissions(tr, s, ch), Permissions(tr, s, ch); got != want {
				t.Errorf("Open(%d in %d) = %v, engine %v", s.UserID, ch, got, want)
			}
		}
	}
}

func TestDefaultRootACL(t *testing.T) {
	root := DefaultRootACL()
	root.Groups["admin"].Add = []int64{3}
	tr := newTree(map[uint32]*ChannelACL{0: root})
	cases := []struct {
		s    *Subject
		ch   uint32
		want Permission
	}{
		{regIn(3, 0), 0, All},
		{regIn(3, 0), 2, DefaultGrant | Write | WriteImplies},
		{regIn(5, 0), 0, DefaultGrant | MakeTempChannel | SelfRegister},
		{regIn(5, 0), 1, DefaultGrant | MakeTempChannel},
		{anonIn(0), 0, DefaultGrant | SelfRegister},
		{anonIn(0), 1, DefaultGrant},
	}
	for _, c := range cases {
		if got := Permissions(tr, c.s, c.ch); got != c.want {
			t.Errorf("default ACL: user %d in channel %d = %v, want %v", c.s.UserID, c.ch, got, c.want)
		}
	}
	// Each call returns fresh data: editing one must not change the next.
	if len(DefaultRootACL().Groups["admin"].Add) != 0 {
		t.Error("DefaultRootACL shares its groups between calls")
	}
}

// TestGroupEntriesInPermissions covers where Murmur evaluates a group spec:
// without "~" in the checked channel, with "~" in the entry's channel.
func TestGroupEntriesInPermissions(t *testing.T) {
	hallOnly := &Group{Name: "crew", Inherit: true, Inheritable: true, Add: []int64{7}}
	runPermCases(t, []permCase{
		{"in on a parent entry means in the checked channel: user there",
			map[uint32]*ChannelACL{1: ents(grp("in", false, true, MuteDeafen, 0))},
			anonIn(2), 2, DefaultGrant | MuteDeafen},
		{"in on a parent entry means in the checked channel: user in the parent",
			map[uint32]*ChannelACL{1: ents(grp("in", false, true, MuteDeafen, 0))},
			anonIn(1), 2, DefaultGrant},
		{"~in on a parent entry means in the parent: user in the parent",
			map[uint32]*ChannelACL{1: ents(grp("~in", false, true, MuteDeafen, 0))},
			anonIn(1), 2, DefaultGrant | MuteDeafen},
		{"~in on a parent entry means in the parent: user in the checked channel",
			map[uint32]*ChannelACL{1: ents(grp("~in", false, true, MuteDeafen, 0))},
			anonIn(2), 2, DefaultGrant},
		{"out on an entry",
			map[uint32]*ChannelACL{0: ents(grp("out", true, true, 0, Enter))},
			anonIn(4), 2, DefaultGrant &^ Enter},
		{"channel group looked up from the checked channel",
			map[uint32]*ChannelACL{
				1: ents(grp("crew", false, true, MuteDeafen, 0)),
				2: {InheritACL: true, Groups: map[string]*Group{"crew": hallOnly}}},
			regIn(7, 0), 3, DefaultGrant | MuteDeafen},
		{"~ looks the channel group up from the entry's channel",
			map[uint32]*ChannelACL{
				1: ents(grp("~crew", false, true, MuteDeafen, 0)),
				2: {InheritACL: true, Groups: map[string]*Group{"crew": hallOnly}}},
			regIn(7, 0), 3, DefaultGrant},
		{"channel group checked above its definition: not a member",
			map[uint32]*ChannelACL{
				0: ents(grp("crew", true, true, MuteDeafen, 0)),
				2: {InheritACL: true, Groups: map[string]*Group{"crew": hallOnly}}},
			regIn(7, 0), 1, DefaultGrant},
		{"sub on a parent entry: user in a subchannel of the checked channel",
			map[uint32]*ChannelACL{0: ents(grp("sub", true, true, 0, Speak))},
			anonIn(3), 2, DefaultGrant &^ Speak},
		{"~sub on a parent entry: user anywhere below the entry's channel",
			map[uint32]*ChannelACL{1: ents(grp("~sub", true, true, 0, Speak))},
			anonIn(2), 2, DefaultGrant &^ Speak},
		{"token entry (password channel)",
			map[uint32]*ChannelACL{2: ents(
				grp("all", true, false, 0, Enter|Speak),
				grp("#Hunter2", true, false, Enter|Speak|Whisper|TextMessage|LinkChannel, 0))},
			&Subject{Session: 3, UserID: -1, Channel: 0, Tokens: []string{"hunter2"}}, 2,
			DefaultGrant | LinkChannel},
		{"negated token entry",
			map[uint32]*ChannelACL{2: ents(grp("!#hunter2", true, false, 0, Enter))},
			&Subject{Session: 3, UserID: -1, Channel: 0}, 2, DefaultGrant &^ Enter},
		{"cert hash entry",
			map[uint32]*ChannelACL{0: ents(grp("$abc123", true, true, Move, 0))},
			&Subject{Session: 3, UserID: -1, CertHash: "abc123"}, 4, DefaultGrant | Move},
		// What an ACL editor may send and Murmur keeps. Debian's murmurd
		// 1.3.4 answers the same (without Listen) for a user in Hall.
		{"odd specs as Murmur reads them",
			map[uint32]*ChannelACL{2: ents(
				grp("$ABC123", true, true, MakeChannel, 0), // matches nobody
				grp("!$ABC123", true, true, LinkChannel, 0),
				grp("sub,1,x", true, true, MuteDeafen, 0), // anchor past the end
				grp("sub,a,b,c,d", true, true, Move, 0),   // sub,0,0,0
				grp("all", false, true, Kick, 0),          // root-only, and not here
				grp("all", true, true, 0, 0),
				grp("all", true, true, 0, Speak))},
			&Subject{Session: 3, UserID: -1, CertHash: "abc123", Channel: 2}, 2,
			(DefaultGrant | LinkChannel | Move) &^ Speak},
	})
}

func ExampleExplain() {
	tr := newTree(map[uint32]*ChannelACL{
		0: {InheritACL: true, Entries: []Entry{grp("all", true, true, 0, Speak)}},
		1: {InheritACL: true,
			Entries: []Entry{grp("speakers", false, true, Speak, 0)},
			Groups:  map[string]*Group{"speakers": {Name: "speakers", Inherit: true, Inheritable: true, Add: []int64{12}}}},
	})
	fmt.Print(Explain(tr, &Subject{Session: 4, UserID: 12, Name: "ada", Channel: 2}, 2, Speak))
	// Output:
	// ada (user id 12, in Hall (2)) asking for Speak in Hall (2)
	//    start with the default grant: Traverse|Enter|Speak|Whisper|TextMessage|Listen
	//    entry #0 on Root (0) (@all, here+subs, allow None, deny Speak): matches: everyone is in all; applies; now Traverse|Enter|Whisper|TextMessage|Listen [traverse=true write=false]
	// => entry #0 on Plenary (1) (@speakers, subs, allow Speak, deny None): matches: member of speakers via add on Plenary (1); applies; now Traverse|Enter|Speak|Whisper|TextMessage|Listen [traverse=true write=false]
	// ALLOWED: Speak in Hall (2) (effective Traverse|Enter|Speak|Whisper|TextMessage|Listen); decided by entry #0 on Plenary (1) (@speakers, subs, allow Speak, deny None)
}
