package server

// What clients are told about their permissions, as Murmur 1.5 tells
// them (Server::sendClientPermission, flushClientPermissionCache and the
// ServerSync of msgAuthenticate).
//
// Murmur sends the values of its ACL cache, which carry the Cached bit
// (0x8000000), so every PermissionQuery and the ServerSync of a normal
// user have it. SuperUser is never evaluated: its ServerSync says All
// (with Speak and Whisper, which it does not actually have), and it gets
// no PermissionQuery at all, not even an answer to its own query; the
// client then treats it as allowed everything.
//
// Murmur remembers per user what it has sent for each channel. A pushed
// value (after entering a channel) is sent only when it differs from what
// the client already has; an answer to the client's own query always. When
// permissions may have changed (an ACL edit, a move, a registration) the
// client is told to drop its cache only if a value it holds is now wrong,
// or if it holds 20 or more: then it gets one flush with the channel it
// last asked about (or its own channel) and starts over.

import (
	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// maxPermissionsSent is how many channels' values Murmur checks before a
// flush; with more it flushes without looking.
const maxPermissionsSent = 20

// sentPermissions is the value PermissionQuery and ServerSync carry for u
// in ch.
func (s *Server) sentPermissions(u *user, ch *channel) acl.Permission {
	return s.permissions(u, ch) | acl.Cached
}

// syncPermissions is ServerSync.permissions for u: the root's.
func (s *Server) syncPermissions(u *user) acl.Permission {
	if u.userID == 0 {
		return acl.All
	}
	return s.sentPermissions(u, s.root)
}

// sendPermissionLocked tells u its permissions in ch: always when u asked,
// else only if they differ from what u was last told for ch.
func (s *Server) sendPermissionLocked(u *user, ch *channel, asked bool) {
	if u.userID == 0 {
		return
	}
	perm := s.sentPermissions(u, ch)
	if asked {
		u.lastPermAsked = int64(ch.id)
	}
	if sent, ok := u.permSent[ch.id]; ok && sent == perm && !asked {
		return
	}
	if u.permSent == nil {
		u.permSent = make(map[uint32]acl.Permission)
	}
	u.permSent[ch.id] = perm
	u.conn.send(&mumblepb.PermissionQuery{ChannelId: ptr(ch.id), Permissions: ptr(uint32(perm))})
}

// enteredLocked pushes the permissions of the channel u has just entered
// and of its parent, after a flush if anything u holds went stale (Murmur's
// userEnterChannel).
func (s *Server) enteredLocked(u *user) {
	s.flushPermissionsLocked(u)
	s.sendPermissionLocked(u, u.channel, false)
	if p := u.channel.parent; p != nil {
		s.sendPermissionLocked(u, p, false)
	}
}

// flushPermissionsLocked tells u to drop its cached permissions if any it
// holds is no longer right (or it holds too many to check).
func (s *Server) flushPermissionsLocked(u *user) {
	if len(u.permSent) < maxPermissionsSent {
		stale := false
		for id, sent := range u.permSent {
			ch, ok := s.channels[id]
			if !ok || s.sentPermissions(u, ch) != sent {
				stale = true
				break
			}
		}
		if !stale {
			return // also SuperUser's case: it holds nothing
		}
	}
	clear(u.permSent)
	ch, ok := s.channels[uint32(u.lastPermAsked)]
	if u.lastPermAsked < 0 || !ok {
		ch = u.channel
		u.lastPermAsked = int64(ch.id)
	}
	perm := s.sentPermissions(u, ch)
	u.permSent[ch.id] = perm
	u.conn.send(&mumblepb.PermissionQuery{ChannelId: ptr(ch.id), Permissions: ptr(uint32(perm)), Flush: ptr(true)})
}
