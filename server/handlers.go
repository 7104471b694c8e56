package server

import (
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/web/signal"
)

// handle dispatches one control frame. Unknown types and bodies that do not
// parse are ignored, as Murmur does; so is almost everything sent before
// authentication.
func (s *Server) handle(c *conn, t control.Type, payload []byte) {
	if t == signal.Type {
		if c.web != nil && c.user != nil {
			s.handleSignal(c, payload)
		}
		return // from a Mumble client: an unknown type, ignored
	}
	if t == control.UDPTunnel {
		if c.user != nil && c.web == nil { // a browser's voice comes over WebRTC
			s.handleTunnel(c, payload)
		}
		return
	}
	msg, err := control.Unmarshal(t, payload)
	if err != nil {
		return
	}
	if s.floods(c, msg) {
		return
	}
	switch m := msg.(type) {
	case *mumblepb.Version:
		s.handleVersion(c, m)
		return
	case *mumblepb.Authenticate:
		s.handleAuthenticate(c, m)
		return
	}
	u := c.user
	if u == nil {
		return
	}
	if unidles(t) {
		u.lastActive.Store(time.Now().UnixNano())
	}
	if s.refusedWhileCutOff(u, msg) {
		return
	}
	switch m := msg.(type) {
	case *mumblepb.Ping:
		s.handlePing(u, m)
	case *mumblepb.CryptSetup:
		s.handleCryptSetup(u, m)
	case *mumblepb.UserState:
		s.handleUserState(u, m)
	case *mumblepb.TextMessage:
		s.handleTextMessage(u, m)
	case *mumblepb.RequestBlob:
		s.handleRequestBlob(u, m)
	case *mumblepb.VoiceTarget:
		s.handleVoiceTarget(u, m)
	case *mumblepb.PermissionQuery:
		s.handlePermissionQuery(u, m)
	case *mumblepb.UserStats:
		s.handleUserStats(u, m)
	case *mumblepb.QueryUsers:
		s.handleQueryUsers(u, m)
	case *mumblepb.UserRemove:
		s.handleUserRemove(u, m)
	case *mumblepb.ChannelState:
		s.handleChannelState(u, m)
	case *mumblepb.ChannelRemove:
		s.handleChannelRemove(u, m)
	case *mumblepb.ACL:
		s.handleACL(u, m)
	case *mumblepb.BanList:
		s.handleBanList(u, m)
	case *mumblepb.UserList:
		s.handleUserList(u, m)
	}
}

// floods reports whether msg is one of the messages Murmur rate-limits
// (Version, UserState about oneself, channel creation, text, ACL) and its
// bucket is full; such a message is dropped. Unlike Murmur, the ACL
// editor draws on a bucket of its own, so that chatting never keeps an
// admin's editor from opening or saving, and the editor is told when it
// is refused instead of waiting for an answer that never comes.
func (s *Server) floods(c *conn, msg proto.Message) bool {
	bucket := &c.flood
	switch m := msg.(type) {
	case *mumblepb.Version, *mumblepb.TextMessage:
	case *mumblepb.ACL:
		bucket = &c.aclFlood
	case *mumblepb.UserState:
		if m.Session != nil && (c.user == nil || m.GetSession() != c.user.session) {
			return false
		}
	case *mumblepb.ChannelState:
		if m.ChannelId != nil {
			return false
		}
	default:
		return false
	}
	cfg := s.cfg()
	if bucket.allow(time.Now(), cfg.MessageLimit, cfg.MessageBurst) {
		return false
	}
	s.control.floodDropped.Add(1)
	if bucket == &c.aclFlood && c.user != nil {
		c.send(&mumblepb.PermissionDenied{Type: mumblepb.PermissionDenied_Text.Enum(),
			Reason: ptr("Too many ACL requests in a short time; this one was not carried out. Try again in a few seconds.")})
	}
	return true
}

// unidles reports whether a message counts as user activity for the idle
// time shown in UserStats; Murmur leaves out the automatic ones.
func unidles(t control.Type) bool {
	switch t {
	case control.Ping, control.CryptSetup, control.VoiceTarget, control.PermissionQuery,
		control.UserStats, control.RequestBlob:
		return false
	}
	return true
}

// unlock publishes a new voice snapshot if the control plane changed
// anything the voice path reads, queues the configuration file if its
// content changed, then releases the lock.
func (s *Server) unlock() {
	if s.snapDirty {
		s.publishLocked()
	}
	if s.clusterDirty && s.cluster != nil {
		s.announceLocked()
	}
	if s.configDirty {
		s.queueConfigLocked()
	}
	if s.ids.dirty {
		s.wakeWriterLocked() // it records the channel ids
	}
	after := s.afterUnlock
	s.afterUnlock = nil
	s.mu.Unlock() // the one place the world lock is released
	for _, fn := range after {
		fn()
	}
}

// permissions is the single permission check of the server: every decision
// Murmur takes by permission goes through it.
func (s *Server) permissions(u *user, ch *channel) acl.Permission {
	return s.policy.Permissions(serverTree{s}, u.subject, ch.id)
}

func (s *Server) may(u *user, ch *channel, p acl.Permission) bool {
	return s.permissions(u, ch).Has(p)
}

// requireLocked is the check before an action that needs permission p in
// ch: it reports whether u has it and, when u does not, sends the
// PermissionDenied that names the permission, the channel and u, as
// Murmur's PERM_DENIED does. Every check that refuses by permission goes
// through it; deny is left for refusals that are not a missing permission
// (the root cannot be renamed, suppress can only be lifted).
func (s *Server) requireLocked(u *user, ch *channel, p acl.Permission) bool {
	if s.may(u, ch, p) {
		return true
	}
	s.deny(u, p, ch)
	return false
}

// deny refuses an action in ch that would need p, whatever u's permissions.
func (s *Server) deny(u *user, p acl.Permission, ch *channel) {
	u.conn.send(&mumblepb.PermissionDenied{
		Type:       mumblepb.PermissionDenied_Permission.Enum(),
		Permission: ptr(uint32(p)),
		ChannelId:  ptr(ch.id),
		Session:    ptr(u.session),
	})
}

func (s *Server) denyType(u *user, t mumblepb.PermissionDenied_DenyType) {
	u.conn.send(&mumblepb.PermissionDenied{Type: t.Enum()})
}

// broadcastLocked sends m to every authenticated user except one (nil for
// none). The frame is marshalled once and shared.
func (s *Server) broadcastLocked(m proto.Message, except *user) {
	s.noteBroadcastLocked(m)
	// The voice path must see a change before anyone hears of it: a client
	// that reacts to this message (talks now that a listener is deafened,
	// whispers to a user who just appeared) must find the new state in
	// force.
	if s.snapDirty {
		s.publishLocked()
	}
	switch m.(type) {
	case *mumblepb.UserState, *mumblepb.UserRemove:
		s.clusterDirty = true // the other nodes may need to hear of it
	}
	frame, err := control.Marshal(m)
	if err != nil {
		s.log.Error("marshal failed", "err", err)
		return
	}
	for _, u := range s.users {
		if u != except {
			u.conn.sendFrame(frame)
		}
	}
}

// placeLocked moves u into ch and recomputes what depends on the channel.
// It reports whether u lost priority speaker, which a channel change clears.
func (s *Server) placeLocked(u *user, ch *channel) (lostPriority bool) {
	if u.channel != nil {
		delete(u.channel.users, u)
	}
	from := u.channel
	u.channel = ch
	ch.users[u] = struct{}{}
	lostPriority = u.prioritySpeak
	u.prioritySpeak = false
	s.refreshSubjectLocked(u)
	u.suppress = !s.mayTalkLocked(u, ch)
	s.snapDirty = true
	s.floorMovedLocked(u, from, ch)
	return lostPriority
}

// enterLocked moves target into dest, adds what changed with it to out
// (the UserState the caller broadcasts) and pushes the permissions of the
// new channel and its parent, as Murmur does. It returns the channel left,
// which the caller removes after broadcasting if it was temporary and is
// now empty.
func (s *Server) enterLocked(target *user, dest *channel, out *mumblepb.UserState) (left *channel) {
	left = target.channel
	wasSuppressed := target.suppress
	if s.placeLocked(target, dest) {
		out.PrioritySpeaker = ptr(false)
	}
	out.ChannelId = ptr(dest.id)
	if target.suppress != wasSuppressed {
		out.Suppress = ptr(target.suppress)
	}
	s.enteredLocked(target)
	return left
}

// moveLocked moves target into dest on behalf of actor (nil for the
// server itself) and tells everyone.
func (s *Server) moveLocked(actor, target *user, dest *channel) {
	out := &mumblepb.UserState{Session: ptr(target.session)}
	if actor != nil {
		out.Actor = ptr(actor.session)
	}
	left := s.enterLocked(target, dest, out)
	s.broadcastLocked(out, nil)
	s.removeIfEmptyTemporaryLocked(left)
}

func (s *Server) handlePing(u *user, m *mumblepb.Ping) {
	u.tcpPackets.Add(1)
	u.decMu.Lock()
	st := u.crypt.Stats()
	u.decMu.Unlock()
	s.mu.Lock()
	u.clientStats = m
	s.unlock()
	u.conn.send(&mumblepb.Ping{
		Timestamp: m.Timestamp,
		Good:      ptr(st.Good),
		Late:      ptr(st.Late),
		Lost:      ptr(st.Lost),
		Resync:    ptr(st.Resync),
	})
}

// handleCryptSetup serves both resync directions: a client_nonce is the
// client's encrypt IV (our decrypt IV) after we asked for it; an empty
// message asks for our encrypt IV.
func (s *Server) handleCryptSetup(u *user, m *mumblepb.CryptSetup) {
	if nonce := m.GetClientNonce(); len(nonce) > 0 {
		u.decMu.Lock()
		err := u.crypt.SetDecryptIV(nonce)
		u.decMu.Unlock()
		if err != nil {
			s.log.Warn("ignoring bad crypt resync", "session", u.session, "err", err)
		}
		return
	}
	u.encMu.Lock()
	iv := u.crypt.EncryptIV()
	u.encMu.Unlock()
	u.conn.send(&mumblepb.CryptSetup{ServerNonce: iv[:]})
}

// requestResync asks the client for its encrypt IV after decrypt failures,
// at most once per 5 s and only when nothing decrypted for 5 s. Called
// from the voice path with u.decMu held.
func (s *Server) requestResyncLocked(u *user, now time.Time) {
	lastGood := u.crypt.LastGood()
	if lastGood.IsZero() {
		lastGood = u.connected // like Murmur's timer, which starts at connect
	}
	if now.Sub(lastGood) <= 5*time.Second || now.Sub(u.lastResyncAsk) <= 5*time.Second {
		return
	}
	u.lastResyncAsk = now
	u.conn.send(&mumblepb.CryptSetup{})
}

// handleTunnel takes a voice packet that came over TCP. Tunnelling tells us
// the client does not trust its UDP path, so we answer over TCP too until
// UDP audio arrives again.
func (s *Server) handleTunnel(c *conn, payload []byte) {
	u := c.user
	if len(payload) < 2 || len(payload) > voice.MaxPacket {
		return
	}
	u.tcpPackets.Add(1)
	if voice.Peek(payload, u.format) != voice.KindAudio {
		return // pings over TCP are ignored, other codecs dropped
	}
	u.udpFlag.Store(false)
	if c.router == nil {
		c.router = s.newRouter(s.udpSocks[0]) // any socket: they share the port
	}
	s.voice.Route(c.router, u.session, u, payload, time.Now().UnixNano())
	c.router.Flush()
}

// handleVoiceTarget stores a whisper/shout target. Sessions and channels
// that do not exist now are dropped; a target left empty is removed.
func (s *Server) handleVoiceTarget(u *user, m *mumblepb.VoiceTarget) {
	id := m.GetId()
	if id < 1 || id > 30 {
		return
	}
	s.mu.Lock()
	defer s.unlock()
	clean := &mumblepb.VoiceTarget{Id: ptr(id)}
	for _, t := range m.Targets {
		ct := &mumblepb.VoiceTarget_Target{}
		for _, session := range t.Session {
			_, local := s.users[session]
			if _, remote := s.remote[session]; local || remote {
				ct.Session = append(ct.Session, session)
			}
		}
		if t.ChannelId != nil {
			if _, ok := s.channels[t.GetChannelId()]; ok {
				ct.ChannelId = t.ChannelId
				ct.Group = t.Group
				ct.Links = t.Links
				ct.Children = t.Children
			}
		}
		if len(ct.Session) > 0 || ct.ChannelId != nil {
			clean.Targets = append(clean.Targets, ct)
		}
	}
	if len(clean.Targets) == 0 {
		delete(u.targets, id)
	} else {
		u.targets[id] = clean
	}
	s.snapDirty = true
}

func (s *Server) handlePermissionQuery(u *user, m *mumblepb.PermissionQuery) {
	s.mu.Lock()
	defer s.unlock()
	ch, ok := s.channels[m.GetChannelId()]
	if !ok {
		return
	}
	s.sendPermissionLocked(u, ch, true)
}

// permissionsChangedLocked follows a change that can alter anyone's
// permissions (ACL or group edits, channel moves, a reloaded config):
// suppress is recomputed for everyone and broadcast where it changed, and
// each client is told to drop its cached permissions.
func (s *Server) permissionsChangedLocked() {
	s.forgetPermissionsLocked()
	var changed []*mumblepb.UserState
	for _, u := range s.users {
		s.refreshSubjectLocked(u)
		if suppress := !s.mayTalkLocked(u, u.channel); suppress != u.suppress {
			u.suppress = suppress
			changed = append(changed, &mumblepb.UserState{Session: ptr(u.session), Suppress: ptr(suppress)})
		}
	}
	s.snapDirty = true
	for _, m := range changed {
		s.broadcastLocked(m, nil)
	}
	for _, u := range s.users {
		s.flushPermissionsLocked(u)
	}
}

// refreshSubjectLocked rebuilds u's permission subject after a change of
// channel, tokens or registration, and forgets u's cached permissions.
func (s *Server) refreshSubjectLocked(u *user) {
	u.refreshSubject()
	s.snapDirty = true // the snapshot carries the subject
	if s.permCache != nil {
		s.permCache.Forget(u.session)
	}
}
