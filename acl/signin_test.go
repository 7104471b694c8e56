package acl

import (
	"strings"
	"testing"
)

// TestSignInGroups follows Murmur's setTempGroups for the groups an Ice
// authenticator returns: temporary members of the root's group of that
// name, created inheritable when the root has none.
func TestSignInGroups(t *testing.T) {
	delegate := &Subject{Session: 7, UserID: 1 << 30, Channel: 2, SignInGroups: []string{"delegates"}, SignInBy: "ldap"}
	guest := &Subject{Session: 8, UserID: -1, Channel: 2}
	inheritable := &Group{Name: "delegates", Inherit: true, Inheritable: true}
	private := &Group{Name: "delegates", Inherit: true, Inheritable: false}
	cutOff := &Group{Name: "delegates", Inherit: false, Inheritable: true}
	removes := &Group{Name: "delegates", Inherit: true, Inheritable: true, Remove: []int64{1 << 30}}
	cases := []struct {
		name string
		acls map[uint32]*ChannelACL
		s    *Subject
		at   uint32
		want bool
	}{
		{"no group defined anywhere: as if the root had one", nil, delegate, 2, true},
		{"at the root itself", nil, delegate, 0, true},
		{"someone the sign-in did not give it", nil, guest, 2, false},
		{"another group name", nil, &Subject{Session: 9, UserID: 5, Channel: 2, SignInGroups: []string{"presidium"}}, 2, false},
		{"the root's inheritable group", map[uint32]*ChannelACL{0: {Groups: map[string]*Group{"delegates": inheritable}}}, delegate, 2, true},
		{"the root's group is not inheritable: not below it", map[uint32]*ChannelACL{0: {Groups: map[string]*Group{"delegates": private}}}, delegate, 2, false},
		{"the root's group is not inheritable: on the root it is", map[uint32]*ChannelACL{0: {Groups: map[string]*Group{"delegates": private}}}, delegate, 0, true},
		{"a channel's group that does not inherit hides the root's", map[uint32]*ChannelACL{1: {InheritACL: true, Groups: map[string]*Group{"delegates": cutOff}}}, delegate, 2, false},
		{"a channel's group that inherits passes it on", map[uint32]*ChannelACL{1: {InheritACL: true, Groups: map[string]*Group{"delegates": inheritable}}}, delegate, 2, true},
		{"remove further down takes it away", map[uint32]*ChannelACL{1: {InheritACL: true, Groups: map[string]*Group{"delegates": removes}}}, delegate, 2, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := InGroup(newTree(c.acls), c.s, c.at, c.at, "delegates"); got != c.want {
				t.Errorf("InGroup(delegates) = %v, want %v", got, c.want)
			}
		})
	}
}

// TestSignInGroupDecidesSpeak: only the mapped group may speak in the
// Plenary, and Explain names the sign-in that gave the group.
func TestSignInGroupDecidesSpeak(t *testing.T) {
	tr := newTree(map[uint32]*ChannelACL{1: ents(
		grp("all", true, true, 0, Speak),
		grp("delegates", true, true, Speak, 0),
	)})
	delegate := &Subject{Session: 7, UserID: 1 << 30, Channel: 1, SignInGroups: []string{"delegates"}, SignInBy: "ldap"}
	guest := &Subject{Session: 8, UserID: -1, Channel: 1}
	if !Permissions(tr, delegate, 1).Has(Speak) {
		t.Errorf("the delegate may not speak:\n%s", Explain(tr, delegate, 1, Speak))
	}
	if Permissions(tr, guest, 1).Has(Speak) {
		t.Errorf("the guest may speak:\n%s", Explain(tr, guest, 1, Speak))
	}
	why := Explain(tr, delegate, 1, Speak).String()
	if !strings.Contains(why, "through the sign-in (ldap)") {
		t.Errorf("Explain does not name the sign-in:\n%s", why)
	}
	delegate.SignInSources = map[string]string{"delegates": "cn=delegates,ou=groups,dc=example,dc=org"}
	why = Explain(tr, delegate, 1, Speak).String()
	if !strings.Contains(why, "through the sign-in (ldap group cn=delegates,ou=groups,dc=example,dc=org)") {
		t.Errorf("Explain does not name the directory group:\n%s", why)
	}
}
