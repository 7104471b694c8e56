package acl

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// BuiltinGroup evaluates a group spec against a tree without ACL data, so
// channel groups never match. It is InGroup with the checked channel as the
// ACL's channel, which is how Murmur evaluates whisper targets.
func BuiltinGroup(t Tree, s *Subject, channel uint32, spec string) bool {
	return InGroup(bareTree{t}, s, channel, channel, spec)
}

// bareTree is a Tree seen as an ACLTree without any ACL data.
type bareTree struct{ Tree }

func (bareTree) ACL(uint32) *ChannelACL { return nil }

// InGroup reports whether s belongs to the group spec, exactly as Murmur
// 1.5.735's Group::appliesToUser(current, aclChannel, spec, user):
//
//   - the prefixes "!" (negate), "~" (evaluate in aclChannel instead of
//     current), "#" (access token) and "$" (certificate hash) are stripped in
//     any order and any number; repeating "!" does not cancel it out;
//   - an empty rest never matches, not even negated;
//   - "#x" matches a token case-insensitively, "$x" the hash exactly;
//   - all, none, auth, strong, in, out and sub[,a[,b[,c]]] are built in;
//   - any other name is a channel group, looked up from the context channel
//     (current, or aclChannel with "~") upwards.
//
// current is the channel whose permissions are being computed and aclChannel
// the channel holding the entry (an ancestor of current, or current itself).
func InGroup(t ACLTree, s *Subject, current, aclChannel uint32, spec string) bool {
	return appliesToUser(t, s, current, aclChannel, spec, nil)
}

// appliesToUser is InGroup; when why is not nil it also describes the reason
// for the answer, for Explain. The fast path never builds strings.
func appliesToUser(t ACLTree, s *Subject, current, aclChannel uint32, spec string, why *string) bool {
	invert, token, cert := false, false, false
	ctx := current
	name := spec
prefixes:
	for name != "" {
		switch name[0] {
		case '!':
			invert = true // Murmur sets, never toggles: "!!x" is "!x"
		case '~':
			ctx = aclChannel
		case '#':
			token = true
		case '$':
			cert = true
		default:
			break prefixes
		}
		name = name[1:]
	}
	if name == "" {
		// Returned before negation is considered: "!" and "!#" match nobody.
		if why != nil {
			*why = strconv.Quote(spec) + " names nothing, which matches nobody"
		}
		return false
	}

	var matches bool
	switch {
	case token:
		// Murmur tests "#" before "$", so "#$x" is the token "x".
		for _, have := range s.Tokens {
			if strings.EqualFold(have, name) {
				matches = true
				break
			}
		}
		if why != nil {
			*why = yesNo(matches, "has", "does not have") + fmt.Sprintf(" the access token %q", name)
		}
	case cert:
		matches = s.CertHash == name
		if why != nil {
			*why = "certificate hash " + yesNo(matches, "is", "is not") + " " + name
		}
	case name == "none":
		matches = false
		setWhy(why, "nobody is in none")
	case name == "all":
		matches = true
		setWhy(why, "everyone is in all")
	case name == "auth":
		matches = s.UserID >= 0
		if why != nil {
			*why = yesNo(matches, "registered (user id "+strconv.FormatInt(s.UserID, 10)+")", "not registered")
		}
	case name == "strong":
		matches = s.Strong
		if why != nil {
			switch {
			case s.CertHash == "":
				*why = "no certificate, " + yesNo(matches, "which counts as strong", "yet not strong")
			default:
				*why = "certificate " + yesNo(matches, "verifies", "does not verify") + " against the trusted CAs"
			}
		}
	case name == "in" || name == "out":
		matches = s.Channel == ctx
		if why != nil {
			*why = yesNo(matches, "is in ", "is not in ") + channelName(t, ctx)
		}
		if name == "out" {
			matches = !matches
		}
	case name == "sub" || strings.HasPrefix(name, "sub,"):
		var early bool
		matches, early = matchSub(t, s, current, ctx, name, why)
		if early {
			// Murmur returns from the middle of the function here, with
			// negation applied like at the end.
			if why != nil && invert {
				*why = "negated: " + *why
			}
			return invert
		}
	default:
		matches = matchChannelGroup(t, s, ctx, name, why)
	}
	if why != nil {
		if ctx != current {
			*why += " (evaluated in " + channelName(t, ctx) + " because of ~)"
		}
		if invert {
			*why = "negated (" + spec + "): " + *why
		}
	}
	return invert != matches
}

// matchSub evaluates "sub,a,b,c". early reports Murmur's two early returns
// (anchor past the end, anchor not on the user's branch), which do not
// produce a plain false but "false unless negated".
func matchSub(t ACLTree, s *Subject, current, ctx uint32, name string, why *string) (matches, early bool) {
	// Murmur's arguments and index arithmetic are 32-bit ints (Qt 5's
	// QList::indexOf returns int). HEAD, built with Qt 6, uses qsizetype, so
	// absurd bounds such as c=2147483647 wrap here and not there.
	a, b, c := int32(0), int32(1), int32(1000)
	rest := ""
	if len(name) > 4 {
		rest = name[4:]
	}
	// The first three comma-separated fields; empty ones keep the default,
	// anything after the third is ignored. (No strings.Split: no garbage.)
	for _, dst := range [...]*int32{&a, &b, &c} {
		field, tail, more := strings.Cut(rest, ",")
		if field != "" {
			*dst = qtToInt(field)
		}
		if !more {
			break
		}
		rest = tail
	}

	var cbuf, ubuf [16]uint32
	curPath := pathInto(cbuf[:0], t, current)
	userPath := pathInto(ubuf[:0], t, s.Channel)

	idx := int32(slices.Index(curPath, ctx)) // -1 if ctx is off the path (Murmur only asserts)
	idx += a
	if int(idx) >= len(curPath) {
		if why != nil {
			*why = fmt.Sprintf("%s: the anchor lies %d levels below %s, past the end of the path", name, a, channelName(t, ctx))
		}
		return false, true
	}
	if idx < 0 {
		idx = 0
	}
	anchor := curPath[idx]
	if !slices.Contains(userPath, anchor) {
		if why != nil {
			*why = fmt.Sprintf("%s: is in %s, not on the branch of %s", name, channelName(t, s.Channel), channelName(t, anchor))
		}
		return false, true
	}
	minDepth, maxDepth := idx+b, idx+c
	depth := int32(len(userPath) - 1)
	matches = depth >= minDepth && depth <= maxDepth
	if why != nil {
		*why = fmt.Sprintf("%s: is in %s at depth %d, %s [%d, %d] (anchor %s)", name, channelName(t, s.Channel), depth,
			yesNo(matches, "within", "outside"), minDepth, maxDepth, channelName(t, anchor))
	}
	return matches, false
}

// qtToInt converts like QString::toInt: surrounding white space is allowed,
// and anything unparsable or out of int range is 0 (not the default), so
// "sub,,x" means b=0.
func qtToInt(s string) int32 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// groupOn is a group and the channel that defines it.
type groupOn struct {
	g  *Group
	ch uint32
}

// groupChain collects the groups called name that apply at channel, nearest
// first: the channel's own group always, an ancestor's only while it is
// inheritable, and the walk ends at the first group that does not inherit.
// Murmur walks the same way in appliesToUser and members. reachedRoot
// reports whether the walk got to the root channel and would have taken a
// group defined there: that is where a sign-in's groups live.
func groupChain(dst []groupOn, t ACLTree, channel uint32, name string) (chain []groupOn, reachedRoot bool) {
	ch := channel
	for range maxDepth {
		if c := t.ACL(ch); c != nil {
			if g := c.Groups[name]; g != nil {
				if ch != channel && !g.Inheritable {
					break
				}
				dst = append(dst, groupOn{g, ch})
				if !g.Inherit {
					_, hasParent := t.Parent(ch)
					return dst, !hasParent
				}
			}
		}
		p, ok := t.Parent(ch)
		if !ok {
			return dst, true
		}
		ch = p
	}
	return dst, false
}

// signedInto reports whether the sign-in gave s the group name.
func signedInto(s *Subject, name string) bool {
	for _, g := range s.SignInGroups {
		if g == name {
			return true
		}
	}
	return false
}

func matchChannelGroup(t ACLTree, s *Subject, ctx uint32, name string, why *string) bool {
	var buf [8]groupOn
	chain, reachedRoot := groupChain(buf[:0], t, ctx, name)
	// Temporary members are user ids or -session. An unregistered user has
	// id -1, so Murmur also lets it match a temporary entry -1 (session 1).
	tmpSession := -int64(int32(s.Session))
	// A sign-in's group is a temporary membership of the root's group,
	// the first one the top-down walk below visits, so it is applied
	// first and a remove further down still takes it away.
	matches := reachedRoot && signedInto(s, name)
	var reason string
	if matches && why != nil {
		reason = "member of " + name + " through the sign-in"
		switch from := s.SignInSources[name]; {
		case s.SignInBy != "" && from != "":
			reason += " (" + s.SignInBy + " group " + from + ")"
		case s.SignInBy != "":
			reason += " (" + s.SignInBy + ")"
		}
	}
	for i := len(chain) - 1; i >= 0; i-- { // top-down
		g := chain[i]
		if slices.Contains(g.g.Add, s.UserID) {
			matches = true
			if why != nil {
				reason = "member of " + name + " via add on " + channelName(t, g.ch)
			}
		} else if slices.Contains(g.g.Temporary, s.UserID) || slices.Contains(g.g.Temporary, tmpSession) {
			matches = true
			if why != nil {
				reason = "temporary member of " + name + " on " + channelName(t, g.ch)
			}
		}
		if slices.Contains(g.g.Remove, s.UserID) {
			matches = false
			if why != nil {
				reason = "removed from " + name + " via remove on " + channelName(t, g.ch)
			}
		}
	}
	if why != nil {
		switch {
		case len(chain) == 0 && reason == "":
			reason = "no group " + name + " is visible at " + channelName(t, ctx)
		case reason == "":
			var on []string
			for i := len(chain) - 1; i >= 0; i-- {
				on = append(on, channelName(t, chain[i].ch))
			}
			reason = "not a member of " + name + " (defined on " + strings.Join(on, ", ") + ")"
		}
		*why = reason
	}
	return matches
}

// Members is Murmur's Group::members for the group name as seen from
// channel: the registered user ids added and not removed along the
// inheritance chain, without temporary members. The ACL query reply calls it
// on the parent to fill ChanGroup.inherited_members. The result is sorted;
// it is nil when no such group is visible.
func Members(t ACLTree, channel uint32, name string) []int64 {
	var buf [8]groupOn
	chain, _ := groupChain(buf[:0], t, channel, name)
	set := map[int64]bool{}
	for i := len(chain) - 1; i >= 0; i-- {
		for _, id := range chain[i].g.Add {
			set[id] = true
		}
		for _, id := range chain[i].g.Remove {
			delete(set, id)
		}
	}
	if len(set) == 0 {
		return nil
	}
	out := make([]int64, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// LookupGroup is Murmur's Group::getGroup: the nearest group called name at
// or above channel, and the channel defining it. A group on channel itself
// is always found; the nearest ancestor's only if it is inheritable (a
// non-inheritable one hides those further up). The ACL query reply sets
// ChanGroup.inherited when LookupGroup(parent) finds an inheritable group.
func LookupGroup(t ACLTree, channel uint32, name string) (g *Group, owner uint32, ok bool) {
	ch := channel
	for range maxDepth {
		if c := t.ACL(ch); c != nil {
			if g := c.Groups[name]; g != nil {
				if ch == channel || g.Inheritable {
					return g, ch, true
				}
				return nil, 0, false
			}
		}
		p, ok := t.Parent(ch)
		if !ok {
			break
		}
		ch = p
	}
	return nil, 0, false
}

// GroupNames is Murmur's Group::groupNames: every group name visible at
// channel, sorted. Walking from the root down, a channel's groups add their
// names, except that a non-inheritable group on an ancestor removes its name
// again (even if a higher ancestor defined it). inherit=false does not hide
// names here.
func GroupNames(t ACLTree, channel uint32) []string {
	var buf [16]uint32
	path := pathInto(buf[:0], t, channel)
	set := map[string]bool{}
	for _, ch := range path {
		c := t.ACL(ch)
		if c == nil {
			continue
		}
		for n, g := range c.Groups {
			if g == nil {
				continue
			}
			if ch != channel && !g.Inheritable {
				delete(set, n)
			} else {
				set[n] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// maxDepth bounds every upward walk: a cycle in a tree would be a server
// bug, and must not hang the voice path.
const maxDepth = 1 << 12

// pathInto appends root..channel to dst and returns it.
func pathInto(dst []uint32, t Tree, channel uint32) []uint32 {
	start := len(dst)
	ch := channel
	for range maxDepth {
		dst = append(dst, ch)
		p, ok := t.Parent(ch)
		if !ok {
			break
		}
		ch = p
	}
	slices.Reverse(dst[start:])
	return dst
}

// ChannelNamer may be implemented by a Tree to let Explain name channels.
type ChannelNamer interface {
	ChannelName(channel uint32) string
}

func channelName(t Tree, ch uint32) string {
	if n, ok := t.(ChannelNamer); ok {
		if name := n.ChannelName(ch); name != "" {
			return fmt.Sprintf("%s (%d)", name, ch)
		}
	}
	return "channel " + strconv.FormatUint(uint64(ch), 10)
}

func setWhy(why *string, s string) {
	if why != nil {
		*why = s
	}
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}
