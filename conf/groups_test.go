package conf

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/plenum-voice/plenum/acl"
)

const withACL = `[server]
name = "Hall"

[groups.admin]
add = ["Alice"]

[groups.mods]
inherit = false
inheritable = false
add = ["Bob", "Carol"]
remove = ["Dave"]

[[acl]]
group = "admin"
allow = ["Write"]

[[acl]]
user = "Bob"
apply_here = true
apply_subs = false
allow = ["kick", "Ban"]
deny = ["SelfRegister"]

[[channel]]
name = "A"
temporary = true
inherit_acl = false

  [channel.groups.speakers]
  add = ["Eve"]

  [[channel.acl]]
  group = "all"
  apply_subs = false
  deny = ["Speak", "whisper"]

  [[channel.acl]]
  group = "~speakers"
  allow = ["Speak"]

[[channel]]
name = "B"
groups.x.add = ["Frank"]

  [[channel.channel]]
  name = "B1"

    [[channel.channel.acl]]
    group = "#secret"
    allow = ["Enter"]
`

func TestGroupsAndACL(t *testing.T) {
	c, err := Parse([]byte(withACL), "acl.toml")
	if err != nil {
		t.Fatal(err)
	}
	admin, mods := c.Groups["admin"], c.Groups["mods"]
	if admin == nil || mods == nil || len(c.Groups) != 2 {
		t.Fatalf("Groups = %+v", c.Groups)
	}
	if admin.Line != 4 || !admin.Inherits() || !admin.IsInheritable() || !reflect.DeepEqual(admin.Add, []string{"Alice"}) {
		t.Errorf("admin = %+v", admin)
	}
	if mods.Line != 7 || mods.Inherits() || mods.IsInheritable() || !reflect.DeepEqual(mods.Remove, []string{"Dave"}) {
		t.Errorf("mods = %+v", mods)
	}
	if len(c.ACL) != 2 {
		t.Fatalf("ACL = %+v", c.ACL)
	}
	e0, e1 := &c.ACL[0], &c.ACL[1]
	if e0.Line != 13 || e0.Group != "admin" || !e0.Here() || !e0.Subs() {
		t.Errorf("acl[0] = %+v", e0)
	}
	if a, d := e0.Permissions(); a != acl.Write || d != acl.None {
		t.Errorf("acl[0] permissions = %v, %v", a, d)
	}
	if e1.Line != 17 || e1.User != "Bob" || !e1.Here() || e1.Subs() {
		t.Errorf("acl[1] = %+v", e1)
	}
	if a, d := e1.Permissions(); a != acl.Kick|acl.Ban || d != acl.SelfRegister {
		t.Errorf("acl[1] permissions = %v, %v", a, d)
	}

	a := c.Lookup("A")
	if !a.Temporary || a.InheritsACL() || len(a.ACL) != 2 || a.ACL[0].Line != 32 || a.ACL[1].Line != 37 {
		t.Errorf("A = %+v", a)
	}
	if g := a.Groups["speakers"]; g == nil || g.Line != 29 || g.Add[0] != "Eve" {
		t.Errorf("A speakers = %+v", g)
	}
	if _, d := a.ACL[0].Permissions(); d != acl.Speak|acl.Whisper || !a.ACL[0].Here() || a.ACL[0].Subs() {
		t.Errorf("A acl[0] = %+v", a.ACL[0])
	}
	b := c.Lookup("B")
	if g := b.Groups["x"]; g == nil || g.Line != 43 || g.Add[0] != "Frank" || !b.InheritsACL() || b.Temporary {
		t.Errorf("B = %+v", b)
	}
	if b1 := c.Lookup("B/B1"); len(b1.ACL) != 1 || b1.ACL[0].Group != "#secret" || b1.ACL[0].Line != 48 {
		t.Errorf("B/B1 = %+v", b1)
	}

	// nil receivers and nil flags take the defaults.
	var ng *Group
	var nc *Channel
	if !ng.Inherits() || !ng.IsInheritable() || !nc.InheritsACL() || !(&ACLEntry{}).Here() || !(&ACLEntry{}).Subs() {
		t.Error("nil defaults are not true")
	}
	f := &ACLEntry{ApplyHere: Bool(false), ApplySubs: Bool(false), Allow: []string{"nonsense", "Speak"}}
	if f.Here() || f.Subs() {
		t.Error("explicit false ignored")
	}
	if al, _ := f.Permissions(); al != acl.Speak {
		t.Errorf("Permissions with an unknown name = %v", al)
	}
}

func TestDefaultRootACL(t *testing.T) {
	c := Default()
	if g := c.Groups["admin"]; len(c.Groups) != 1 || g == nil || len(g.Add)+len(g.Remove) != 0 || !g.Inherits() || !g.IsInheritable() {
		t.Errorf("default groups = %+v", c.Groups)
	}
	type entry struct {
		group      string
		here, subs bool
		allow      acl.Permission
	}
	var got []entry
	for _, e := range c.ACL {
		al, d := e.Permissions()
		if d != acl.None || e.User != "" {
			t.Errorf("unexpected entry %+v", e)
		}
		got = append(got, entry{e.Group, e.Here(), e.Subs(), al})
	}
	want := []entry{ // Murmur 1.5.735's default ACL for a new server
		{"admin", true, true, acl.Write},
		{"auth", true, true, acl.MakeTempChannel},
		{"all", true, false, acl.SelfRegister},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("default ACL = %+v, want %+v", got, want)
	}
	c.Walk(func(path string, ch *Channel, _ string) {
		if len(ch.ACL) > 0 || len(ch.Groups) > 0 || ch.Temporary || !ch.InheritsACL() {
			t.Errorf("default channel %q has ACL settings", path)
		}
	})
}

// evaluator is a small, independent implementation of Murmur's effective
// permission algorithm (registered users only, no tokens), used to check
// that the example configuration does what its comments say.
type evaluator struct{ c *Config }

type level struct {
	groups  map[string]*Group
	acl     []ACLEntry
	inherit bool
}

func (ev evaluator) path(p string) []level {
	out := []level{{ev.c.Groups, ev.c.ACL, true}}
	if p == "" {
		return out
	}
	cur := ""
	for _, name := range strings.Split(p, "/") {
		cur = JoinPath(cur, name)
		ch := ev.c.Lookup(cur)
		out = append(out, level{ch.Groups, ch.ACL, ch.InheritsACL()})
	}
	return out
}

func (ev evaluator) member(levels []level, group, user string) bool {
	switch group {
	case "all":
		return true
	case "auth":
		return user != ""
	}
	// Collect definitions from the context channel upwards.
	var chain []*Group
	for i := len(levels) - 1; i >= 0; i-- {
		g, ok := levels[i].groups[group]
		if !ok {
			continue
		}
		if i < len(levels)-1 && !g.IsInheritable() {
			break
		}
		chain = append(chain, g)
		if !g.Inherits() {
			break
		}
	}
	in := false
	for i := len(chain) - 1; i >= 0; i-- {
		for _, n := range chain[i].Add {
			if strings.EqualFold(n, user) {
				in = true
			}
		}
		for _, n := range chain[i].Remove {
			if strings.EqualFold(n, user) {
				in = false
			}
		}
	}
	return in
}

func (ev evaluator) perms(channel, user string) acl.Permission {
	levels := ev.path(channel)
	granted := acl.DefaultGrant
	for i, l := range levels {
		if !l.inherit {
			granted = acl.DefaultGrant
		}
		here := i == len(levels)-1
		for _, e := range l.acl {
			match := e.User != "" && strings.EqualFold(e.User, user) ||
				e.Group != "" && ev.member(levels[:i+1], strings.TrimPrefix(e.Group, "~"), user)
			if !match || !(here && e.Here() || !here && e.Subs()) {
				continue
			}
			al, d := e.Permissions()
			if i == 0 && here {
				granted |= al & RootOnly
			}
			granted |= al &^ RootOnly
			granted &^= d
		}
	}
	return granted
}

func TestPlenaryExample(t *testing.T) {
	c, err := Load(filepath.Join("examples", "plenary.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Server.DefaultChannel != "Lobby" || c.Lookup("Plenary") == nil {
		t.Fatalf("unexpected channels")
	}
	for i := 1; i <= 20; i++ {
		if c.Lookup("Breakout rooms/Room "+itoa(i)) == nil {
			t.Errorf("Room %d missing", i)
		}
	}
	if n := len(c.Lookup("Breakout rooms").Children); n != 20 {
		t.Errorf("%d breakout rooms, want 20", n)
	}
	ev := evaluator{c}
	tests := []struct {
		channel, user string
		has, hasNot   acl.Permission
	}{
		{"Plenary", "", acl.Enter | acl.Listen | acl.TextMessage, acl.Speak | acl.Whisper | acl.MuteDeafen},
		{"Plenary", "delegate-zoe", acl.Enter, acl.Speak | acl.Whisper},
		{"Plenary", "delegate-farid", acl.Enter | acl.Speak, acl.MuteDeafen},
		{"Plenary", "Chair-Anna", acl.Speak | acl.MuteDeafen | acl.Whisper, acl.Write | acl.Kick},
		{"Plenary", "mod-ben", acl.MuteDeafen | acl.Move, acl.Speak},
		{"", "mod-ben", acl.Kick | acl.MuteDeafen | acl.Move, acl.Ban | acl.Write},
		{"", "chair-anna", acl.Speak, acl.Kick | acl.MuteDeafen},
		{"", "", acl.Speak, acl.SelfRegister | acl.MakeTempChannel | acl.Kick},
		{"", "admin-lena", acl.Write, acl.None},
		{"Lobby", "", acl.Speak | acl.Enter, acl.MuteDeafen},
		{"Breakout rooms/Room 7", "", acl.Speak | acl.Whisper | acl.Enter, acl.MakeTempChannel},
		{"Breakout rooms/Room 20", "mod-carla", acl.Speak | acl.MuteDeafen | acl.Move, acl.Kick},
	}
	for _, tt := range tests {
		got := ev.perms(tt.channel, tt.user)
		if got&tt.has != tt.has || got&tt.hasNot != 0 {
			t.Errorf("%q in %q: %v; want %v and not %v", tt.user, tt.channel, got, tt.has, tt.hasNot)
		}
	}
}

func TestGroupACLErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []wantErr
	}{
		{"unknown permission", "[[acl]]\ngroup = \"all\"\nallow = [\"Speak\", \"Shout\"]\n",
			[]wantErr{{3, "acl[0].allow", `unknown permission "Shout"`}}},
		{"unknown deny in channel", "[[channel]]\nname = \"A\"\n[[channel.acl]]\ngroup = \"all\"\n\ndeny = [\"talk\"]\n",
			[]wantErr{{6, "channel[0].acl[0].deny", `unknown permission "talk"`}}},
		{"neither user nor group", "[[acl]]\nallow = [\"Speak\"]\n", []wantErr{{1, "acl[0].group", "needs a user or a group"}}},
		{"both user and group", "[[acl]]\nallow = [\"Speak\"]\n[[acl]]\ngroup = \"all\"\nuser = \"bob\"\n",
			[]wantErr{{1, "acl[0].group", "needs a user"}, {5, "acl[1].user", "not both"}}},
		{"empty group name", "[groups.\"\"]\nadd = [\"a\"]\n", []wantErr{{1, "groups.", "must not be empty"}}},
		{"member problems", "[groups.g]\nadd = [\"a\", \"\", \"A\"]\nremove = [\"b\", \" c\",\n \"a\"]\n", []wantErr{
			{2, "groups.g.add", "must not be empty"},
			{2, "groups.g.add", `"A" is listed twice`},
			{3, "groups.g.remove", "spaces"},
		}},
		{"temporary with children", "[[channel]]\nname = \"T\"\ntemporary = true\n[[channel.channel]]\nname = \"C\"\n",
			[]wantErr{{3, "channel[0].temporary", "cannot have subchannels"}}},
		{"temporary default channel", "[server]\ndefault_channel = \"T\"\n[[channel]]\nname = \"T\"\ntemporary = true\n",
			[]wantErr{{2, "server.default_channel", "temporary"}}},
		// Schema checks reach into groups and ACL entries.
		{"unknown key in group", "[[channel]]\nname = \"A\"\n[channel.groups.s]\nadd = []\nmembers = [\"x\"]\n",
			[]wantErr{{5, "channel[0].groups.s.members", "unknown key"}}},
		{"unknown key in acl", "[[acl]]\ngroup = \"all\"\ngrant = [\"Speak\"]\n", []wantErr{{3, "acl[0].grant", "unknown key"}}},
		{"wrong types", "[groups.g]\ninherit = \"yes\"\nadd = \"bob\"\n[[acl]]\ngroup = \"all\"\nallow = [1]\napply_subs = 0\n", []wantErr{
			{2, "groups.g.inherit", "want true or false"},
			{3, "groups.g.add", "want an array"},
			{6, "acl[0].allow[0]", "want a string"},
			{7, "acl[0].apply_subs", "want true or false"},
		}},
		{"group not a table", "groups = 3\n", []wantErr{{1, "groups", "want a table"}}},
		{"group value not a table", "[groups]\nadmin = 3\n", []wantErr{{2, "groups.admin", "want a table"}}},
		{"acl not an array of tables", "[acl]\ngroup = \"all\"\n", []wantErr{{1, "acl", "want an array of tables"}}},
		{"inherit_acl wrong type", "[[channel]]\nname = \"A\"\ninherit_acl = 1\n", []wantErr{{3, "channel[0].inherit_acl", "want true or false"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml), "g.toml")
			if c != nil {
				t.Errorf("Parse returned a config despite errors")
			}
			checkErrs(t, err, "g.toml", tt.want)
		})
	}
}

// TestGroupACLNotes: what Murmur stores from an ACL editor and evaluates
// in its own way is accepted (an edit from a client must be storable), and
// Notes says how Murmur reads it.
func TestGroupACLNotes(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []wantErr
	}{
		{"group spec without name", "[[acl]]\ngroup = \"!~\"\n", []wantErr{{2, "acl[0].group", "no name after"}}},
		{"empty token", "[[acl]]\ngroup = \"!#\"\n", []wantErr{{2, "acl[0].group", "the access token after \"#\" is empty"}}},
		{"upper-case cert hash", "[[acl]]\ngroup = \"$0123456789ABCDEF0123456789ABCDEF01234567\"\n",
			[]wantErr{{2, "acl[0].group", "40 lowercase hex digits (the SHA-1 a client's certificate shows); Murmur accepts it and compares it as written: it matches nobody (everybody with '!' in front)"}}},
		{"short cert hash", "[[acl]]\ngroup = \"!$abc\"\n", []wantErr{{2, "acl[0].group", "40 lowercase hex"}}},
		{"prefix after #", "[[acl]]\ngroup = \"#!x\"\n", []wantErr{{2, "acl[0].group", "prefixes go before \"#\""}}},
		{"sub with a word", "[[acl]]\ngroup = \"sub,1,x\"\n", []wantErr{{2, "acl[0].group", `"x" is not an integer (sub,a,b,c takes numbers); Murmur accepts it and reads it as 0`}}},
		{"sub with four arguments", "[[acl]]\ngroup = \"~sub,1,2,3,4\"\n", []wantErr{{2, "acl[0].group", "at most three numbers (sub,a,b,c); Murmur accepts it and ignores the rest"}}},
		{"kick on a channel", "[[channel]]\nname = \"A\"\n[[channel.acl]]\ngroup = \"mods\"\nallow = [\"Move\", \"Kick\"]\n",
			[]wantErr{{5, "channel[0].acl[0].allow", "Kick only takes effect in the root channel"}}},
		{"ban on root without apply_here", "[[acl]]\ngroup = \"mods\"\napply_here = false\ndeny = [\"Ban\"]\n",
			[]wantErr{{4, "acl[0].deny", "apply_here = true"}}},
		{"builtin group name", "[[channel]]\nname = \"A\"\n[channel.groups.auth]\n", []wantErr{{3, "channel[0].groups.auth", "built-in"}}},
		{"sub group name", "[groups.\"sub,1\"]\n", []wantErr{{1, "groups.sub,1", "built-in"}}},
		{"prefix in group name", "[groups.\"~x\"]\n", []wantErr{{1, "groups.~x", "no entry can name this group"}}},
		{"added and removed", "[groups.g]\nadd = [\"a\"]\nremove = [\"b\", \"A\"]\n", []wantErr{{3, "groups.g.remove", `"A" is both added and removed; Murmur removes after adding`}}},
		{"none", "[[acl]]\ngroup = \"sub, -1 ,2\"\n[[acl]]\ngroup = \"$0123456789abcdef0123456789abcdef01234567\"\n[groups.\" odd \"]\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml), "g.toml")
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			// Written back and read again, nothing changes.
			data, err := Encode(c)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			again, err := Parse(data, "again.toml")
			if err != nil {
				t.Fatalf("written back, refused: %v\n%s", err, data)
			}
			if d := Diff(c, again); !d.Empty() {
				t.Errorf("written back and read again: %+v\n%s", d, data)
			}
			notes := c.Notes()
			if len(again.Notes()) != len(notes) {
				t.Errorf("notes after writing back: %v, before %v", again.Notes(), notes)
			}
			if tt.want == nil {
				if len(notes) != 0 {
					t.Errorf("notes %v, want none", notes)
				}
				return
			}
			checkErrs(t, joinErrors(notes), "g.toml", tt.want)
		})
	}
}

func TestGroupACLAccepted(t *testing.T) {
	for _, src := range []string{
		// Duplicate permission names are harmless; so is an entry that
		// allows and denies nothing, or applies nowhere.
		"[[acl]]\ngroup = \"all\"\nallow = [\"Speak\", \"speak\"]\n[[acl]]\nuser = \"x\"\napply_here = false\napply_subs = false\n",
		// Root-only permissions on root with apply_here.
		"[[acl]]\ngroup = \"mods\"\nallow = [\"Kick\", \"Ban\", \"Register\", \"ResetUserContent\"]\n",
		// A group used in an ACL need not be defined in the file (Murmur
		// allows it; clients may create it later).
		"[[channel]]\nname = \"A\"\n[[channel.acl]]\ngroup = \"!~later\"\ndeny = [\"Enter\"]\n",
		"[groups.\"odd name\"]\n[[acl]]\ngroup = \"odd name\"\n",
		"[[acl]]\ngroup = \"sub,-1,2,\"\n[[acl]]\ngroup = \"$0123456789abcdef0123456789abcdef01234567\"\n",
		"[[channel]]\nname = \"T\"\ntemporary = true\n",
		"[[channel]]\nname = \"A\"\ngroups = {s = {add = [\"x\"]}}\nacl = [{group = \"s\", allow = [\"Speak\"]}]\n",
	} {
		if _, err := Parse([]byte(src), "ok.toml"); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func TestCheckGroupSpec(t *testing.T) {
	for _, ok := range []string{"all", "in", "!in", "~sub,1", "sub", "sub,,2,3", "#t", "!#tok", "~!admin", "speakers", "$0123456789abcdef0123456789abcdef01234567"} {
		if err := CheckGroupSpec(ok); err != nil {
			t.Errorf("CheckGroupSpec(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "!", "~!~", "#", "$", "$abc", "#!x", "sub,a", "sub,1,2,3,4", "$0123456789ABCDEF0123456789ABCDEF01234567"} {
		if err := CheckGroupSpec(bad); err == nil {
			t.Errorf("CheckGroupSpec(%q) accepted", bad)
		}
		if note := GroupSpecNote(bad); note == "" {
			t.Errorf("GroupSpecNote(%q) = %q", bad, note)
		}
	}
}

func TestChannelACLResolvesNames(t *testing.T) {
	ids := map[string]int64{"anna": 3, "ben": 4}
	var asked []string
	resolve := func(n string) (int64, bool) {
		asked = append(asked, n)
		id, ok := ids[n]
		return id, ok
	}
	if got := ChannelACL(true, nil, nil, resolve); got != nil {
		t.Fatalf("a plain inheriting channel got an ACL: %+v", got)
	}
	groups := map[string]*Group{
		"speakers": {Add: []string{"anna", "ghost"}, Remove: []string{"ben"}, Inheritable: Bool(false)},
		"chair":    {Add: []string{"ben"}},
	}
	entries := []ACLEntry{
		{Group: "all", ApplySubs: Bool(false), Deny: []string{"Speak"}},
		{User: "anna", Allow: []string{"Speak", "MuteDeafen"}},
		{User: "ghost", Allow: []string{"Write"}},
	}
	a := ChannelACL(false, groups, entries, resolve)
	if a.InheritACL {
		t.Error("inherit_acl = false lost")
	}
	sp := a.Groups["speakers"]
	if len(sp.Add) != 1 || sp.Add[0] != 3 || len(sp.Remove) != 1 || sp.Remove[0] != 4 || sp.Inheritable || !sp.Inherit {
		t.Errorf("speakers = %+v", sp)
	}
	if len(a.Entries) != 2 { // ghost's entry is dropped
		t.Fatalf("entries = %+v", a.Entries)
	}
	if e := a.Entries[0]; e.UserID != -1 || e.Group != "all" || !e.ApplyHere || e.ApplySubs || e.Deny != acl.Speak {
		t.Errorf("group entry = %+v", e)
	}
	if e := a.Entries[1]; e.UserID != 3 || e.Group != "" || e.Allow != acl.Speak|acl.MuteDeafen {
		t.Errorf("user entry = %+v", e)
	}
	// Groups are resolved in name order, then entries: callers report
	// unknown names in a stable order.
	want := []string{"ben", "anna", "ghost", "ben", "anna", "ghost"}
	if strings.Join(asked, ",") != strings.Join(want, ",") {
		t.Errorf("asked %v, want %v", asked, want)
	}
}
