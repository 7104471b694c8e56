package server

// Channel ACLs and groups: loaded from the configuration (user names
// resolved against the store), evaluated by the acl package through a
// cache, edited by the Mumble client's ACL editor.

import (
	"errors"
	"sort"
	"unicode/utf8"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
)

// aclPolicy evaluates the channels' ACLs with Murmur's rules. Its cache is
// per (session, channel); see Server.refreshSubjectLocked and
// forgetPermissionsLocked for invalidation.
type aclPolicy struct{ cache *acl.Cache }

func (p aclPolicy) Permissions(t acl.Tree, s *acl.Subject, ch uint32) acl.Permission {
	if s == nil {
		return acl.DefaultGrant
	}
	return p.cache.Permissions(t.(acl.ACLTree), s, ch)
}

func (p aclPolicy) InGroup(t acl.Tree, s *acl.Subject, ch uint32, group string) bool {
	return acl.InGroup(t.(acl.ACLTree), s, ch, ch, group)
}

// ACL implements acl.ACLTree for the control plane (callers hold s.mu).
func (t serverTree) ACL(id uint32) *acl.ChannelACL {
	if c, ok := t.s.channels[id]; ok {
		return c.acl
	}
	return nil
}

// ChannelName lets acl.Explain name channels.
func (t serverTree) ChannelName(id uint32) string {
	if c, ok := t.s.channels[id]; ok {
		return c.name
	}
	return ""
}

// aclFromConfig converts a channel's groups and entries from the file into
// the engine's form (conf.ChannelACL), resolving user names against the
// store; a name nobody registered gets its placeholder (names.go).
func (s *Server) aclFromConfig(inherit bool, groups map[string]*conf.Group, entries []conf.ACLEntry, where string) *acl.ChannelACL {
	return conf.ChannelACL(inherit, groups, entries, func(name string) (int64, bool) {
		u, err := s.store.UserByName(name)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				s.log.Error("looking up a user the ACL names failed; the name matches nobody for now", "channel", where, "user", name, "err", err)
			} else {
				s.log.Warn("ACL names a user who is not registered; the name matches nobody until someone registers under it", "channel", where, "user", name)
			}
			return s.names.unregistered(name), true
		}
		return u.ID, true
	})
}

// aclToConfig converts a channel's ACL back into the file's form, naming
// users by their registered name, or by the name a placeholder stands for.
func (s *Server) aclToConfig(a *acl.ChannelACL) (inherit *bool, groups map[string]*conf.Group, entries []conf.ACLEntry) {
	if a == nil {
		return nil, nil, nil
	}
	if !a.InheritACL {
		inherit = conf.Bool(false)
	}
	for name, g := range a.Groups {
		cg := &conf.Group{Add: s.userNames(g.Add), Remove: s.userNames(g.Remove)}
		if !g.Inherit {
			cg.Inherit = conf.Bool(false)
		}
		if !g.Inheritable {
			cg.Inheritable = conf.Bool(false)
		}
		if groups == nil {
			groups = make(map[string]*conf.Group)
		}
		groups[name] = cg
	}
	for _, e := range a.Entries {
		ce := conf.ACLEntry{Group: e.Group, Allow: e.Allow.Names(), Deny: e.Deny.Names()}
		if e.UserID != -1 {
			names := s.userNames([]int64{e.UserID})
			if len(names) == 0 {
				continue
			}
			ce.User, ce.Group = names[0], ""
		}
		if !e.ApplyHere {
			ce.ApplyHere = conf.Bool(false)
		}
		if !e.ApplySubs {
			ce.ApplySubs = conf.Bool(false)
		}
		entries = append(entries, ce)
	}
	return inherit, groups, entries
}

// userNames names user ids, each name once (the file refuses a name
// listed twice): registered users by their registered name, placeholders
// and registrations deleted meanwhile by the name in the table; other
// ids are dropped.
func (s *Server) userNames(ids []int64) []string {
	var names []string
	seen := map[string]bool{}
	for _, id := range ids {
		name, ok := s.names.nameOf(id)
		if id >= 0 {
			if u, err := s.store.UserByID(id); err == nil {
				name, ok = u.Name, true
			}
		}
		if ok && !seen[store.NameKey(name)] {
			seen[store.NameKey(name)] = true
			names = append(names, name)
		}
	}
	return names
}

// handleACL serves the client's ACL editor: a query returns the channel's
// ACLs and groups as Murmur does; anything else replaces them. Both need
// Write on the channel or on its parent (Murmur's msgACL).
func (s *Server) handleACL(u *user, m *mumblepb.ACL) {
	// Which user ids exist is asked of the store before taking the lock.
	var known map[uint32]int64
	if !m.GetQuery() {
		known = s.knownIDs(m)
	}
	s.mu.Lock()
	defer s.unlock()
	ch, ok := s.channels[m.GetChannelId()]
	if !ok {
		return
	}
	// Write on the parent is enough, as in Murmur; the denial names the
	// channel itself.
	parentWrite := ch.parent != nil && s.may(u, ch.parent, acl.Write)
	if !parentWrite && !s.requireLocked(u, ch, acl.Write) {
		return
	}
	if m.GetQuery() {
		s.sendACLLocked(u, ch)
		return
	}
	s.setACLLocked(u, ch, m, known)
}

func (s *Server) sendACLLocked(u *user, ch *channel) {
	t := serverTree{s}
	reply := &mumblepb.ACL{ChannelId: ptr(ch.id), InheritAcls: ptr(ch.acl == nil || ch.acl.InheritACL), Query: ptr(false)}
	ids := map[int64]bool{}
	for _, name := range acl.GroupNames(t, ch.id) {
		g := &mumblepb.ACL_ChanGroup{Name: ptr(name), Inherit: ptr(true), Inheritable: ptr(true), Inherited: ptr(false)}
		if own := ch.acl; own != nil {
			if og, ok := own.Groups[name]; ok {
				g.Inherit, g.Inheritable = ptr(og.Inherit), ptr(og.Inheritable)
				g.Add, g.Remove = toWire(og.Add, ids), toWire(og.Remove, ids)
			}
		}
		if ch.parent != nil {
			if pg, _, found := acl.LookupGroup(t, ch.parent.id, name); found && pg.Inheritable {
				g.Inherited = ptr(true)
			}
			g.InheritedMembers = toWire(acl.Members(t, ch.parent.id, name), ids)
		}
		reply.Groups = append(reply.Groups, g)
	}
	for _, e := range acl.ReplyEntries(t, ch.id) {
		ce := &mumblepb.ACL_ChanACL{
			ApplyHere: ptr(e.ApplyHere), ApplySubs: ptr(e.ApplySubs), Inherited: ptr(e.Inherited),
			Grant: ptr(uint32(e.Allow)), Deny: ptr(uint32(e.Deny)),
		}
		if e.UserID != -1 {
			ce.UserId = ptr(wireID(e.UserID))
			ids[e.UserID] = true
		} else {
			ce.Group = ptr(e.Group)
		}
		reply.Acls = append(reply.Acls, ce)
	}
	u.conn.send(reply)
	// The editor shows names, so it gets every id it needs resolved, the
	// placeholders of names nobody registered too; the store is asked
	// once the lock is released.
	s.afterUnlock = append(s.afterUnlock, func() {
		q := &mumblepb.QueryUsers{}
		for _, id := range sortedIDs(ids) {
			name, ok := "", false
			if id <= -2 {
				name, ok = s.names.nameOf(id)
			} else if ru, err := s.store.UserByID(id); err == nil {
				name, ok = ru.Name, true
			}
			if ok {
				q.Ids = append(q.Ids, wireID(id))
				q.Names = append(q.Names, name)
			}
		}
		u.conn.send(q)
	})
}

// toWire converts user ids to the ids the client is shown, noting them
// in seen.
func toWire(ids []int64, seen map[int64]bool) []uint32 {
	out := make([]uint32, 0, len(ids))
	for _, id := range ids {
		out = append(out, wireID(id))
		seen[id] = true
	}
	return out
}

func sortedIDs(set map[int64]bool) []int64 {
	ids := make([]int64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// setACLLocked replaces ch's groups and entries with the editor's, as
// Murmur does: inherited entries are not sent back by clients, grant and
// deny are masked to known bits, temporary group members survive, and an
// editor who would lock themselves out keeps Write on the channel.
func (s *Server) setACLLocked(u *user, ch *channel, m *mumblepb.ACL, known map[uint32]int64) {
	if !ch.temporary {
		s.configEditLocked(u) // a temporary channel's ACL is not saved
	}
	next := &acl.ChannelACL{InheritACL: m.GetInheritAcls(), Groups: map[string]*acl.Group{}}
	for _, g := range m.Groups {
		name := asQtText(g.GetName())
		if name == "" {
			continue // the editor never sends it, and the file cannot name it
		}
		ng := &acl.Group{Name: name, Inherit: g.GetInherit(), Inheritable: g.GetInheritable(),
			Add: keepKnown(g.Add, known), Remove: keepKnown(g.Remove, known)}
		if ch.acl != nil {
			if old, ok := ch.acl.Groups[name]; ok {
				ng.Temporary = old.Temporary
			}
		}
		next.Groups[name] = ng
	}
	for _, e := range m.Acls {
		entry := acl.Entry{ApplyHere: e.GetApplyHere(), ApplySubs: e.GetApplySubs(), UserID: -1,
			Allow: acl.Permission(e.GetGrant()) & acl.All, Deny: acl.Permission(e.GetDeny()) & acl.All}
		switch {
		case e.UserId != nil:
			id, ok := known[e.GetUserId()]
			if !ok {
				continue
			}
			entry.UserID = id
		case e.GetGroup() != "":
			// Kept as sent, like Murmur, however odd: "$" plus an
			// upper-case hash matches nobody (and everybody with "!"),
			// "sub,1,x" reads x as 0 (conf.GroupSpecNote).
			entry.Group = asQtText(e.GetGroup())
		default:
			continue // neither user nor group: the editor never sends it, and it matches nobody
		}
		next.Entries = append(next.Entries, entry)
	}
	// A name may have been registered, or a registration deleted, since
	// the ids were looked up.
	next = s.names.remap(next, nil)
	ch.acl = next
	s.forgetPermissionsLocked()
	if !s.may(u, ch, acl.Write) && (u.userID >= 0 || u.certHash != "") {
		keep := acl.Entry{ApplyHere: true, UserID: u.userID, Allow: acl.Write | acl.Traverse}
		if u.userID < 0 {
			keep.Group = "$" + u.certHash
		}
		next.Entries = append(next.Entries, keep)
		s.forgetPermissionsLocked()
	}
	s.log.Info("ACL changed", "channel", ch.id, "name", ch.name, s.logUser("by", u), "entries", len(next.Entries), "groups", len(next.Groups))
	s.noteACLLocked(ch)
	s.permissionsChangedLocked()
	for _, other := range s.users {
		other.conn.send(&mumblepb.ChannelState{
			ChannelId:         ptr(ch.id),
			IsEnterRestricted: ptr(enterRestricted(ch)),
			CanEnter:          ptr(s.may(other, ch, acl.Enter)),
		})
	}
	s.channelsChangedLocked()
}

// asQtText is s as Murmur holds a protobuf string once Qt has decoded it
// (QString::fromUtf8): bytes that are not valid UTF-8 become U+FFFD, one
// for each, as the file's writer would write them.
func asQtText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s))
}

// enterRestricted reports whether an ACL entry on ch itself denies Enter,
// which 1.4+ clients show with a lock.
func enterRestricted(ch *channel) bool {
	if ch.acl == nil {
		return false
	}
	for _, e := range ch.acl.Entries {
		if e.Deny.Has(acl.Enter) {
			return true
		}
	}
	return false
}

// knownIDs maps the user ids an ACL message refers to onto the ids the
// ACL holds: registered users' ids, and the placeholders of names nobody
// registered (names.go). Murmur ignores ids it does not know; so do we.
func (s *Server) knownIDs(m *mumblepb.ACL) map[uint32]int64 {
	known := map[uint32]int64{}
	seen := map[uint32]bool{}
	check := func(w uint32) {
		if seen[w] {
			return
		}
		seen[w] = true
		if p, ok := s.names.fromWire(w); ok {
			known[w] = p
		} else if _, err := s.store.UserByID(int64(w)); err == nil {
			known[w] = int64(w)
		} else if _, deleted := s.names.nameOf(int64(w)); deleted && w > 0 {
			known[w] = int64(w) // remap gives it its name's placeholder
		}
	}
	for _, g := range m.Groups {
		for _, id := range g.Add {
			check(id)
		}
		for _, id := range g.Remove {
			check(id)
		}
	}
	for _, e := range m.Acls {
		if e.UserId != nil {
			check(e.GetUserId())
		}
	}
	return known
}

// keepKnown keeps the ids that known knows, as the ACL holds them.
func keepKnown(ids []uint32, known map[uint32]int64) []int64 {
	var out []int64
	for _, w := range ids {
		if id, ok := known[w]; ok && !containsID(out, id) {
			out = append(out, id)
		}
	}
	return out
}
