package server

// Channel management from clients: create (permanent and temporary),
// rename, describe, reposition, move, link and remove, with Murmur's
// permission rules and limits.

import (
	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"slices"
	"strings"
)

// Murmur's defaults for channelnestinglimit and channelcountlimit.
const (
	channelNestingLimit = 10
	channelCountLimit   = 1000
)

func (s *Server) handleChannelState(u *user, m *mumblepb.ChannelState) {
	s.mu.Lock()
	defer s.unlock()
	var ch, parent *channel
	if m.ChannelId != nil {
		var ok bool
		if ch, ok = s.channels[m.GetChannelId()]; !ok {
			return
		}
	}
	if m.Parent != nil {
		var ok bool
		if parent, ok = s.channels[m.GetParent()]; !ok {
			return
		}
	}
	if m.Description != nil && !s.textAllowed(m.GetDescription()) {
		s.denyType(u, mumblepb.PermissionDenied_TextTooLong)
		return
	}
	if m.Name != nil && !s.channelNameFree(u, m.GetName(), ch, parent) {
		return
	}
	if parent != nil && !s.canNest(parent, ch) {
		s.denyType(u, mumblepb.PermissionDenied_NestingLimit)
		return
	}
	if ch == nil {
		s.createChannelLocked(u, m, parent)
		return
	}
	s.editChannelLocked(u, m, ch, parent)
}

// maxChannelNameLen is Murmur's limit on a channel name, in UTF-16 units
// as Qt counts them; without it one edit could send a megabyte name to
// every client.
const maxChannelNameLen = 512

// channelNameFree checks a new or changed name: valid, and not taken by a
// sibling in the channel's (new) parent.
func (s *Server) channelNameFree(u *user, name string, ch, parent *channel) bool {
	// '/' separates the names in the file's channel paths: a name with
	// one could never be saved (channel_name_pattern allows it, as
	// Murmur's does).
	if name == "" || utf16Len(name) > maxChannelNameLen || !s.channelName.MatchString(name) || strings.Contains(name, "/") {
		s.denyType(u, mumblepb.PermissionDenied_ChannelName)
		return false
	}
	siblingsOf := parent
	if siblingsOf == nil && ch != nil {
		siblingsOf = ch.parent
	}
	if siblingsOf == nil {
		return true
	}
	for _, sib := range siblingsOf.children {
		if sib.name == name {
			s.denyType(u, mumblepb.PermissionDenied_ChannelName)
			return false
		}
	}
	return true
}

// canNest reports whether ch (nil for a new channel) fits below parent
// within the nesting limit, counting ch's own subtree.
func (s *Server) canNest(parent, ch *channel) bool {
	depth := 0
	for p := parent; p != nil; p = p.parent {
		depth++
	}
	return depth+subtreeDepth(ch) <= channelNestingLimit
}

func subtreeDepth(ch *channel) int {
	if ch == nil {
		return 1
	}
	deepest := 0
	for _, c := range ch.children {
		if d := subtreeDepth(c); d > deepest {
			deepest = d
		}
	}
	return deepest + 1
}

func (s *Server) createChannelLocked(u *user, m *mumblepb.ChannelState, parent *channel) {
	if parent == nil || m.Name == nil {
		return
	}
	if len(s.channels) >= channelCountLimit {
		s.denyType(u, mumblepb.PermissionDenied_ChannelCountLimit)
		return
	}
	perm := acl.MakeChannel
	if m.GetTemporary() {
		perm = acl.MakeTempChannel
	}
	if !s.requireLocked(u, parent, perm) {
		return
	}
	if u.userID < 0 && !u.hasCertificate() {
		u.conn.send(&mumblepb.PermissionDenied{Type: mumblepb.PermissionDenied_MissingCertificate.Enum(), Session: ptr(u.session)})
		return
	}
	if parent.temporary {
		s.denyType(u, mumblepb.PermissionDenied_TemporaryChannel)
		return
	}
	id := s.ids.next() // temporary channels too: their ids are not given twice either
	if id == 0 {
		s.denyType(u, mumblepb.PermissionDenied_ChannelCountLimit)
		return
	}
	if !m.GetTemporary() {
		s.configEditLocked(u) // temporary channels are not saved
	}
	c := newChannel(id, parent, m.GetName())
	c.setDescription(m.GetDescription())
	c.position = m.GetPosition()
	c.maxUsers = m.GetMaxUsers()
	c.temporary = m.GetTemporary()
	s.channels[c.id] = c
	s.notePathsLocked(c)
	s.grantCreatorLocked(u, c)
	s.snapDirty = true
	s.broadcastLocked(s.channelStateLocked(c, nil), nil)
	s.log.Info("channel created", "channel", c.id, "name", c.name, "parent", parent.id, "temporary", c.temporary, s.logUser("by", u))
	if c.temporary {
		// The creator goes right into a temporary channel, as in Murmur.
		s.moveLocked(u, u, c)
	}
	s.channelsChangedLocked()
}

// setRootDescriptionLocked keeps an edit of the root channel's
// description in the file's [server] section, where it lives. The
// configuration is replaced, not changed in place: queued versions of the
// file share the old one.
func (s *Server) setRootDescriptionLocked(d string) {
	cfg := *s.config
	cfg.Server.RootDescription = d
	s.config = &cfg
	settings := *s.cfg()
	settings.RootDescription = d
	s.settings.Store(&settings)
}

func (s *Server) editChannelLocked(u *user, m *mumblepb.ChannelState, ch, parent *channel) {
	needWrite := m.Name != nil || m.Description != nil || m.Position != nil || m.MaxUsers != nil || parent != nil
	if m.Name != nil && ch == s.root {
		s.deny(u, acl.Write, ch)
		return
	}
	if needWrite && !s.requireLocked(u, ch, acl.Write) {
		return
	}
	if parent != nil {
		if parent == ch.parent {
			return
		}
		for p := parent; p != nil; p = p.parent {
			if p == ch {
				return // into its own subtree
			}
		}
		if parent.temporary {
			s.denyType(u, mumblepb.PermissionDenied_TemporaryChannel)
			return
		}
		perm := acl.MakeChannel
		if ch.temporary {
			perm = acl.MakeTempChannel
		}
		if !s.requireLocked(u, parent, perm) {
			return
		}
		name := ch.name
		if m.Name != nil {
			name = m.GetName()
		}
		for _, sib := range parent.children {
			if sib.name == name {
				s.denyType(u, mumblepb.PermissionDenied_ChannelName)
				return
			}
		}
	}
	var add, remove []*channel
	if len(m.LinksAdd) > 0 || len(m.LinksRemove) > 0 {
		if ch == s.root || slices.Contains(m.LinksAdd, s.root.id) {
			u.conn.send(&mumblepb.PermissionDenied{Type: mumblepb.PermissionDenied_Text.Enum(),
				Reason: ptr("The root channel cannot be linked on this server: its links could not be kept in the configuration file.")})
			return
		}
		if !s.requireLocked(u, ch, acl.LinkChannel) {
			return
		}
		for _, id := range m.LinksRemove {
			l, ok := s.channels[id]
			if !ok {
				return
			}
			remove = append(remove, l)
		}
		for _, id := range m.LinksAdd {
			l, ok := s.channels[id]
			if !ok {
				return
			}
			if !s.requireLocked(u, l, acl.LinkChannel) {
				return
			}
			add = append(add, l)
		}
	}

	if !ch.temporary {
		s.configEditLocked(u)
	}
	out := &mumblepb.ChannelState{ChannelId: ptr(ch.id)}
	if parent != nil {
		ch.parent.removeChild(ch)
		ch.parent = parent
		parent.children = append(parent.children, ch)
		out.Parent = ptr(parent.id)
	}
	if m.Name != nil {
		ch.name = m.GetName()
		out.Name = m.Name
		s.renameVirtualLocked(ch)
	}
	if m.Description != nil {
		ch.setDescription(m.GetDescription())
		ch.describe(out)
		if ch == s.root {
			s.setRootDescriptionLocked(m.GetDescription())
		}
	}
	if m.Position != nil {
		ch.position = m.GetPosition()
		out.Position = m.Position
	}
	if m.MaxUsers != nil {
		ch.maxUsers = m.GetMaxUsers()
		out.MaxUsers = m.MaxUsers
	}
	for _, l := range add {
		if l != ch {
			ch.links[l] = struct{}{}
			l.links[ch] = struct{}{}
			out.LinksAdd = append(out.LinksAdd, l.id)
		}
	}
	for _, l := range remove {
		if _, ok := ch.links[l]; ok {
			delete(ch.links, l)
			delete(l.links, ch)
			out.LinksRemove = append(out.LinksRemove, l.id)
		}
	}
	if parent != nil || m.Name != nil {
		s.notePathsLocked(ch) // it keeps its id under the new path
	}
	s.snapDirty = true
	s.broadcastLocked(out, nil)
	if parent != nil {
		s.permissionsChangedLocked() // inherited ACLs differ below the new parent
	}
	s.channelsChangedLocked()
}

func (c *channel) removeChild(child *channel) {
	for i, x := range c.children {
		if x == child {
			c.children = append(c.children[:i], c.children[i+1:]...)
			return
		}
	}
}

func (s *Server) handleChannelRemove(u *user, m *mumblepb.ChannelRemove) {
	s.mu.Lock()
	defer s.unlock()
	ch, ok := s.channels[m.GetChannelId()]
	if !ok {
		return
	}
	if ch == s.root {
		s.deny(u, acl.Write, ch) // the root stays, whoever asks
		return
	}
	if !s.requireLocked(u, ch, acl.Write) {
		return
	}
	if !ch.temporary {
		s.configEditLocked(u)
	}
	s.log.Info("channel removed", "channel", ch.id, "name", ch.name, s.logUser("by", u))
	s.removeChannelLocked(ch)
	s.channelsChangedLocked()
}

// removeChannelLocked removes ch and its subtree. Users inside move to the
// nearest ancestor they may enter that has room.
func (s *Server) removeChannelLocked(ch *channel) {
	for len(ch.children) > 0 {
		s.removeChannelLocked(ch.children[len(ch.children)-1])
	}
	for u := range ch.users {
		dest := ch.parent
		for dest.parent != nil && (!s.may(u, dest, acl.Enter) || s.isFull(dest)) {
			dest = dest.parent
		}
		s.moveLocked(nil, u, dest)
	}
	for l := range ch.links {
		delete(l.links, ch)
	}

	s.dropListenersLocked(ch)
	s.dropShapeLocked(ch)
	if ch == s.defaultChannel {
		// As in Murmur, newcomers then start in the root channel; the
		// file's default_channel follows (queueConfigLocked).
		s.defaultChannel = s.root
		s.log.Warn("the default channel was removed; newcomers start in the root channel", "channel", ch.id)
	}
	ch.parent.removeChild(ch)
	delete(s.channels, ch.id)
	id := ch.id
	s.afterUnlock = append(s.afterUnlock, func() {
		// Registered users no longer listen to it or return to it.
		if err := s.store.ForgetChannel(id); err != nil {
			s.log.Warn("forgetting a removed channel failed", "channel", id, "err", err)
		}
	})
	s.snapDirty = true
	s.broadcastLocked(&mumblepb.ChannelRemove{ChannelId: ptr(ch.id)}, nil)
}

// removeIfEmptyTemporaryLocked deletes a temporary channel once its last
// user has left, as Murmur does.
func (s *Server) removeIfEmptyTemporaryLocked(ch *channel) {
	if ch == nil || !ch.temporary || len(ch.users) > 0 || len(ch.children) > 0 {
		return
	}
	if _, ok := s.channels[ch.id]; !ok {
		return
	}
	s.removeChannelLocked(ch)
	s.channelsChangedLocked()
}

// grantCreatorLocked gives the creator of a channel what Murmur gives:
// membership of the new channel's admin group when registered, and Write
// on it when the inherited ACLs would not allow them to manage it.
func (s *Server) grantCreatorLocked(u *user, c *channel) {
	if u.userID < 0 && !u.hasCertificate() || u.isAPI() {
		return
	}
	next := &acl.ChannelACL{InheritACL: true, Groups: map[string]*acl.Group{}}
	if u.userID >= 0 {
		next.Groups["admin"] = &acl.Group{Name: "admin", Inherit: true, Inheritable: true, Add: []int64{u.userID}}
	}
	c.acl = next
	s.forgetPermissionsLocked()
	if !s.may(u, c, acl.Write) {
		e := acl.Entry{ApplyHere: true, UserID: u.userID, Allow: acl.Write | acl.Traverse}
		if u.userID < 0 {
			e.Group = "$" + u.certHash
		}
		next.Entries = append(next.Entries, e)
		s.forgetPermissionsLocked()
	}
	if len(next.Groups) == 0 && len(next.Entries) == 0 {
		c.acl = nil
	}
}

// forgetPermissionsLocked drops every cached permission, after a change to
// ACLs, groups or the tree.
func (s *Server) forgetPermissionsLocked() {
	if s.permCache != nil {
		s.permCache.Clear()
	}
}

// forgetUserPermissionsLocked tells u's client to drop the permissions it
// holds if they changed (after a registration change; the caller has
// refreshed u's subject, which forgot the server's cached ones).
func (s *Server) forgetUserPermissionsLocked(u *user) {
	s.flushPermissionsLocked(u)
}
