package acl

import "strconv"

// Entry is one ACL entry on a channel (Murmur's ChanACL).
type Entry struct {
	ApplyHere, ApplySubs bool
	// UserID >= 0 makes the entry one for that registered user; -1 makes it
	// one for Group. Like Murmur, the engine also evaluates Group when a user
	// id is set (entries from clients never carry both). -2 and below are
	// the server's placeholders for names nobody has registered: a user
	// entry that matches nobody, since subjects are -1 or registered.
	UserID int64
	Group  string // group spec, e.g. "admin", "~sub,0,1", "!#token", "$certhash"
	Allow  Permission
	Deny   Permission
}

// Group is a group defined on a channel (Murmur's Group). The map key in
// ChannelACL.Groups is the name that lookups use.
type Group struct {
	Name        string
	Inherit     bool    // take members from the same-named group of the parent
	Inheritable bool    // subchannels may inherit this group
	Add, Remove []int64 // registered user ids
	// Temporary members are user ids, or -session for unregistered users.
	// Murmur keeps them in memory only and drops them on disconnect.
	Temporary []int64
}

// ChannelACL is the ACL data of one channel. The engine only reads it; the
// server must replace rather than mutate a ChannelACL that readers can see.
type ChannelACL struct {
	InheritACL bool    // Murmur's bInheritACL (true for new channels)
	Entries    []Entry // in stored order, which is evaluation order
	Groups     map[string]*Group
}

// ACLTree is a Tree that also knows each channel's ACL data. Root is channel
// 0, as in Mumble's protocol and Murmur's root-only checks.
type ACLTree interface {
	Tree
	// ACL returns a channel's ACL data, or nil for a channel without entries
	// or groups that inherits its parent's ACL.
	ACL(channel uint32) *ChannelACL
}

// RootOnly are the bits that only root entries grant, because they act on
// the whole server (you cannot kick someone out of just one channel).
const RootOnly = Kick | Ban | Register | SelfRegister | ResetUserContent

// WriteImplies is what Write adds anywhere. It does not include Speak or
// Whisper: an administrator can still be suppressed. On root Write also
// implies RootOnly.
const WriteImplies = Traverse | Enter | MuteDeafen | Move | MakeChannel | LinkChannel | TextMessage |
	MakeTempChannel | Listen

// SuperUserPermissions is what SuperUser (user id 0) gets everywhere,
// without any ACL being consulted.
const SuperUserPermissions = All &^ (Speak | Whisper)

const rootChannel = 0

// Permissions returns the effective permissions of s in channel, as Murmur
// 1.5.735's ChanACL::effectivePermissions computes them.
//
// Walking root..channel, each channel first resets to the default grant if it
// does not inherit ACLs, then applies its matching entries in order: allow
// then deny of the same entry (deny wins), later entries over earlier ones.
// Entries on ancestors act only with apply_subs, entries on the channel only
// with apply_here. Root-only bits come only from root entries with
// apply_here, and only when channel is root. Every matching entry on the path
// updates a Traverse and a Write flag, whatever its apply flags (HEAD only
// lets entries that apply, or ancestors' apply_here ones, do so); when after
// a channel neither is set, the result is None. Write finally adds
// WriteImplies (and RootOnly on root).
func Permissions(t ACLTree, s *Subject, channel uint32) Permission {
	return evaluate(t, s, channel, nil)
}

// evaluate is Permissions, recording its steps in ex when ex is not nil.
func evaluate(t ACLTree, s *Subject, channel uint32, ex *Explanation) Permission {
	if s.UserID == 0 {
		if ex != nil {
			ex.SuperUser = true
			ex.add(Step{Kind: StepSuperUser, Channel: channel, After: SuperUserPermissions})
		}
		return SuperUserPermissions
	}

	var buf [16]uint32
	path := pathInto(buf[:0], t, channel)

	granted := DefaultGrant
	traverse, write := true, false
	if ex != nil {
		ex.add(Step{Kind: StepDefault, Channel: channel, After: granted, Traverse: true})
	}
	for _, ch := range path {
		c := t.ACL(ch)
		if c == nil {
			continue // inherits, no entries: nothing changes
		}
		if !c.InheritACL {
			if ex != nil {
				ex.add(Step{Kind: StepReset, Channel: ch, Before: granted, After: DefaultGrant, Traverse: traverse, Write: write})
			}
			granted = DefaultGrant
		}
		for i := range c.Entries {
			e := &c.Entries[i]
			var why *string
			var reason string
			if ex != nil {
				why = &reason
			}
			matchUser := e.UserID != -1 && e.UserID == s.UserID
			match := matchUser
			if !match {
				match = appliesToUser(t, s, channel, ch, e.Group, why)
			} else if ex != nil {
				reason = "the entry is for user id " + strconv.FormatInt(e.UserID, 10)
			}
			if !match {
				if ex != nil && e.UserID != -1 && e.Group == "" {
					reason = "the entry is for user id " + strconv.FormatInt(e.UserID, 10)
					if e.UserID <= -2 {
						reason = "the entry is for a name nobody has registered (user " + strconv.FormatInt(e.UserID, 10) + ")"
					}
				}
				if ex != nil && (e.Allow|e.Deny)&(ex.Asked|Traverse|Write) != 0 {
					ex.add(Step{Kind: StepEntry, Channel: ch, Index: i, Entry: *e, Why: reason,
						Before: granted, After: granted, Traverse: traverse, Write: write})
				}
				continue
			}
			before := granted
			// 1.5.735: any matching entry moves the flags, even one that
			// applies neither here nor to subchannels.
			if e.Allow&Traverse != 0 {
				traverse = true
			}
			if e.Deny&Traverse != 0 {
				traverse = false
			}
			if e.Allow&Write != 0 {
				write = true
			}
			if e.Deny&Write != 0 {
				write = false
			}
			var rootBits Permission
			if ch == rootChannel && ch == channel && e.ApplyHere {
				rootBits = e.Allow & RootOnly
				granted |= rootBits
			}
			applies := (ch == channel && e.ApplyHere) || (ch != channel && e.ApplySubs)
			if applies {
				granted |= e.Allow &^ (RootOnly | Cached)
				granted &^= e.Deny
			}
			if ex != nil {
				ex.add(Step{Kind: StepEntry, Channel: ch, Index: i, Entry: *e, Matched: true, Applies: applies,
					RootOnly: rootBits, Why: reason, Before: before, After: granted, Traverse: traverse, Write: write})
			}
		}
		if !traverse && !write {
			if ex != nil {
				ex.add(Step{Kind: StepCutOff, Channel: ch, Before: granted, After: None})
			}
			granted = None
			break
		}
	}

	if granted&Write != 0 {
		before := granted
		granted |= WriteImplies
		if channel == rootChannel {
			granted |= RootOnly
		}
		if ex != nil {
			ex.add(Step{Kind: StepWrite, Channel: channel, Before: before, After: granted, Traverse: traverse, Write: write})
		}
	}
	return granted
}

// DefaultRootACL returns the ACL Murmur 1.5.735 gives the root of a new
// virtual server: @admin Write (here and subs), @auth MakeTempChannel (here
// and subs), @all SelfRegister (here only; HEAD applies it to subs too, which
// changes nothing effective since root-only bits come only from root, but is
// visible in the ACL editor), and an empty, inheriting, inheritable "admin"
// group.
func DefaultRootACL() *ChannelACL {
	return &ChannelACL{
		InheritACL: true,
		Entries: []Entry{
			{ApplyHere: true, ApplySubs: true, UserID: -1, Group: "admin", Allow: Write},
			{ApplyHere: true, ApplySubs: true, UserID: -1, Group: "auth", Allow: MakeTempChannel},
			{ApplyHere: true, ApplySubs: false, UserID: -1, Group: "all", Allow: SelfRegister},
		},
		Groups: map[string]*Group{
			"admin": {Name: "admin", Inherit: true, Inheritable: true},
		},
	}
}

// ReplyEntry is an entry as the ACL query reply lists it.
type ReplyEntry struct {
	Entry
	Channel   uint32 // where the entry is stored
	Inherited bool   // stored on an ancestor
}

// ReplyEntries lists the entries Murmur's ACL query reply shows for channel:
// from the topmost ancestor still inherited down to channel (the parent is
// always included; further up only while the channel below inherits ACLs),
// the ancestors' entries with apply_subs, then all of channel's own.
func ReplyEntries(t ACLTree, channel uint32) []ReplyEntry {
	var chain []uint32 // channel upwards
	ch := channel
	for range maxDepth {
		chain = append(chain, ch)
		if ch != channel {
			if c := t.ACL(ch); c != nil && !c.InheritACL {
				break
			}
		}
		p, ok := t.Parent(ch)
		if !ok {
			break
		}
		ch = p
	}
	var out []ReplyEntry
	for i := len(chain) - 1; i >= 0; i-- {
		c := t.ACL(chain[i])
		if c == nil {
			continue
		}
		for _, e := range c.Entries {
			if chain[i] == channel || e.ApplySubs {
				out = append(out, ReplyEntry{Entry: e, Channel: chain[i], Inherited: chain[i] != channel})
			}
		}
	}
	return out
}
