package server

import (
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
)

// handle dispatches one control frame. Unknown types and bodies that do not
// parse are ignored, as Murmur does; so is almost everything sent before
// authentication.
func (s *Server) handle(c *conn, t control.Type, payload []byte) {
	if t == control.UDPTunnel {
		if c.user != nil {
			s.handleTunnel(c, payload)
		}
		return
	}
	msg, err := control.Unmarshal(t, payload)
	if err != nil {
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
		s.requireOrDeny(u, m.GetChannelId(), acl.Write, "removing channels")
	case *mumblepb.ACL:
		s.handleACL(u, m)
	case *mumblepb.BanList:
		s.requireOrDeny(u, 0, acl.Ban, "the ban list")
	case *mumblepb.UserList:
		s.requireOrDeny(u, 0, acl.Register, "the user list")
	}
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
// anything the voice path reads, then releases the lock.
func (s *Server) unlock() {
	if s.snapDirty {
		s.publishLocked()
	}
	s.mu.Unlock()
}

// permissions is the single permission check of the server: every decision
// Murmur takes by permission goes through it.
func (s *Server) permissions(u *user, ch *channel) acl.Permission {
	return s.policy.Permissions(serverTree{s}, u.subject, ch.id)
}

func (s *Server) may(u *user, ch *channel, p acl.Permission) bool {
	return s.permissions(u, ch).Has(p)
}

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

// requireOrDeny answers administrative requests that need a permission the
// open policy never grants. With a policy that grants it, the client is told
// that the feature itself is not available on this server yet.
func (s *Server) requireOrDeny(u *user, channelID uint32, p acl.Permission, what string) {
	s.mu.Lock()
	defer s.unlock()
	ch, ok := s.channels[channelID]
	if !ok {
		return
	}
	if !s.may(u, ch, p) {
		s.deny(u, p, ch)
		return
	}
	u.conn.send(&mumblepb.PermissionDenied{
		Type:   mumblepb.PermissionDenied_Text.Enum(),
		Reason: ptr("This server does not support " + what + " yet."),
	})
}

// broadcastLocked sends m to every authenticated user except one (nil for
// none). The frame is marshalled once and shared.
func (s *Server) broadcastLocked(m proto.Message, except *user) {
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
func (s *Server) placeLocked(u *user, ch *channel) {
	if u.channel != nil {
		delete(u.channel.users, u)
	}
	u.channel = ch
	ch.users[u] = struct{}{}
	u.prioritySpeak = false
	u.refreshSubject()
	u.suppress = !s.may(u, ch, acl.Speak)
	s.snapDirty = true
}

func (s *Server) handlePing(u *user, m *mumblepb.Ping) {
	u.tcpPackets.Add(1)
	u.decMu.Lock()
	st := u.crypt.Stats()
	u.decMu.Unlock()
	s.mu.Lock()
	u.clientStats = m
	s.mu.Unlock()
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
		c.router = newRouter()
	}
	s.routeVoice(c.router, u, payload, time.Now().UnixNano())
}

// Self-only UserState fields: setting them for someone else drops the whole
// message, as in Murmur.
func hasSelfOnlyFields(m *mumblepb.UserState) bool {
	return m.SelfMute != nil || m.SelfDeaf != nil || m.PluginContext != nil || m.PluginIdentity != nil ||
		m.Recording != nil || len(m.ListeningChannelAdd) > 0 || len(m.ListeningChannelRemove) > 0 ||
		len(m.ListeningVolumeAdjustment) > 0
}

func (s *Server) handleUserState(actor *user, m *mumblepb.UserState) {
	s.mu.Lock()
	defer s.unlock()
	target := actor
	if m.Session != nil {
		t, ok := s.users[m.GetSession()]
		if !ok {
			return
		}
		target = t
	}
	if target != actor && hasSelfOnlyFields(m) {
		return
	}
	if m.Name != nil {
		actor.conn.send(&mumblepb.PermissionDenied{Type: mumblepb.PermissionDenied_UserName.Enum(), Name: m.Name})
		return
	}
	var dest *channel
	if m.ChannelId != nil {
		ch, ok := s.channels[m.GetChannelId()]
		if !ok || ch == target.channel {
			return
		}
		if !s.checkMoveLocked(actor, target, ch) {
			return
		}
		dest = ch
	}
	adminFlags := m.Mute != nil || m.Deaf != nil || m.Suppress != nil || m.PrioritySpeaker != nil
	if adminFlags {
		if !s.may(actor, target.channel, acl.MuteDeafen) {
			s.deny(actor, acl.MuteDeafen, target.channel)
			return
		}
		if m.GetSuppress() {
			s.deny(actor, acl.MuteDeafen, target.channel) // suppress can only be lifted
			return
		}
	}
	if (m.Comment != nil || m.Texture != nil) && target != actor {
		if !s.may(actor, s.root, acl.ResetUserContent) {
			s.deny(actor, acl.ResetUserContent, s.root)
			return
		}
		if m.GetComment() != "" || len(m.Texture) > 0 {
			s.denyType(actor, mumblepb.PermissionDenied_TextTooLong) // others' content may only be cleared
			return
		}
	}
	if m.Comment != nil && !s.textAllowed(m.GetComment()) {
		s.denyType(actor, mumblepb.PermissionDenied_TextTooLong)
		return
	}
	if m.Texture != nil && s.cfg.ImageMessageLength > 0 && len(m.Texture) > s.cfg.ImageMessageLength {
		s.denyType(actor, mumblepb.PermissionDenied_TextTooLong)
		return
	}
	s.applyUserStateLocked(actor, target, m, dest)
}

// checkMoveLocked applies Murmur's rules for moving target (maybe the actor
// itself) into ch, sending the denial if it fails.
func (s *Server) checkMoveLocked(actor, target *user, ch *channel) bool {
	if actor != target {
		if !s.may(actor, target.channel, acl.Move) {
			s.deny(actor, acl.Move, target.channel)
			return false
		}
		if !s.may(actor, ch, acl.Move) && !s.may(target, ch, acl.Enter) {
			s.deny(actor, acl.Move, ch)
			return false
		}
	} else if !s.may(actor, ch, acl.Enter) {
		s.deny(actor, acl.Enter, ch)
		return false
	}
	if s.isFull(ch) && !s.may(actor, ch, acl.Write) {
		s.denyType(actor, mumblepb.PermissionDenied_ChannelFull)
		return false
	}
	return true
}

// applyUserStateLocked changes target as m asks (all checks passed) and
// broadcasts what changed.
func (s *Server) applyUserStateLocked(actor, target *user, m *mumblepb.UserState, dest *channel) {
	out := &mumblepb.UserState{Session: ptr(target.session), Actor: ptr(actor.session)}
	changed := false
	set := func(field *bool, v bool, msgField **bool) {
		*field = v
		*msgField = ptr(v)
		changed = true
	}
	if m.SelfDeaf != nil {
		set(&target.selfDeaf, m.GetSelfDeaf(), &out.SelfDeaf)
		if target.selfDeaf {
			set(&target.selfMute, true, &out.SelfMute)
		}
	}
	if m.SelfMute != nil {
		set(&target.selfMute, m.GetSelfMute(), &out.SelfMute)
		if !target.selfMute && target.selfDeaf {
			set(&target.selfDeaf, false, &out.SelfDeaf)
		}
	}
	if m.Deaf != nil {
		set(&target.deaf, m.GetDeaf(), &out.Deaf)
		if target.deaf {
			set(&target.mute, true, &out.Mute)
		}
	}
	if m.Mute != nil {
		set(&target.mute, m.GetMute(), &out.Mute)
		if !target.mute && target.deaf {
			set(&target.deaf, false, &out.Deaf)
		}
	}
	if m.Suppress != nil { // only false gets here
		set(&target.suppress, false, &out.Suppress)
	}
	if m.PrioritySpeaker != nil {
		set(&target.prioritySpeak, m.GetPrioritySpeaker(), &out.PrioritySpeaker)
	}
	if m.Recording != nil && m.GetRecording() != target.recording {
		set(&target.recording, m.GetRecording(), &out.Recording)
	}
	if m.PluginContext != nil {
		target.pluginContext = append([]byte(nil), m.PluginContext...) // stored, never broadcast
	}
	if m.PluginIdentity != nil {
		target.pluginIdentity = m.GetPluginIdentity()
	}
	if m.Comment != nil {
		target.comment = m.GetComment()
		target.commentHash = blobHash(target.comment)
		if target.commentHash != nil {
			out.CommentHash = target.commentHash
		} else {
			out.Comment = ptr(target.comment)
		}
		changed = true
	}
	if m.Texture != nil {
		target.texture = append([]byte(nil), m.Texture...)
		target.textureHash = nil
		if len(target.texture) >= blobThreshold {
			target.textureHash = sha1Sum(target.texture)
			out.TextureHash = target.textureHash
		} else {
			out.Texture = target.texture
		}
		changed = true
	}
	s.snapDirty = true
	if dest != nil {
		wasSuppressed := target.suppress
		s.placeLocked(target, dest)
		out.ChannelId = ptr(dest.id)
		if target.suppress != wasSuppressed {
			out.Suppress = ptr(target.suppress)
		}
		changed = true
		target.conn.send(&mumblepb.PermissionQuery{ChannelId: ptr(dest.id), Permissions: ptr(uint32(s.permissions(target, dest)))})
		if dest.parent != nil {
			target.conn.send(&mumblepb.PermissionQuery{ChannelId: ptr(dest.parent.id), Permissions: ptr(uint32(s.permissions(target, dest.parent)))})
		}
	}
	if changed {
		s.broadcastLocked(out, nil)
	}
}

var imgTag = regexp.MustCompile(`(?is)<img\b[^>]*>`)

// textAllowed applies Murmur's length limits (counted in UTF-16 units, as Qt
// does). With HTML allowed, images may use the larger image limit as long as
// the text around them fits the text limit.
func (s *Server) textAllowed(text string) bool {
	textLimit, imageLimit := s.cfg.TextMessageLength, s.cfg.ImageMessageLength
	n := utf16Len(text)
	if !s.cfg.AllowHTML {
		return textLimit == 0 || n <= textLimit
	}
	if textLimit == 0 && imageLimit == 0 {
		return true
	}
	if imageLimit > 0 && n > imageLimit {
		return false
	}
	if textLimit == 0 || n <= textLimit {
		return true
	}
	if !strings.Contains(text, "<") {
		return false
	}
	return utf16Len(imgTag.ReplaceAllString(text, "<img>")) <= textLimit
}

func (s *Server) handleTextMessage(sender *user, m *mumblepb.TextMessage) {
	text := m.GetMessage()
	if text == "" {
		return
	}
	if !s.textAllowed(text) {
		s.denyType(sender, mumblepb.PermissionDenied_TextTooLong)
		return
	}
	s.mu.Lock()
	defer s.unlock()
	recipients := make(map[*user]struct{})
	for _, id := range m.ChannelId {
		ch, ok := s.channels[id]
		if !ok {
			return // an unknown channel drops the whole message, as in Murmur
		}
		if !s.may(sender, ch, acl.TextMessage) {
			s.deny(sender, acl.TextMessage, ch)
			return
		}
		for u := range ch.users {
			recipients[u] = struct{}{}
		}
	}
	for _, id := range m.TreeId {
		ch, ok := s.channels[id]
		if !ok {
			return
		}
		if !s.may(sender, ch, acl.TextMessage) {
			s.deny(sender, acl.TextMessage, ch)
			return
		}
		s.addTreeRecipients(sender, ch, recipients)
	}
	for _, session := range m.Session {
		u, ok := s.users[session]
		if !ok {
			continue
		}
		if !s.may(sender, u.channel, acl.TextMessage) {
			s.deny(sender, acl.TextMessage, u.channel)
			return
		}
		recipients[u] = struct{}{}
	}
	delete(recipients, sender)
	if len(recipients) == 0 {
		return
	}
	out := &mumblepb.TextMessage{
		Actor:     ptr(sender.session),
		Session:   m.Session,
		ChannelId: m.ChannelId,
		TreeId:    m.TreeId,
		Message:   m.Message,
	}
	frame, err := control.Marshal(out)
	if err != nil {
		return
	}
	for u := range recipients {
		u.conn.sendFrame(frame)
	}
}

// addTreeRecipients adds the users of ch and of every subchannel where the
// sender may text; a subchannel without permission is skipped with its
// subtree.
func (s *Server) addTreeRecipients(sender *user, ch *channel, into map[*user]struct{}) {
	for u := range ch.users {
		into[u] = struct{}{}
	}
	for _, child := range ch.children {
		if s.may(sender, child, acl.TextMessage) {
			s.addTreeRecipients(sender, child, into)
		}
	}
}

func (s *Server) handleRequestBlob(u *user, m *mumblepb.RequestBlob) {
	s.mu.Lock()
	defer s.unlock()
	for _, session := range m.SessionTexture {
		if other, ok := s.users[session]; ok && len(other.texture) > 0 {
			u.conn.send(&mumblepb.UserState{Session: ptr(session), Texture: other.texture})
		}
	}
	for _, session := range m.SessionComment {
		if other, ok := s.users[session]; ok && other.comment != "" {
			u.conn.send(&mumblepb.UserState{Session: ptr(session), Comment: ptr(other.comment)})
		}
	}
	for _, id := range m.ChannelDescription {
		if ch, ok := s.channels[id]; ok && ch.description != "" {
			u.conn.send(&mumblepb.ChannelState{ChannelId: ptr(id), Description: ptr(ch.description)})
		}
	}
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
			if _, ok := s.users[session]; ok {
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
	u.conn.send(&mumblepb.PermissionQuery{ChannelId: ptr(ch.id), Permissions: ptr(uint32(s.permissions(u, ch)))})
}

func (s *Server) handleUserStats(requester *user, m *mumblepb.UserStats) {
	s.mu.Lock()
	defer s.unlock()
	target := requester
	if m.Session != nil {
		t, ok := s.users[m.GetSession()]
		if !ok {
			return
		}
		target = t
	}
	extend := target == requester || s.may(requester, s.root, acl.Register)
	if !extend && !s.may(requester, target.channel, acl.Enter) {
		s.deny(requester, acl.Enter, target.channel)
		return
	}
	local := extend || target.channel == requester.channel
	details := extend && !m.GetStatsOnly()
	now := time.Now()
	out := &mumblepb.UserStats{
		Session:    ptr(target.session),
		UdpPackets: ptr(target.udpPackets.Load()),
		TcpPackets: ptr(target.tcpPackets.Load()),
		Onlinesecs: ptr(uint32(now.Sub(target.connected) / time.Second)),
	}
	if cs := target.clientStats; cs != nil {
		out.UdpPingAvg, out.UdpPingVar = cs.UdpPingAvg, cs.UdpPingVar
		out.TcpPingAvg, out.TcpPingVar = cs.TcpPingAvg, cs.TcpPingVar
	}
	if local {
		target.decMu.Lock()
		st := target.crypt.Stats()
		target.decMu.Unlock()
		out.FromClient = &mumblepb.UserStats_Stats{Good: ptr(st.Good), Late: ptr(st.Late), Lost: ptr(st.Lost), Resync: ptr(st.Resync)}
		if cs := target.clientStats; cs != nil {
			out.FromServer = &mumblepb.UserStats_Stats{Good: cs.Good, Late: cs.Late, Lost: cs.Lost, Resync: cs.Resync}
		}
		out.Idlesecs = ptr(uint32(now.Sub(time.Unix(0, target.lastActive.Load())) / time.Second))
	}
	if details {
		for _, cert := range target.conn.tc.ConnectionState().PeerCertificates {
			out.Certificates = append(out.Certificates, cert.Raw)
		}
		out.StrongCertificate = ptr(false)
		out.Version = &mumblepb.Version{
			VersionV1: ptr(control.VersionV1(target.version)),
			VersionV2: ptr(target.version),
			Release:   ptr(target.release),
			Os:        ptr(target.os),
			OsVersion: ptr(target.osVersion),
		}
		out.Opus = ptr(target.opus)
		addr := target.conn.remote.Addr().As16()
		out.Address = addr[:]
	}
	requester.conn.send(out)
}

func (s *Server) handleQueryUsers(u *user, m *mumblepb.QueryUsers) {
	// Nobody is registered yet, so there is nothing to resolve; answer
	// anyway so the client's ACL editor does not wait.
	u.conn.send(&mumblepb.QueryUsers{})
}

// handleUserRemove kicks (and, once bans exist, bans) a user.
func (s *Server) handleUserRemove(actor *user, m *mumblepb.UserRemove) {
	s.mu.Lock()
	defer s.unlock()
	target, ok := s.users[m.GetSession()]
	if !ok {
		return
	}
	need := acl.Kick | acl.Ban
	if m.GetBan() {
		need = acl.Ban
	}
	if !s.may(actor, s.root, need) {
		s.deny(actor, need, s.root)
		return
	}
	if m.GetBan() {
		actor.conn.send(&mumblepb.PermissionDenied{Type: mumblepb.PermissionDenied_Text.Enum(), Reason: ptr("This server does not support bans yet.")})
		return
	}
	out := &mumblepb.UserRemove{Session: ptr(target.session), Actor: ptr(actor.session), Reason: m.Reason}
	target.conn.sendAndClose(out)
	s.removeUserLocked(target)
	s.broadcastLocked(out, target)
	s.log.Info("user kicked", "session", target.session, "user", target.name, "by", actor.name)
}

func (s *Server) handleChannelState(u *user, m *mumblepb.ChannelState) {
	if m.ChannelId == nil {
		perm := acl.MakeChannel
		if m.GetTemporary() {
			perm = acl.MakeTempChannel
		}
		s.requireOrDeny(u, m.GetParent(), perm, "creating channels")
		return
	}
	s.requireOrDeny(u, m.GetChannelId(), acl.Write, "editing channels")
}

func (s *Server) handleACL(u *user, m *mumblepb.ACL) {
	s.mu.Lock()
	ch, ok := s.channels[m.GetChannelId()]
	allowed := ok && (s.may(u, ch, acl.Write) || s.may(u, s.root, acl.Write))
	if ok && !allowed {
		s.deny(u, acl.Write, ch)
	}
	s.mu.Unlock()
	if allowed {
		s.requireOrDeny(u, ch.id, acl.Write, "editing ACLs")
	}
}
