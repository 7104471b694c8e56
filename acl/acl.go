// Package acl is Plenum's copy of Murmur's permission model: the permission
// bits, the ACL entries and groups stored on channels, and the evaluation
// Murmur 1.5.735 performs on them (ChanACL::effectivePermissions and
// Group::appliesToUser). Stock Mumble clients grey out menus, show ACLs and
// expect "permission denied" exactly where Murmur would, so the evaluation
// here reproduces Murmur's rules, quirks included, rather than an idealised
// version of them. Where Murmur's current development branch (HEAD) differs
// from 1.5.735, the comments and test names say so.
//
// The server asks one question before every decision Murmur takes by
// permission: what may this user do in this channel? Permissions answers it
// from an ACLTree, Cache memoises the answer per (session, channel) like
// Murmur's acCache, and Explain tells an administrator why.
//
// Policy and Open are the older interface the server still uses; Open is
// what Permissions computes for a tree without any ACL data.
package acl

import (
	"fmt"
	"strings"
)

// Permission is a set of Mumble permission bits, as sent in PermissionQuery,
// ServerSync and PermissionDenied.
type Permission uint32

// The permission bits, numbered as in Murmur's ACL.h.
const (
	None             Permission = 0x0
	Write            Permission = 0x1
	Traverse         Permission = 0x2
	Enter            Permission = 0x4
	Speak            Permission = 0x8
	MuteDeafen       Permission = 0x10
	Move             Permission = 0x20
	MakeChannel      Permission = 0x40
	LinkChannel      Permission = 0x80
	Whisper          Permission = 0x100
	TextMessage      Permission = 0x200
	MakeTempChannel  Permission = 0x400
	Listen           Permission = 0x800
	Kick             Permission = 0x10000
	Ban              Permission = 0x20000
	Register         Permission = 0x40000
	SelfRegister     Permission = 0x80000
	ResetUserContent Permission = 0x100000

	// Cached is the marker Murmur ORs into values stored in its ACL cache
	// (and then sends verbatim in PermissionQuery and a normal user's
	// ServerSync). Permissions and Cache never return it; the server adds
	// it to what it sends.
	Cached Permission = 0x8000000

	// All is every permission a 1.4+ client knows.
	All Permission = 0x1F0FFF
	// DefaultGrant is what Murmur grants everyone before any ACL applies.
	DefaultGrant = Traverse | Enter | Speak | Whisper | TextMessage | Listen
)

var names = []struct {
	p    Permission
	name string
}{
	{Write, "Write"}, {Traverse, "Traverse"}, {Enter, "Enter"}, {Speak, "Speak"},
	{MuteDeafen, "MuteDeafen"}, {Move, "Move"}, {MakeChannel, "MakeChannel"},
	{LinkChannel, "LinkChannel"}, {Whisper, "Whisper"}, {TextMessage, "TextMessage"},
	{MakeTempChannel, "MakeTempChannel"}, {Listen, "Listen"}, {Kick, "Kick"}, {Ban, "Ban"},
	{Register, "Register"}, {SelfRegister, "SelfRegister"}, {ResetUserContent, "ResetUserContent"},
}

// Has reports whether p contains any bit of q, which is how Murmur tests a
// permission: a kick checks Kick|Ban, and either is enough.
func (p Permission) Has(q Permission) bool { return p&q != 0 }

// String lists the bits by name, e.g. "Enter|Speak".
func (p Permission) String() string {
	if p == None {
		return "None"
	}
	return strings.Join(p.Names(), "|")
}

// Subject is the user a permission is evaluated for. The server keeps one per
// user and replaces it (never mutates it) when the user changes, so a policy
// may read it from any goroutine.
type Subject struct {
	Session  uint32
	UserID   int64 // -1 for unregistered users; 0 is SuperUser
	Name     string
	CertHash string // lowercase hex SHA-1 of the client certificate, "" if none
	Strong   bool   // no certificate, or one that verifies against the trusted CAs (Murmur's bVerified)
	Tokens   []string
	Channel  uint32 // the channel the user is in

	// SignInGroups are the groups an external sign-in (LDAP, webhook,
	// OpenID Connect) gave for this session, and SignInBy names that
	// sign-in for Explain. They act like Murmur's groups from an Ice
	// authenticator: temporary members of the root channel's group of
	// that name (as if an inheritable group existed there when none
	// does), so they reach every channel that inherits the root's group.
	SignInGroups []string
	SignInBy     string
	// SignInSources names the provider's own group behind a sign-in
	// group, where it mapped one ("cn=delegates,ou=groups,..."), for
	// Explain.
	SignInSources map[string]string
}

// Tree is the read-only view of the channel tree a policy needs for group
// rules such as "sub" and "in".
type Tree interface {
	// Parent returns a channel's parent; ok is false for the root and for
	// unknown channels.
	Parent(channel uint32) (parent uint32, ok bool)
}

// Policy answers permission questions. Implementations must be safe for
// concurrent use: the voice path asks from its own goroutines.
type Policy interface {
	// Permissions is the effective permission set of s in channel.
	Permissions(t Tree, s *Subject, channel uint32) Permission
	// InGroup reports whether s belongs to the group spec (as used by
	// whisper targets and ACL entries) evaluated in channel.
	InGroup(t Tree, s *Subject, channel uint32, group string) bool
}

// Open is the policy of a server without ACLs. It computes what Murmur
// computes for a tree without any entries or groups: the default grant for
// everyone, and SuperUser's fixed set (All without Speak and Whisper).
type Open struct{}

// Permissions implements Policy.
func (Open) Permissions(t Tree, s *Subject, channel uint32) Permission {
	if s == nil {
		// The server may still ask before a user has a Subject; the old
		// Open answered the default grant then, and so does this one.
		return DefaultGrant
	}
	return Permissions(bareTree{t}, s, channel)
}

// InGroup implements Policy with Murmur's built-in groups; without ACLs there
// are no channel groups, so any other name matches nobody.
func (Open) InGroup(t Tree, s *Subject, channel uint32, group string) bool {
	return BuiltinGroup(t, s, channel, group)
}

// ParsePermission returns the permission with Murmur's name (as the
// client's ACL editor shows it, e.g. "MuteDeafen"), case-insensitively.
func ParsePermission(name string) (Permission, error) {
	for _, n := range names {
		if strings.EqualFold(n.name, name) {
			return n.p, nil
		}
	}
	return None, fmt.Errorf("unknown permission %q", name)
}

// Names returns the names of the bits in p, in Murmur's order.
func (p Permission) Names() []string {
	var out []string
	for _, n := range names {
		if p&n.p != 0 {
			out = append(out, n.name)
		}
	}
	return out
}
