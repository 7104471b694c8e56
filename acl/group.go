package acl

import (
	"strconv"
	"strings"
)

// BuiltinGroup evaluates a group spec with Murmur's prefixes (!, ~, #, $) and
// built-in names (all, none, auth, strong, in, out, sub). Channel groups are
// not known here and never match. The "~" prefix (evaluate in the ACL's
// channel) is accepted and ignored, because outside ACL evaluation the ACL's
// channel and the checked channel are the same.
func BuiltinGroup(t Tree, s *Subject, channel uint32, spec string) bool {
	invert := false
	for len(spec) > 0 {
		switch spec[0] {
		case '!':
			invert = !invert
			spec = spec[1:]
			continue
		case '~':
			spec = spec[1:]
			continue
		}
		break
	}
	return invert != matchBuiltin(t, s, channel, spec)
}

func matchBuiltin(t Tree, s *Subject, channel uint32, name string) bool {
	switch {
	case name == "":
		return false
	case name[0] == '#':
		tok := name[1:]
		for _, have := range s.Tokens {
			if tok != "" && strings.EqualFold(have, tok) {
				return true
			}
		}
		return false
	case name[0] == '$':
		return name[1:] != "" && s.CertHash == name[1:]
	case name == "all":
		return true
	case name == "none":
		return false
	case name == "auth":
		return s.UserID >= 0
	case name == "strong":
		return s.Strong
	case name == "in":
		return s.Channel == channel
	case name == "out":
		return s.Channel != channel
	case name == "sub" || strings.HasPrefix(name, "sub,"):
		return matchSub(t, s, channel, name)
	}
	return false
}

// matchSub implements "sub,a,b,c": the user sits between b and c levels below
// the channel a levels below (a may be negative: above) the context channel,
// on the same branch. An anchor past the end is a plain "no match", which
// negation turns into a match like any other.
func matchSub(t Tree, s *Subject, channel uint32, name string) bool {
	a, b, c := 0, 1, 1000
	args := strings.Split(name, ",")[1:]
	for i, dst := range []*int{&a, &b, &c} {
		if i < len(args) && args[i] != "" {
			if n, err := strconv.Atoi(args[i]); err == nil {
				*dst = n
			}
		}
	}
	ctxPath := pathTo(t, channel)
	idx := len(ctxPath) - 1 + a
	if idx >= len(ctxPath) {
		return false
	}
	if idx < 0 {
		idx = 0
	}
	anchor := ctxPath[idx]
	userPath := pathTo(t, s.Channel)
	onPath := false
	for _, ch := range userPath {
		if ch == anchor {
			onPath = true
			break
		}
	}
	if !onPath {
		return false
	}
	depth := len(userPath) - 1
	return depth >= idx+b && depth <= idx+c
}

// pathTo returns root..channel.
func pathTo(t Tree, channel uint32) []uint32 {
	var rev []uint32
	for ch, ok := channel, true; ok; ch, ok = t.Parent(ch) {
		rev = append(rev, ch)
		if len(rev) > 1<<16 { // a cycle would be a server bug; never loop forever
			break
		}
	}
	path := make([]uint32, len(rev))
	for i, ch := range rev {
		path[len(rev)-1-i] = ch
	}
	return path
}
