package acl

import (
	"strings"
	"testing"
)

// tree is root(0) → a(1) → b(2) → c(3), and root → d(4).
type tree map[uint32]uint32

func (t tree) Parent(ch uint32) (uint32, bool) {
	p, ok := t[ch]
	return p, ok
}

var testTree = tree{1: 0, 2: 1, 3: 2, 4: 0}

func TestPermissionHasAndString(t *testing.T) {
	if !(Kick | Ban).Has(Ban) || (Enter | Speak).Has(Kick|Ban) {
		t.Fatal("Has must be true iff any bit is shared")
	}
	if got := (Enter | Speak).String(); got != "Enter|Speak" {
		t.Fatalf("String = %q", got)
	}
	if DefaultGrant != 0xB0E {
		t.Fatalf("DefaultGrant = %#x, want Murmur's 0xb0e", uint32(DefaultGrant))
	}
	if All != 0x1F0FFF {
		t.Fatalf("All = %#x", uint32(All))
	}
}

func TestOpenPolicyGrantsDefaultsOnly(t *testing.T) {
	s := &Subject{UserID: -1, Channel: 2}
	p := Open{}.Permissions(testTree, s, 3)
	for _, want := range []Permission{Traverse, Enter, Speak, Whisper, TextMessage, Listen} {
		if !p.Has(want) {
			t.Errorf("open policy lacks %v", want)
		}
	}
	for _, never := range []Permission{Write, MuteDeafen, Move, MakeChannel, Kick, Ban, Register} {
		if p.Has(never) {
			t.Errorf("open policy grants %v", never)
		}
	}
}

func TestBuiltinGroups(t *testing.T) {
	anon := &Subject{UserID: -1, Channel: 2, CertHash: "abc", Tokens: []string{"Secret"}}
	reg := &Subject{UserID: 5, Channel: 4}
	cases := []struct {
		s     *Subject
		ch    uint32
		group string
		want  bool
	}{
		{anon, 2, "all", true},
		{anon, 2, "none", false},
		{anon, 2, "!none", true},
		{anon, 2, "auth", false},
		{reg, 2, "auth", true},
		{anon, 2, "in", true},
		{anon, 1, "in", false},
		{anon, 1, "out", true},
		{anon, 2, "~in", true},
		{anon, 2, "#secret", true}, // tokens match case-insensitively
		{anon, 2, "#other", false},
		{anon, 2, "#", false},
		{anon, 2, "$abc", true},
		{anon, 2, "$ABC", false}, // cert hashes match exactly
		{anon, 2, "!$abc", false},
		{anon, 1, "sub", true},      // user in 2, a strict descendant of 1
		{anon, 2, "sub", false},     // not a strict descendant of its own channel
		{anon, 0, "sub,0,2", true},  // depth 2 below root
		{anon, 0, "sub,0,3", false}, // needs depth >= 3
		{anon, 4, "sub", false},     // other branch
		{anon, 1, "sub,5", false},   // anchor past the end: no match
		{anon, 1, "!sub,5", true},   // ...which negation turns into a match
		{anon, 2, "admins", false},  // channel groups need the ACL engine
		{anon, 2, "", false},
	}
	for _, c := range cases {
		if got := (Open{}).InGroup(testTree, c.s, c.ch, c.group); got != c.want {
			t.Errorf("InGroup(user in %d, channel %d, %q) = %v, want %v", c.s.Channel, c.ch, c.group, got, c.want)
		}
	}
}

func TestParsePermission(t *testing.T) {
	for _, n := range names {
		got, err := ParsePermission(strings.ToLower(n.name))
		if err != nil || got != n.p {
			t.Errorf("ParsePermission(%q) = %v, %v", n.name, got, err)
		}
	}
	if _, err := ParsePermission("Fly"); err == nil {
		t.Error("unknown permission accepted")
	}
}
