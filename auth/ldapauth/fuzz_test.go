package ldapauth

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/plenum-voice/plenum/auth"
)

// FuzzDirectoryAnswer: whatever entry a directory returns (its DN, a
// display name, memberOf values), reading it neither panics nor yields
// an empty id or a group Plenum could not use.
func FuzzDirectoryAnswer(f *testing.F) {
	f.Add("uid=ada,ou=people,dc=example,dc=org", "Ada", "cn=delegates,ou=groups,dc=example,dc=org\ncn=board,ou=groups,dc=example,dc=org", "")
	f.Add(`cn=a\,b+uid=x,dc=x`, "", "not a dn\n=\ncn=", "0b3ed7d6-1c4c-103f-8ac3-e1fbe4b6c0b0")
	d, err := New(Config{URL: "ldap://127.0.0.1", BindDNTemplate: "uid={name},dc=x", DisplayNameAttribute: "displayName",
		Groups: map[string]string{"cn=delegates,ou=groups,dc=example,dc=org": "delegates", "board": "presidium", "x": "!evil"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, dn, display, memberOf, uuid string) {
		attrs := map[string][]string{"displayName": {display}, "memberOf": strings.Split(memberOf, "\n")}
		if uuid != "" {
			attrs["entryUUID"] = []string{uuid}
		}
		p := d.personOf(ldap.NewEntry(dn, attrs))
		if p.id == "" {
			t.Errorf("no id for %q", dn)
		}
		groups, _ := d.mapGroups(memberOfGroups(p.memberOf))
		for _, g := range groups {
			if !auth.ValidGroupName(g) {
				t.Errorf("group %q", g)
			}
		}
	})
}
