package conf

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/plenum-voice/plenum/acl"
)

// Group is a channel group as Murmur keeps it: [groups.NAME] for the root
// channel, [channel.groups.NAME] for a channel. Members are registered user
// names; the server resolves them against its user database (names compare
// case-insensitively, as Murmur's logins do).
//
// Membership is resolved from the channel an ACL entry is evaluated in
// upwards: a group of the same name on a parent channel counts only if it is
// inheritable, the walk stops at the first group that does not inherit, and
// then, from the top down, Add puts users in and Remove takes them out.
type Group struct {
	Inherit     *bool    `toml:"inherit"`     // take members from the parent's group of the same name; absent = true (use Inherits)
	Inheritable *bool    `toml:"inheritable"` // subchannels may inherit this group; absent = true (use IsInheritable)
	Add         []string `toml:"add"`         // registered user names added here
	Remove      []string `toml:"remove"`      // registered user names removed from the inherited members
	Line        int      `toml:"-"`           // line of the group's table (0 if unknown)

	keyLines map[string]int
}

// ACLEntry is one ACL entry of a channel: [[acl]] for the root channel,
// [[channel.acl]] for a channel. Entries are evaluated in file order, from
// the root down to the channel; a later matching entry overrides an earlier
// one, and within one entry deny wins over allow.
type ACLEntry struct {
	User      string   `toml:"user"`       // a registered user name, or
	Group     string   `toml:"group"`      // a group spec: "all", "auth", "speakers", "~in", "!admin", "#token", "$certhash"...; exactly one of User and Group
	ApplyHere *bool    `toml:"apply_here"` // applies in this channel; absent = true (use Here)
	ApplySubs *bool    `toml:"apply_subs"` // applies in subchannels; absent = true (use Subs)
	Allow     []string `toml:"allow"`      // permission names as acl.ParsePermission takes them ("Speak", "MuteDeafen"...)
	Deny      []string `toml:"deny"`
	Line      int      `toml:"-"` // line of the entry's [[acl]] header (0 if unknown)

	keyLines map[string]int
}

// RootOnly are the permissions Murmur only evaluates in the root channel, and
// only from root ACL entries with apply_here: Kick, Ban, Register,
// SelfRegister and ResetUserContent.
const RootOnly = acl.Kick | acl.Ban | acl.Register | acl.SelfRegister | acl.ResetUserContent

// InheritsACL reports whether the parent's ACL entries apply in c (default true).
func (c *Channel) InheritsACL() bool { return c == nil || c.InheritACL == nil || *c.InheritACL }

// Inherits reports whether g takes members from the parent's group of the
// same name (default true). A nil group inherits.
func (g *Group) Inherits() bool { return g == nil || g.Inherit == nil || *g.Inherit }

// IsInheritable reports whether subchannels may inherit g (default true).
func (g *Group) IsInheritable() bool { return g == nil || g.Inheritable == nil || *g.Inheritable }

// Here reports whether e applies in its own channel (default true).
func (e *ACLEntry) Here() bool { return e.ApplyHere == nil || *e.ApplyHere }

// Subs reports whether e applies in subchannels (default true).
func (e *ACLEntry) Subs() bool { return e.ApplySubs == nil || *e.ApplySubs }

// Permissions returns the allowed and denied permission bits of e. Unknown
// names are left out (Validate reports them).
func (e *ACLEntry) Permissions() (allow, deny acl.Permission) {
	return parsePermissions(e.Allow), parsePermissions(e.Deny)
}

func parsePermissions(names []string) acl.Permission {
	var p acl.Permission
	for _, n := range names {
		if q, err := acl.ParsePermission(n); err == nil {
			p |= q
		}
	}
	return p
}

// Bool returns a pointer to b, for the optional flags (InheritACL,
// Group.Inherit, ACLEntry.ApplyHere...) in configurations built in code.
func Bool(b bool) *bool { return &b }

// attachACLLines copies the lines of groups and ACL entries of the channel
// whose table is at concrete path prefix ("" for the root).
func attachACLLines(groups map[string]*Group, entries []ACLEntry, prefix string, pos positions) {
	join := func(parts ...string) string {
		if prefix == "" {
			return pathKey(parts...)
		}
		return prefix + sep + pathKey(parts...)
	}
	for name, g := range groups {
		if g == nil {
			continue
		}
		p := join("groups", name)
		g.Line = pos.near(p)
		g.keyLines = pos.keysUnder(p)
	}
	for i := range entries {
		p := join("acl", strconv.Itoa(i))
		entries[i].Line = pos.near(p)
		entries[i].keyLines = pos.keysUnder(p)
	}
}

// builtinGroups are Murmur's group names that are never channel groups.
var builtinGroups = map[string]bool{"all": true, "none": true, "auth": true, "strong": true, "in": true, "out": true, "sub": true}

// CheckGroupSpec checks the syntax of a group spec as used in ACL entries and
// whisper targets: any number of '!' (invert) and '~' (evaluate in the ACL's
// channel) prefixes, then "#token", "$certhash" (40 lowercase hex digits, the
// SHA-1 Murmur compares against), "sub[,a[,b[,c]]]" with integers, a
// built-in name or a channel group name.
func CheckGroupSpec(spec string) error {
	if spec == "" {
		return fmt.Errorf("group must not be empty")
	}
	rest := strings.TrimLeft(spec, "!~")
	if rest == "" {
		return fmt.Errorf("group %q has no name after its '!'/'~' prefixes", spec)
	}
	switch rest[0] {
	case '#', '$':
		what := "access token"
		if rest[0] == '$' {
			what = "certificate hash"
		}
		v := rest[1:]
		switch {
		case v == "":
			return fmt.Errorf("group %q: the %s after %q must not be empty", spec, what, rest[:1])
		case strings.ContainsAny(v[:1], "!~#$"):
			return fmt.Errorf("group %q: prefixes go before %q, not after it", spec, rest[:1])
		case rest[0] == '$' && !isCertHash(v):
			return fmt.Errorf("group %q: a certificate hash is 40 lowercase hex digits (the SHA-1 a client's certificate shows)", spec)
		}
		return nil
	}
	if rest == "sub" || strings.HasPrefix(rest, "sub,") {
		args := strings.Split(rest, ",")[1:]
		if len(args) > 3 {
			return fmt.Errorf("group %q: sub takes at most three numbers (sub,a,b,c)", spec)
		}
		for _, a := range args {
			if a == "" {
				continue
			}
			if _, err := strconv.Atoi(a); err != nil {
				return fmt.Errorf("group %q: %q is not an integer (sub,a,b,c takes numbers)", spec, a)
			}
		}
	}
	return nil
}

func isCertHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// checkGroupName checks the name of a group definition.
func checkGroupName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("group name must not be empty")
	case strings.ContainsAny(name[:1], "!~#$"):
		return fmt.Errorf("group name %q must not start with '!', '~', '#' or '$' (those are prefixes of group specs in ACL entries)", name)
	case builtinGroups[name] || strings.HasPrefix(name, "sub,"):
		return fmt.Errorf("%q is a built-in group and cannot be defined (Murmur would never use the definition)", name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("group name %q must not start or end with spaces", name)
	}
	return nil
}

// groupsAndACL validates the groups and ACL entries of one channel. display
// is the channel's key prefix ("" for the root, "channel[1]" otherwise).
func (v *validator) groupsAndACL(groups map[string]*Group, entries []ACLEntry, display string, root bool) {
	prefix := ""
	if display != "" {
		prefix = display + "."
	}
	for _, name := range sortedKeys(groups) {
		g := groups[name]
		if g == nil {
			g = &Group{}
		}
		gd := prefix + "groups." + name
		errAt := func(key, format string, args ...any) {
			line, ok := g.keyLines[key]
			if !ok {
				line = g.Line
			}
			k := gd
			if key != "" {
				k += "." + key
			}
			v.errs = append(v.errs, &Error{File: v.c.File, Line: line, Key: k, Msg: fmt.Sprintf(format, args...)})
		}
		if err := checkGroupName(name); err != nil {
			errAt("", "%v", err)
		}
		added := map[string]string{} // lower-case name -> as written
		for _, list := range []struct {
			key   string
			names []string
		}{{"add", g.Add}, {"remove", g.Remove}} {
			seen := map[string]bool{}
			for _, u := range list.names {
				lu := strings.ToLower(u)
				switch {
				case strings.TrimSpace(u) == "":
					errAt(list.key, "user name must not be empty")
				case strings.TrimSpace(u) != u:
					errAt(list.key, "user name %q must not start or end with spaces", u)
				case seen[lu]:
					errAt(list.key, "user %q is listed twice (names compare case-insensitively)", u)
				case list.key == "remove" && added[lu] != "":
					errAt(list.key, "user %q is both added and removed; Murmur removes after adding, so leave the name out of add", u)
				}
				seen[lu] = true
				if list.key == "add" {
					added[lu] = u
				}
			}
		}
	}
	for i := range entries {
		e := &entries[i]
		ed := prefix + "acl[" + strconv.Itoa(i) + "]"
		errAt := func(key, format string, args ...any) {
			line, ok := e.keyLines[key]
			if !ok {
				line = e.Line
			}
			v.errs = append(v.errs, &Error{File: v.c.File, Line: line, Key: ed + "." + key, Msg: fmt.Sprintf(format, args...)})
		}
		switch {
		case e.User == "" && e.Group == "":
			errAt("group", "an ACL entry needs a user or a group (exactly one)")
		case e.User != "" && e.Group != "":
			errAt("user", "an ACL entry applies to a user or to a group, not both; split it into two entries")
		case e.User != "":
			if strings.TrimSpace(e.User) != e.User {
				errAt("user", "user name %q must not start or end with spaces", e.User)
			}
		default:
			if err := CheckGroupSpec(e.Group); err != nil {
				errAt("group", "%v", err)
			}
		}
		for _, list := range []struct {
			key   string
			names []string
		}{{"allow", e.Allow}, {"deny", e.Deny}} {
			var p acl.Permission
			for _, n := range list.names {
				q, err := acl.ParsePermission(n)
				if err != nil {
					errAt(list.key, "%v (known: %s)", err, strings.Join(acl.All.Names(), ", "))
					continue
				}
				p |= q
			}
			if ro := p & RootOnly; ro != 0 {
				switch {
				case !root:
					errAt(list.key, "%s only takes effect in the root channel: Murmur checks it there, from top-level [[acl]] entries with apply_here = true; move it there", ro)
				case !e.Here():
					errAt(list.key, "%s only takes effect with apply_here = true (Murmur checks it in the root channel itself)", ro)
				}
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ChannelACL converts the groups and entries of one channel of the file
// into the form the ACL engine evaluates, so that the server and the
// admin tools read a file the same way. userID resolves a registered user
// name; a name it cannot resolve is left out, as Murmur skips unknown user
// ids. It is asked in a fixed order (groups by name, then entries). A
// channel that inherits and has no groups or entries has no ACL (nil).
func ChannelACL(inherit bool, groups map[string]*Group, entries []ACLEntry, userID func(name string) (int64, bool)) *acl.ChannelACL {
	if len(groups) == 0 && len(entries) == 0 && inherit {
		return nil
	}
	ids := func(names []string) []int64 {
		var out []int64
		for _, n := range names {
			if id, ok := userID(n); ok {
				out = append(out, id)
			}
		}
		return out
	}
	out := &acl.ChannelACL{InheritACL: inherit, Groups: make(map[string]*acl.Group, len(groups))}
	for _, name := range sortedKeys(groups) {
		g := groups[name]
		out.Groups[name] = &acl.Group{Name: name, Inherit: g.Inherits(), Inheritable: g.IsInheritable(), Add: ids(g.Add), Remove: ids(g.Remove)}
	}
	for _, e := range entries {
		allow, deny := e.Permissions()
		entry := acl.Entry{ApplyHere: e.Here(), ApplySubs: e.Subs(), UserID: -1, Group: e.Group, Allow: allow, Deny: deny}
		if e.User != "" {
			id, ok := userID(e.User)
			if !ok {
				continue
			}
			entry.UserID, entry.Group = id, ""
		}
		out.Entries = append(out.Entries, entry)
	}
	return out
}
