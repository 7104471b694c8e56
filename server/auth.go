package server

import (
	"runtime"
	"strings"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/auth"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/voice"
)

// Limits Murmur applies to the version strings a client reports.
const (
	maxReleaseLen   = 100
	maxOSLen        = 40
	maxOSVersionLen = 60
	maxUsernameLen  = 512
)

func (s *Server) versionMessage() *mumblepb.Version {
	m := &mumblepb.Version{
		VersionV1: ptr(control.VersionV1(Version)),
		VersionV2: ptr(Version),
	}
	if s.cfg().SendVersion {
		m.Release = ptr(Release)
		m.Os = ptr(runtime.GOOS)
		m.OsVersion = ptr(runtime.Version())
	}
	return m
}

func (s *Server) handleVersion(c *conn, m *mumblepb.Version) {
	if c.user != nil {
		return // the version decides the UDP format; it cannot change mid-session
	}
	c.clientVersion = m
}

func limitString(s string, n int) string {
	if len(s) > n {
		return "[[Invalid]]"
	}
	return s
}

// reject refuses an authentication with Murmur's reject type and closes.
func reject(c *conn, t mumblepb.Reject_RejectType, reason string) {
	if int(t) < rejectKinds {
		c.s.control.rejected[t].Add(1)
	}
	c.blameless = t == mumblepb.Reject_ServerFull // a full server is not the client's failure
	c.sendAndClose(&mumblepb.Reject{Type: t.Enum(), Reason: &reason}, reasonRejected)
}

func (s *Server) handleAuthenticate(c *conn, m *mumblepb.Authenticate) {
	if c.user != nil {
		s.updateTokens(c.user, m.GetTokens())
		return
	}
	name := strings.TrimSpace(m.GetUsername())
	if name == "" || len(name) > maxUsernameLen || !s.userName.MatchString(name) {
		reject(c, mumblepb.Reject_InvalidUsername, "Invalid username")
		return
	}
	certHash := c.certHash()
	strong := s.strongCertificate(c.peerCertificates())
	// The store is asked before taking the lock: it may hash a password.
	kind := auth.Mumble
	if c.web != nil {
		kind = auth.Web
	}
	ident, rejectType, reason := s.signInIdentify(name, m.GetPassword(), certHash, kind, c.signInToken)
	if rejectType != mumblepb.Reject_None {
		reject(c, rejectType, reason)
		return
	}

	s.mu.Lock()
	defer s.unlock()
	var ghost *user
	for _, other := range s.users {
		sameUser := ident.userID >= 0 && other.userID == ident.userID
		if sameUser || strings.EqualFold(other.name, ident.name) {
			if sameUser || (certHash != "" && other.certHash == certHash) {
				ghost = other // the same person reconnecting: replace the old session
				continue
			}
			reject(c, mumblepb.Reject_UsernameInUse, "Username already in use")
			return
		}
	}
	if s.isVirtualNameLocked(ident.name) || s.remoteNameTakenLocked(ident.name, ident.userID, certHash) {
		reject(c, mumblepb.Reject_UsernameInUse, "Username already in use")
		return
	}
	if ghost == nil && len(s.users)+len(s.remote) >= s.cfg().MaxUsers {
		reject(c, mumblepb.Reject_ServerFull, "Server is full")
		return
	}
	replaces := s.replaceRemoteGhostsLocked(ident.name, ident.userID, certHash)
	if ghost != nil {
		ghost.conn.sendAndClose(&mumblepb.UserRemove{Session: &ghost.session, Reason: ptr("You connected to the server from another device")}, reasonReplaced)
		ghost.replaced = true
		s.removeUserLocked(ghost)
		replaces = append(replaces, ghost.session)
	}
	session, ok := s.sessions.get()
	if !ok {
		reject(c, mumblepb.Reject_ServerFull, "Server is full")
		return
	}
	version := control.VersionOf(c.clientVersion)
	u := &user{
		conn:    c,
		session: session,

		name:      ident.name,
		certHash:  certHash,
		strong:    strong,
		version:   version,
		format:    wire.FormatFor(version),
		opus:      m.GetOpus(),
		connected: time.Now(),

		userID:   ident.userID,
		comment:  ident.comment,
		replaces: replaces,
		texture:  ident.texture,
		tokens:   append([]string(nil), m.GetTokens()...),

		signInGroups:  ident.groups,
		signInBy:      ident.signInBy,
		signInSources: ident.signInSources,
		targets:       make(map[uint32]*mumblepb.VoiceTarget),

		lastPermAsked: -1,
	}
	u.speaker = voice.NewSpeaker(u.connected)
	if cv := c.clientVersion; cv != nil {
		u.release = limitString(cv.GetRelease(), maxReleaseLen)
		u.os = limitString(cv.GetOs(), maxOSLen)
		u.osVersion = limitString(cv.GetOsVersion(), maxOSVersionLen)
	}

	u.commentHash = blobHash(u.comment)
	if len(u.texture) >= blobThreshold {
		u.textureHash = sha1Sum(u.texture)
	}
	u.udpFlag.Store(true)
	u.lastActive.Store(u.connected.UnixNano())
	if c.web != nil {
		c.web.joinWeb(u)
	}
	if err := u.crypt.GenerateKey(); err != nil {
		s.sessions.put(session)
		s.log.Error("generating a voice encryption key failed", "err", err)
		c.close(reasonInternal)
		return
	}

	s.loginLocked(c, u, ident)
}

// loginLocked sends a newly authenticated client everything it needs, in
// the order Murmur sends it: the client insists on seeing its own UserState
// before ServerSync.
func (s *Server) loginLocked(c *conn, u *user, ident identity) {
	s.holdLoginLocked(c)
	key, enc, dec := u.crypt.Key(), u.crypt.EncryptIV(), u.crypt.DecryptIV()
	c.send(&mumblepb.CryptSetup{Key: key[:], ClientNonce: dec[:], ServerNonce: enc[:]})
	c.send(codecVersion())

	// Where the user will start decides "in"/"out" groups, so can_enter is
	// computed as seen from there.

	back, failedOver := s.takeFailoverLocked(u)
	if failedOver && back.comment != "" { // the others saw it a moment ago; this node's record may be older
		u.comment = back.comment
		u.commentHash = blobHash(u.comment)
	}
	entry := s.entryChannelLocked(u, ident.channel, back.channel)
	u.channel = entry
	s.refreshSubjectLocked(u)
	for _, ch := range s.breadthFirst() {
		c.send(s.channelStateLocked(ch, u))
	}
	for _, ch := range s.breadthFirst() {
		if len(ch.links) == 0 {
			continue
		}
		m := &mumblepb.ChannelState{ChannelId: ptr(ch.id)}
		for _, l := range sortedLinks(ch) {
			m.Links = append(m.Links, l.id)
		}
		c.send(m)
	}

	u.channel = nil
	c.user = u
	s.users[u.session] = u
	s.userCount.Store(int32(len(s.users)))
	s.placeLocked(u, entry)
	s.enteredLocked(u)

	s.broadcastLocked(u.stateMessage(), nil) // publishes first: the new user hears at once
	s.floorReturnedLocked(u)                 // once the others know u: it may change u's suppress
	for _, other := range s.users {
		if other != u {
			c.send(other.stateMessage())
		}
	}
	for _, v := range s.virtual {
		c.send(v.stateMessage())
	}
	for _, r := range s.remote {
		c.send(r.stateMessage())
	}
	sync := &mumblepb.ServerSync{
		Session:      ptr(u.session),
		MaxBandwidth: ptr(uint32(s.cfg().Bandwidth)),
		Permissions:  ptr(uint64(s.syncPermissions(u))),
	}
	if s.cfg().WelcomeText != "" {
		sync.WelcomeText = ptr(s.cfg().WelcomeText)
	}

	c.send(sync)
	if failedOver { // what they listened to on their old node is newer than this node's record
		ident.listening = back.listening
	}
	s.restoreListeningLocked(u, ident.listening)
	c.send(&mumblepb.ServerConfig{
		AllowHtml:          ptr(s.cfg().AllowHTML),
		MessageLength:      ptr(uint32(s.cfg().TextMessageLength)),
		ImageMessageLength: ptr(uint32(s.cfg().ImageMessageLength)),
		MaxUsers:           ptr(uint32(s.cfg().MaxUsers)),
		RecordingAllowed:   ptr(s.cfg().AllowRecording),
	})
	if m := s.suggestConfig(); m != nil {
		c.send(m)
	}
	c.nc.SetReadDeadline(time.Now().Add(s.cfg().Timeout.Duration))
	s.log.Info("user joined", s.addrAttr([]any{s.logUser("user", u), "client", u.release, "version", control.VersionString(u.version)}, c.remote.Addr())...)
}

// entryChannelLocked picks where a user starts: a registered user's last
// channel (Murmur's rememberchannel, unless remember_channel is off), else
// the default channel, else the root, skipping channels the user may not
// enter or that are full. A last channel that no longer exists is skipped
// too; its id was never given to another channel (channelid.go). In a
// cluster, the channel the user was in on a node that died (failover)
// comes first.
func (s *Server) entryChannelLocked(u *user, lastChannel uint32, failover *channel) *channel {
	candidates := []*channel{s.defaultChannel}
	if last, ok := s.channels[lastChannel]; ok && u.stored() && s.cfg().RememberChannel {
		candidates = append([]*channel{last}, candidates...)
	}
	if failover != nil {
		candidates = append([]*channel{failover}, candidates...) // back where they were on their old node
	}
	for _, ch := range candidates {
		u.channel = ch // provisional, so the permission subject has a channel
		s.refreshSubjectLocked(u)
		if s.may(u, ch, acl.Enter) && !s.isFull(ch) {
			u.channel = nil
			return ch
		}
	}
	u.channel = nil
	return s.root
}

// suggestConfig is the configured SuggestConfig, or nil when the admin
// suggests nothing (then Murmur sends none either).
func (s *Server) suggestConfig() *mumblepb.SuggestConfig {
	m := &mumblepb.SuggestConfig{Positional: s.cfg().SuggestPositional, PushToTalk: s.cfg().SuggestPushToTalk}
	if v := s.cfg().SuggestVersion; v != "" {
		major, minor, patch, err := conf.ParseVersion(v)
		if err == nil {
			v2 := control.MakeVersion(major, minor, patch)
			m.VersionV1, m.VersionV2 = ptr(control.VersionV1(v2)), ptr(v2)
		}
	}
	if m.VersionV2 == nil && m.Positional == nil && m.PushToTalk == nil {
		return nil
	}
	return m
}

// codecVersion is what an Opus-only server announces: the CELT fields are
// what Murmur sends when everyone speaks Opus, so old clients stay quiet.
func codecVersion() *mumblepb.CodecVersion {
	return &mumblepb.CodecVersion{
		Alpha:       ptr(int32(-2147483637)), // CELT 0.7.0 bitstream id 0x8000000b
		Beta:        ptr(int32(0)),
		PreferAlpha: ptr(true),
		Opus:        ptr(true),
	}
}

// channelStateLocked describes ch, for viewer when given (a joining
// client) or for everyone. Links are sent separately: at login in a second
// pass, once every channel exists on the client.
func (s *Server) channelStateLocked(ch *channel, viewer *user) *mumblepb.ChannelState {
	m := &mumblepb.ChannelState{
		ChannelId: ptr(ch.id),
		Name:      ptr(ch.name),
		Position:  ptr(ch.position),
		MaxUsers:  ptr(ch.maxUsers),
	}
	if ch.parent != nil {
		m.Parent = ptr(ch.parent.id)
	}
	if ch.shown != "" {
		ch.describe(m)
	}
	if ch.temporary {
		m.Temporary = ptr(true)
	}

	if viewer != nil { // what a particular user may do; broadcasts leave it out
		m.IsEnterRestricted = ptr(enterRestricted(ch))
		m.CanEnter = ptr(s.may(viewer, ch, acl.Enter))
	}
	return m
}

func (s *Server) updateTokens(u *user, tokens []string) {
	s.mu.Lock()
	defer s.unlock()
	u.tokens = append([]string(nil), tokens...)
	s.refreshSubjectLocked(u)
	s.snapDirty = true
	s.flushPermissionsLocked(u)
	for _, ch := range s.breadthFirst() {
		u.conn.send(&mumblepb.ChannelState{ChannelId: ptr(ch.id), CanEnter: ptr(s.may(u, ch, acl.Enter))})
	}
}

// disconnect removes a finished connection and, if it was a user, tells
// everyone else.
func (s *Server) disconnect(c *conn) {
	s.mu.Lock()
	defer s.unlock()
	delete(s.conns, c)
	select {
	case s.connGone <- struct{}{}:
	default:
	}
	u := c.user
	if u == nil || s.users[u.session] != u {
		s.logClosed(c) // never authenticated, or already kicked or replaced
		return
	}

	s.removeUserLocked(u)
	u.decMu.Lock()
	s.control.departedCrypt.add(u.crypt.Stats())
	u.decMu.Unlock()
	if u.stored() {
		id, channel := u.userID, u.channel.id
		s.afterUnlock = append(s.afterUnlock, func() {
			if err := s.store.SetLastSeen(id, time.Now(), channel); err != nil {
				s.log.Warn("saving last channel failed", "id", id, "err", err)
			}
		})
	}
	s.log.Info("user left", s.addrAttr([]any{s.logUser("user", u), "reason", c.ended.String()}, c.remote.Addr())...)
}

// logClosed logs, at debug level, the end of a connection whose user (if
// it had one) has already left.
func (s *Server) logClosed(c *conn) {
	var attrs []any
	if c.user != nil {
		attrs = append(attrs, s.logUser("user", c.user))
	}
	attrs = append(attrs, "reason", c.ended.String())
	if c.tlsDetail != "" {
		attrs = append(attrs, "detail", c.tlsDetail)
	}
	s.log.Debug("connection closed", s.addrAttr(attrs, c.remote.Addr())...)
}

// removeUserLocked takes u out of every structure and tells the others.
func (s *Server) removeUserLocked(u *user) {
	s.floorMovedLocked(u, u.channel, nil)
	delete(s.users, u.session)
	s.userCount.Store(int32(len(s.users)))
	if u.channel != nil {
		delete(u.channel.users, u)
	}
	s.peers.remove(u)
	s.sessions.put(u.session)
	s.dropUserListeningLocked(u)
	s.snapDirty = true
	s.broadcastLocked(&mumblepb.UserRemove{Session: ptr(u.session)}, u)
	s.removeIfEmptyTemporaryLocked(u.channel)
}

func sortedLinks(ch *channel) []*channel {
	out := make([]*channel, 0, len(ch.links))
	for l := range ch.links {
		out = append(out, l)
	}
	sortChannels(out)
	return out
}
