package acl

import (
	"slices"
	"strings"
	"testing"
)

// TestInGroupSpecs follows Group::appliesToUser case by case.
func TestInGroupSpecs(t *testing.T) {
	tr := newTree(nil)
	anon := &Subject{Session: 9, UserID: -1, Channel: 2, CertHash: "abc", Tokens: []string{"Secret"}}
	strong := &Subject{Session: 10, UserID: 4, Channel: 4, Strong: true}
	in3 := &Subject{Session: 11, UserID: -1, Channel: 3}
	in4 := &Subject{Session: 12, UserID: -1, Channel: 4}
	// A client certificate's hash as Murmur computes it (lower case), and
	// as an ACL editor may have typed it.
	const hash = "8e59ac0928e303d2891aa737dfd40236dadaab98"
	const upper = "8E59AC0928E303D2891AA737DFD40236DADAAB98"
	hashed := &Subject{Session: 13, UserID: -1, Channel: 2, CertHash: hash}
	cases := []struct {
		name        string
		s           *Subject
		current, at uint32 // checked channel, ACL's channel
		spec        string
		want        bool
	}{
		{"all", anon, 2, 2, "all", true},
		{"!all", anon, 2, 2, "!all", false},
		{"none", anon, 2, 2, "none", false},
		{"!none", anon, 2, 2, "!none", true},
		{"!! does not cancel out", anon, 2, 2, "!!all", false},
		{"names are case-sensitive: All is a channel group", anon, 2, 2, "All", false},
		{"auth unregistered", anon, 2, 2, "auth", false},
		{"!auth unregistered", anon, 2, 2, "!auth", true},
		{"auth registered", strong, 2, 2, "auth", true},
		{"strong", strong, 2, 2, "strong", true},
		{"strong unverified", anon, 2, 2, "strong", false},
		{"!strong", anon, 2, 2, "!strong", true},
		{"in checked channel", anon, 2, 1, "in", true},
		{"in elsewhere", anon, 1, 1, "in", false},
		{"!in", anon, 1, 1, "!in", true},
		{"~in uses the ACL's channel", anon, 3, 2, "~in", true},
		{"~in not the checked channel", anon, 2, 1, "~in", false},
		{"out", anon, 1, 1, "out", true},
		{"out in it", anon, 2, 2, "out", false},
		{"!out", anon, 2, 2, "!out", true},
		{"~out", anon, 2, 1, "~out", true},
		{"!~out (prefixes in any order)", anon, 2, 1, "~!out", false},
		{"token case-insensitive", anon, 2, 2, "#secret", true},
		{"token other", anon, 2, 2, "#other", false},
		{"!token", anon, 2, 2, "!#secret", false},
		{"!token missing", anon, 2, 2, "!#other", true},
		{"token prefix after #: # then ! negates", anon, 2, 2, "#!secret", false},
		{"empty token never matches", anon, 2, 2, "#", false},
		{"empty spec", anon, 2, 2, "", false},
		{"! alone: empty rest is false even negated", anon, 2, 2, "!", false},
		{"!# is false even negated", anon, 2, 2, "!#", false},
		{"cert hash exact", anon, 2, 2, "$abc", true},
		{"cert hash case-sensitive", anon, 2, 2, "$ABC", false},
		{"!cert", anon, 2, 2, "!$abc", false},
		{"!cert other", anon, 2, 2, "!$def", true},
		{"# wins over $: #$abc is the token abc", anon, 2, 2, "#$abc", false},
		{"own hash", hashed, 2, 2, "$" + hash, true},
		{"own hash upper-case matches nobody", hashed, 2, 2, "$" + upper, false},
		{"!$ upper-case hash matches everybody, its owner too", hashed, 2, 2, "!$" + upper, true},
		{"$ then ! reads as !$", hashed, 2, 2, "$!" + hash, false},
		{"~ with token", anon, 2, 1, "~#SECRET", true},

		{"sub: user in a strict descendant", anon, 1, 1, "sub", true},
		{"sub: own channel is not a sub", anon, 2, 2, "sub", false},
		{"sub: user above", anon, 3, 3, "sub", false},
		{"!sub: user above", anon, 3, 3, "!sub", true},
		{"sub,0,2: depth >= 2 below root", anon, 0, 0, "sub,0,2", true},
		{"sub,0,3: needs depth >= 3", anon, 0, 0, "sub,0,3", false},
		{"sub,0,1,1: only children of root", anon, 0, 0, "sub,0,1,1", false},
		{"sub,0,1,1: child of root", in4, 0, 0, "sub,0,1,1", true},
		{"sub,0,0,0 is in", anon, 2, 2, "sub,0,0,0", true},
		{"sub,-1: anchor is the parent", in3, 2, 2, "sub,-1", true},
		{"sub,-1: user on another branch", in4, 2, 2, "sub,-1", false},
		{"!sub,-1: another branch negated", in4, 2, 2, "!sub,-1", true},
		{"sub,-9: anchor clamps to root", in4, 2, 2, "sub,-9", true},
		{"sub,1: anchor past the end", anon, 1, 1, "sub,1", false},
		{"!sub,1: anchor past the end negated", anon, 1, 1, "!sub,1", true},
		{"sub,1 on a deeper checked channel: anchor is Hall", in3, 3, 1, "~sub,1", true},
		{"sub: user on another branch", anon, 4, 4, "sub", false},
		{"!sub: user on another branch", anon, 4, 4, "!sub", true},
		{"~sub: evaluated below the ACL's channel", anon, 3, 1, "~sub", true},
		{"sub without ~: below the checked channel", anon, 3, 1, "sub", false},
		{"sub,,,x: unparsable c is 0, not 1000", in3, 2, 2, "sub,,,x", false},
		{"sub,,x: unparsable b is 0, not 1", anon, 2, 2, "sub,,x", true},
		{"sub,x: unparsable a is 0", in3, 2, 2, "sub,x", true},
		{"sub,a,b,c,d: words are 0, the fourth is ignored: sub,0,0,0", anon, 2, 2, "sub,a,b,c,d", true},
		{"sub,a,b,c,d: not for a user below", in3, 2, 2, "sub,a,b,c,d", false},
		{"sub,1,x: anchor past the end", anon, 2, 2, "sub,1,x", false},
		{"!sub,1,x: anchor past the end negated", anon, 2, 2, "!sub,1,x", true},
		{"sub,1,x from Plenary: anchor Hall, x is 0 so Hall itself counts", anon, 2, 1, "~sub,1,x", true},
		{"sub, -1 ,2: white space allowed around numbers", in3, 2, 2, "sub, -1 ,2", true},
		{"sub,-1,2: same without white space", in3, 2, 2, "sub,-1,2", true},
		{"sub,0,2 from Hall: needs depth 4", in3, 2, 2, "sub,0,2", false},
		{"sub,0,2,1: empty range", in3, 1, 1, "sub,0,2,1", false},
		{"subway is a channel group", in3, 1, 1, "subway", false},
		{"~sub off the path (Murmur only asserts): index -1+a", in3, 4, 1, "~sub", true},
	}
	for _, c := range cases {
		if got := InGroup(tr, c.s, c.current, c.at, c.spec); got != c.want {
			var why string
			appliesToUser(tr, c.s, c.current, c.at, c.spec, &why)
			t.Errorf("%s: InGroup(user in %d, current %d, acl %d, %q) = %v, want %v (%s)",
				c.name, c.s.Channel, c.current, c.at, c.spec, got, c.want, why)
		}
	}
}

func TestBuiltinGroupIsInGroupWithoutACLs(t *testing.T) {
	s := &Subject{Session: 2, UserID: 3, Channel: 3, Tokens: []string{"x"}}
	tr := newTree(map[uint32]*ChannelACL{0: {InheritACL: true, Groups: map[string]*Group{
		"g": {Name: "g", Inherit: true, Inheritable: true, Add: []int64{3}}}}})
	for _, spec := range []string{"all", "!!all", "sub", "sub,-1", "~in", "#X", "g", "!g"} {
		for ch := range uint32(6) {
			want := InGroup(newTree(nil), s, ch, ch, spec)
			if got := BuiltinGroup(tr, s, ch, spec); got != want {
				t.Errorf("BuiltinGroup(%d, %q) = %v, want %v", ch, spec, got, want)
			}
		}
	}
	if BuiltinGroup(tr, s, 2, "g") {
		t.Error("BuiltinGroup must not see channel groups")
	}
}

func TestChannelGroups(t *testing.T) {
	g := func(inherit, inheritable bool, add, remove, temp []int64) *Group {
		return &Group{Name: "speakers", Inherit: inherit, Inheritable: inheritable, Add: add, Remove: remove, Temporary: temp}
	}
	on := func(groups map[uint32]*Group) *fakeTree {
		acls := map[uint32]*ChannelACL{}
		for ch, gr := range groups {
			acls[ch] = &ChannelACL{InheritACL: true, Groups: map[string]*Group{"speakers": gr}}
		}
		return newTree(acls)
	}
	reg := func(id int64) *Subject { return &Subject{Session: 100 + uint32(id), UserID: id, Channel: 4} }
	anon := func(session uint32) *Subject { return &Subject{Session: session, UserID: -1, Channel: 4} }
	cases := []struct {
		name   string
		groups map[uint32]*Group
		s      *Subject
		at     uint32
		want   bool
	}{
		{"own group add", map[uint32]*Group{2: g(true, true, []int64{5}, nil, nil)}, reg(5), 2, true},
		{"own group, not added", map[uint32]*Group{2: g(true, true, []int64{5}, nil, nil)}, reg(6), 2, false},
		{"inherited from root", map[uint32]*Group{0: g(true, true, []int64{5}, nil, nil)}, reg(5), 3, true},
		{"not visible above its channel", map[uint32]*Group{2: g(true, true, []int64{5}, nil, nil)}, reg(5), 1, false},
		{"inherit=false stops the walk", map[uint32]*Group{
			0: g(true, true, []int64{5}, nil, nil), 1: g(false, true, []int64{6}, nil, nil)}, reg(5), 2, false},
		{"inherit=false keeps its own members", map[uint32]*Group{
			0: g(true, true, []int64{5}, nil, nil), 1: g(false, true, []int64{6}, nil, nil)}, reg(6), 2, true},
		{"non-inheritable ancestor group ignored below", map[uint32]*Group{0: g(true, false, []int64{5}, nil, nil)}, reg(5), 2, false},
		{"non-inheritable group used on its own channel", map[uint32]*Group{0: g(true, false, []int64{5}, nil, nil)}, reg(5), 0, true},
		{"non-inheritable ancestor hides the ones above", map[uint32]*Group{
			0: g(true, true, []int64{5}, nil, nil), 1: g(true, false, []int64{6}, nil, nil)}, reg(5), 2, false},
		{"non-inheritable on its own channel inherits from above", map[uint32]*Group{
			0: g(true, true, []int64{5}, nil, nil), 1: g(true, false, []int64{6}, nil, nil)}, reg(5), 1, true},
		{"remove overrides an inherited add", map[uint32]*Group{
			0: g(true, true, []int64{5}, nil, nil), 2: g(true, true, nil, []int64{5}, nil)}, reg(5), 3, false},
		{"remove only below", map[uint32]*Group{
			0: g(true, true, []int64{5}, nil, nil), 2: g(true, true, nil, []int64{5}, nil)}, reg(5), 1, true},
		{"add below an inherited remove", map[uint32]*Group{
			0: g(true, true, nil, []int64{5}, nil), 2: g(true, true, []int64{5}, nil, nil)}, reg(5), 2, true},
		{"add and remove in one group: remove wins", map[uint32]*Group{
			2: g(true, true, []int64{5}, []int64{5}, nil)}, reg(5), 2, false},
		{"temporary registered member", map[uint32]*Group{2: g(true, true, nil, nil, []int64{5})}, reg(5), 2, true},
		{"temporary unregistered member by -session", map[uint32]*Group{2: g(true, true, nil, nil, []int64{-9})}, anon(9), 2, true},
		{"temporary -session is not another session", map[uint32]*Group{2: g(true, true, nil, nil, []int64{-9})}, anon(10), 2, false},
		{"temporary inherited", map[uint32]*Group{0: g(true, true, nil, nil, []int64{-9})}, anon(9), 3, true},
		{"remove overrides temporary", map[uint32]*Group{2: g(true, true, nil, []int64{5}, []int64{5})}, reg(5), 2, false},
		{"Murmur quirk: temporary -1 (session 1) matches every unregistered user",
			map[uint32]*Group{2: g(true, true, nil, nil, []int64{-1})}, anon(33), 2, true},
	}
	for _, c := range cases {
		tr := on(c.groups)
		if got := InGroup(tr, c.s, c.at, c.at, "speakers"); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
		if got := InGroup(tr, c.s, c.at, c.at, "!speakers"); got == c.want {
			t.Errorf("%s: !speakers = %v, want %v", c.name, got, !c.want)
		}
		if got := InGroup(tr, c.s, 5, c.at, "~speakers"); got != c.want {
			t.Errorf("%s: ~speakers evaluated from Desk = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestMembersGroupNamesLookup(t *testing.T) {
	mk := func(inherit, inheritable bool, add, remove []int64) *Group {
		return &Group{Inherit: inherit, Inheritable: inheritable, Add: add, Remove: remove, Temporary: []int64{77}}
	}
	tr := newTree(map[uint32]*ChannelACL{
		0: {InheritACL: true, Groups: map[string]*Group{
			"admin":  mk(true, true, []int64{1, 2}, nil),
			"secret": mk(true, false, []int64{8}, nil),
		}},
		1: {InheritACL: true, Groups: map[string]*Group{
			"admin": mk(true, true, []int64{3}, []int64{1}),
			"local": mk(true, true, []int64{4}, nil),
		}},
		2: {InheritACL: true, Groups: map[string]*Group{
			"admin": mk(false, false, []int64{9}, nil),
		}},
	})
	members := []struct {
		ch   uint32
		name string
		want []int64
	}{
		{0, "admin", []int64{1, 2}},
		{4, "admin", []int64{1, 2}},
		{1, "admin", []int64{2, 3}},
		{2, "admin", []int64{9}},
		{3, "admin", nil}, // Hall's admin group is not inheritable
		{0, "secret", []int64{8}},
		{1, "secret", nil},
		{5, "local", []int64{4}},
		{0, "nope", nil},
	}
	for _, m := range members {
		if got := Members(tr, m.ch, m.name); !slices.Equal(got, m.want) {
			t.Errorf("Members(%d, %q) = %v, want %v", m.ch, m.name, got, m.want)
		}
	}
	names := []struct {
		ch   uint32
		want []string
	}{
		{0, []string{"admin", "secret"}},
		{4, []string{"admin"}},
		{1, []string{"admin", "local"}},
		{2, []string{"admin", "local"}},
		{3, []string{"local"}}, // a non-inheritable group on an ancestor removes the name
	}
	for _, n := range names {
		if got := GroupNames(tr, n.ch); !slices.Equal(got, n.want) {
			t.Errorf("GroupNames(%d) = %v, want %v", n.ch, got, n.want)
		}
	}
	if g, owner, ok := LookupGroup(tr, 3, "local"); !ok || owner != 1 || g.Add[0] != 4 {
		t.Errorf("LookupGroup(3, local) = %v, %d, %v", g, owner, ok)
	}
	if _, _, ok := LookupGroup(tr, 3, "admin"); ok {
		t.Error("LookupGroup must not pass a non-inheritable ancestor group")
	}
	if g, owner, ok := LookupGroup(tr, 2, "admin"); !ok || owner != 2 || g.Inheritable {
		t.Errorf("LookupGroup(2, admin) = %v, %d, %v", g, owner, ok)
	}
}

func TestReplyEntries(t *testing.T) {
	tr := newTree(map[uint32]*ChannelACL{
		0: ents(grp("admin", true, true, Write, 0), grp("all", true, false, SelfRegister, 0)),
		1: {InheritACL: false, Entries: []Entry{grp("a", true, true, Move, 0), grp("b", true, false, Move, 0)}},
		2: {InheritACL: false, Entries: []Entry{grp("c", false, false, 0, 0)}},
		3: ents(grp("d", true, false, Enter, 0)),
	})
	got := func(ch uint32) string {
		var parts []string
		for _, e := range ReplyEntries(tr, ch) {
			p := e.Group
			if e.Inherited {
				p += "*"
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, " ")
	}
	if g := got(0); g != "admin all" {
		t.Errorf("root: %q", g)
	}
	// Plenary's own inherit_acl=false does not hide its parent in the reply.
	if g := got(1); g != "admin* a b" {
		t.Errorf("Plenary: %q", g)
	}
	// The parent is always listed; Plenary does not inherit, so the walk
	// stops there and root's entries are not shown.
	if g := got(2); g != "a* c" {
		t.Errorf("Hall: %q", g)
	}
	// Hall's own entry applies nowhere, so it is not listed as inherited.
	if g := got(3); g != "d" {
		t.Errorf("Booth: %q", g)
	}
	// Booth inherits, Hall does not: both are walked, neither hands down.
	if g := got(5); g != "" {
		t.Errorf("Desk: %q", g)
	}
}
