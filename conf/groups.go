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
// case-insensitively, as Murmur's logins do). A name nobody has registered
// matches nobody until someone registers under it, and stays in the file.
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

// CheckGroupSpec checks the syntax of a group spec strictly, as the
// Plenum-only settings that take one (floor_groups) require it: any number
// of '!' (invert) and '~' (evaluate in the ACL's channel) prefixes, then
// "#token", "$certhash" (40 lowercase hex digits, the SHA-1 Murmur compares
// against), "sub[,a[,b[,c]]]" with integers, a built-in name or a channel
// group name. ACL entries accept any spec that is not empty, as Murmur
// does; GroupSpecNote says how Murmur reads one this check refuses.
func CheckGroupSpec(spec string) error {
	if spec == "" {
		return fmt.Errorf("group must not be empty")
	}
	if problem, _ := groupSpecProblem(spec); problem != "" {
		return fmt.Errorf("group %q: %s", spec, problem)
	}
	return nil
}

// GroupSpecNote explains how Murmur reads a non-empty group spec that
// CheckGroupSpec refuses, or returns "" for one it accepts. Murmur stores
// such specs as the ACL editor sent them and evaluates them as described;
// so does Plenum.
func GroupSpecNote(spec string) string {
	problem, reading := groupSpecProblem(spec)
	if problem == "" {
		return ""
	}
	return fmt.Sprintf("group %q: %s; Murmur accepts it and %s", spec, problem, reading)
}

// groupSpecProblem returns what is odd about spec and how Murmur reads it
// (as acl.InGroup evaluates it), or "" for a well-formed spec.
func groupSpecProblem(spec string) (problem, reading string) {
	const nobody = "matches nobody with it, negated or not"
	rest := strings.TrimLeft(spec, "!~")
	if rest == "" {
		return "no name after its '!'/'~' prefixes", nobody
	}
	switch rest[0] {
	case '#', '$':
		what := "access token"
		if rest[0] == '$' {
			what = "certificate hash"
		}
		v := rest[1:]
		switch {
		case strings.TrimLeft(v, "!~#$") == "":
			return fmt.Sprintf("the %s after %q is empty", what, rest[:1]), nobody
		case strings.ContainsAny(v[:1], "!~#$"):
			return fmt.Sprintf("prefixes go before %q, not after it", rest[:1]),
				"reads every '!', '~', '#' and '$' in front of the name as a prefix, in any order ('#' wins over '$')"
		case rest[0] == '$' && !isCertHash(v):
			return "a certificate hash is 40 lowercase hex digits (the SHA-1 a client's certificate shows)",
				"compares it as written: it matches nobody (everybody with '!' in front)"
		}
		return "", ""
	}
	if rest == "sub" || strings.HasPrefix(rest, "sub,") {
		args := strings.Split(rest, ",")[1:]
		for _, a := range args[:min(len(args), 3)] {
			if a == "" {
				continue
			}
			if _, err := strconv.ParseInt(strings.TrimSpace(a), 10, 32); err != nil {
				return fmt.Sprintf("%q is not an integer (sub,a,b,c takes numbers)", a), "reads it as 0"
			}
		}
		if len(args) > 3 {
			return "sub takes at most three numbers (sub,a,b,c)", "ignores the rest"
		}
	}
	return "", ""
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

// groupNameNote explains why a group called name can never be used, or
// returns "". Murmur stores such groups as the ACL editor sent them.
func groupNameNote(name string) string {
	switch {
	case strings.ContainsAny(name[:1], "!~#$"):
		return fmt.Sprintf("group name %q starts with '!', '~', '#' or '$', which ACL entries read as prefixes: no entry can name this group", name)
	case builtinGroups[name] || strings.HasPrefix(name, "sub,"):
		return fmt.Sprintf("%q is a built-in group: entries naming it mean the built-in one, never this definition", name)
	}
	return ""
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
		// at is a problem with key ("" for the group itself), at its line.
		at := func(key, format string, args ...any) *Error {
			line, ok := g.keyLines[key]
			if !ok {
				line = g.Line
			}
			k := gd
			if key != "" {
				k += "." + key
			}
			return &Error{File: v.c.File, Line: line, Key: k, Msg: fmt.Sprintf(format, args...)}
		}
		errAt := func(key, format string, args ...any) { v.errs = append(v.errs, at(key, format, args...)) }
		noteAt := func(key, format string, args ...any) { v.notes = append(v.notes, at(key, format, args...)) }
		if name == "" {
			errAt("", "group name must not be empty")
		} else if note := groupNameNote(name); note != "" {
			noteAt("", "%s", note)
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
					noteAt(list.key, "user %q is both added and removed; Murmur removes after adding, so the user is not a member here", u)
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
		noteAt := func(key, format string, args ...any) {
			line, ok := e.keyLines[key]
			if !ok {
				line = e.Line
			}
			v.notes = append(v.notes, &Error{File: v.c.File, Line: line, Key: ed + "." + key, Msg: fmt.Sprintf(format, args...)})
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
			if note := GroupSpecNote(e.Group); note != "" {
				noteAt("group", "%s", note)
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
					noteAt(list.key, "%s only takes effect in the root channel: Murmur checks it there, from top-level [[acl]] entries with apply_here = true; here it has no effect", ro)
				case !e.Here():
					noteAt(list.key, "%s only takes effect with apply_here = true (Murmur checks it in the root channel itself); here it has no effect", ro)
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
// ids (the server and acl explain instead give a name nobody registered
// a placeholder id that matches nobody, so that it is kept). It is asked in a fixed order (groups by name, then entries). A
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
