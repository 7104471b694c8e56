package server

// Actions between nodes: a text message to users of another node, a move,
// mute or kick of a remote user. The actor's node checks the permissions
// (it has the same tree and ACLs, and the remote user's subject), then
// sends the command to the target's node, which carries it out as if
// its own user had been acted on by the actor.

import (
	"strings"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// Command is an action for the users of one node, from a user of another.
type Command struct {
	Kind     string   `json:"kind"` // "text", "state", "remove" or "replace" (a login elsewhere)
	Actor    uint32   `json:"actor"`
	Sessions []uint32 `json:"sessions,omitempty"` // text: the recipients on that node
	Target   uint32   `json:"target,omitempty"`   // state, remove: whom

	// text: the message, and the channels and trees it was sent to, by path
	Message  string   `json:"message,omitempty"`
	Channels []string `json:"channels,omitempty"`
	Trees    []string `json:"trees,omitempty"`

	// state: the move (a path) and the admin flags
	Channel         *string `json:"channel,omitempty"`
	Mute            *bool   `json:"mute,omitempty"`
	Deaf            *bool   `json:"deaf,omitempty"`
	Suppress        *bool   `json:"suppress,omitempty"`
	PrioritySpeaker *bool   `json:"priority_speaker,omitempty"`

	// remove: why, and whether it is a ban
	Reason string `json:"reason,omitempty"`
	Ban    bool   `json:"ban,omitempty"`
}

// CommandSender is implemented by a ClusterLink that carries commands.
type CommandSender interface {
	SendCommand(node uint16, c Command)
}

// shadow is a remote user as a *user, for the permission checks that the
// actor's node makes (they read the session, channel and subject).
func (r *remoteUser) shadow() *user {
	return &user{session: r.Session, name: r.Name, userID: r.UserID, certHash: r.CertHash,
		strong: r.Strong, tokens: r.Tokens, channel: r.channel, subject: r.subject}
}

// sendCommandLocked hands c for node to the cluster after the lock is
// released.
func (s *Server) sendCommandLocked(node uint16, c Command) {
	cs, ok := s.cluster.(CommandSender)
	if !ok {
		return
	}
	s.afterUnlock = append(s.afterUnlock, func() { cs.SendCommand(node, c) })
}

// textToRemoteLocked sends a text message to the remote users among its
// recipients, one command per node. channels and trees are the channels
// it was sent to; sessions the users named.
func (s *Server) textToRemoteLocked(sender *user, m *mumblepb.TextMessage, channels, trees map[*channel]bool, sessions []uint32) {
	if s.cluster == nil || len(s.remote) == 0 {
		return
	}
	byNode := map[uint16][]uint32{}
	for _, r := range s.remote {
		if channels[r.channel] || trees[r.channel] {
			byNode[r.node] = append(byNode[r.node], r.Session)
			continue
		}
		for _, ch := range r.listening {
			if channels[ch] {
				byNode[r.node] = append(byNode[r.node], r.Session)
				break
			}
		}
	}
	for _, session := range sessions {
		if r, ok := s.remote[session]; ok {
			byNode[r.node] = append(byNode[r.node], session)
		}
	}
	if len(byNode) == 0 {
		return
	}
	c := Command{Kind: "text", Actor: sender.session, Message: m.GetMessage()}
	for _, id := range m.ChannelId {
		if ch, ok := s.channels[id]; ok {
			p, _ := s.pathOfLocked(ch)
			c.Channels = append(c.Channels, p)
		}
	}
	for _, id := range m.TreeId {
		if ch, ok := s.channels[id]; ok {
			p, _ := s.pathOfLocked(ch)
			c.Trees = append(c.Trees, p)
		}
	}
	for node, list := range byNode {
		c := c
		c.Sessions = dedupe(list)
		s.sendCommandLocked(node, c)
	}
}

func dedupe(list []uint32) []uint32 {
	seen := map[uint32]bool{}
	out := list[:0]
	for _, v := range list {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// replaceRemoteGhostsLocked asks the nodes of remote users who are the
// person logging in here (same registration or certificate) to end those
// sessions, as a single server replaces a ghost: someone whose network
// changed reconnects elsewhere before their old connection timed out. It
// returns those sessions.
func (s *Server) replaceRemoteGhostsLocked(name string, userID int64, certHash string) (sessions []uint32) {
	for _, r := range s.remoteGhostsLocked(name, userID, certHash) {
		s.sendCommandLocked(r.node, Command{Kind: "replace", Target: r.Session})
		sessions = append(sessions, r.Session)
	}
	return sessions
}

// remoteGhostsLocked are the remote users who are the person logging in
// here: the same name, and the same registration or certificate.
func (s *Server) remoteGhostsLocked(name string, userID int64, certHash string) []*remoteUser {
	var ghosts []*remoteUser
	for _, r := range s.remote {
		if strings.EqualFold(r.Name, name) && ((userID >= 0 && r.UserID == userID) || (certHash != "" && r.CertHash == certHash)) {
			ghosts = append(ghosts, r)
		}
	}
	return ghosts
}

// RunCommand carries out a command another node sent for users of this
// one. Permissions were checked by the actor's node.
func (s *Server) RunCommand(c Command) {
	s.mu.Lock()
	defer s.unlock()
	if c.Kind == "replace" {
		if target, ok := s.users[c.Target]; ok {
			target.conn.sendAndClose(&mumblepb.UserRemove{Session: &target.session, Reason: ptr("You connected to the server from another device")}, reasonReplaced)
			target.replaced = true // their new session's node takes over their floor place
			s.removeUserLocked(target)
			s.log.Info("user replaced by a login on another node", s.logUser("user", target))
		}
		return
	}
	actor, ok := s.remote[c.Actor]
	if !ok {
		return // the actor left meanwhile, or is not known here yet
	}
	switch c.Kind {
	case "text":
		s.runTextLocked(actor, c)
	case "state":
		s.runStateLocked(actor, c)
	case "remove":
		s.runRemoveLocked(actor, c)
	}
}

func (s *Server) runTextLocked(actor *remoteUser, c Command) {
	paths := s.livePathsLocked()
	out := &mumblepb.TextMessage{Actor: ptr(actor.Session), Message: ptr(c.Message)}
	for _, p := range c.Channels {
		if ch, ok := paths[p]; ok {
			out.ChannelId = append(out.ChannelId, ch.id)
		}
	}
	for _, p := range c.Trees {
		if ch, ok := paths[p]; ok {
			out.TreeId = append(out.TreeId, ch.id)
		}
	}
	if len(out.ChannelId) == 0 && len(out.TreeId) == 0 {
		out.Session = c.Sessions // a private message: clients show it as one
	}
	frame, err := control.Marshal(out)
	if err != nil {
		return
	}
	for _, session := range c.Sessions {
		if u, ok := s.users[session]; ok {
			u.conn.sendFrame(frame)
		}
	}
}

func (s *Server) runStateLocked(actor *remoteUser, c Command) {
	target, ok := s.users[c.Target]
	if !ok {
		return
	}
	m := &mumblepb.UserState{Mute: c.Mute, Deaf: c.Deaf, Suppress: c.Suppress, PrioritySpeaker: c.PrioritySpeaker}
	var dest *channel
	if c.Channel != nil {
		dest = s.livePathsLocked()[*c.Channel]
		if dest == nil || dest == target.channel {
			dest = nil
		}
	}
	s.applyUserStateLocked(actor.shadow(), target, m, dest)
}

func (s *Server) runRemoveLocked(actor *remoteUser, c Command) {
	target, ok := s.users[c.Target]
	if !ok || target.userID == 0 {
		return
	}
	out := &mumblepb.UserRemove{Session: ptr(target.session), Actor: ptr(actor.Session), Reason: ptr(c.Reason), Ban: ptr(c.Ban)}
	reason := reasonKicked
	if c.Ban {
		reason = reasonBanned
		t, r := target, c.Reason
		s.afterUnlock = append(s.afterUnlock, func() {
			if err := s.banUser(t, r); err != nil {
				s.log.Error("saving a ban from another node failed", "err", err)
			}
		})
	}
	target.conn.sendAndClose(out, reason)
	s.removeUserLocked(target)
	s.broadcastLocked(out, target)
	s.log.Info("user removed from another node", s.logUser("user", target), "reason", reason.String())
}

// userStateToRemoteLocked checks a move or admin flags of a remote user
// as for a local one and sends them to the user's node. Self-only fields,
// names, comments and textures of remote users are not carried.
func (s *Server) userStateToRemoteLocked(actor *user, r *remoteUser, m *mumblepb.UserState) {
	if hasSelfOnlyFields(m) || m.Name != nil || m.Comment != nil || m.Texture != nil {
		return
	}
	target := r.shadow()
	c := Command{Kind: "state", Actor: actor.session, Target: r.Session,
		Mute: m.Mute, Deaf: m.Deaf, Suppress: m.Suppress, PrioritySpeaker: m.PrioritySpeaker}
	if m.ChannelId != nil {
		ch, ok := s.channels[m.GetChannelId()]
		if !ok || ch == r.channel || !s.checkMoveLocked(actor, target, ch) {
			return
		}
		p, _ := s.pathOfLocked(ch)
		c.Channel = &p
	}
	if m.Mute != nil || m.Deaf != nil || m.Suppress != nil || m.PrioritySpeaker != nil {
		if !s.requireLocked(actor, r.channel, acl.MuteDeafen) {
			return
		}
		if m.GetSuppress() {
			s.deny(actor, acl.MuteDeafen, r.channel)
			return
		}
	}
	if c.Channel == nil && c.Mute == nil && c.Deaf == nil && c.Suppress == nil && c.PrioritySpeaker == nil {
		return
	}
	s.sendCommandLocked(r.node, c)
}

// removeRemoteUserLocked checks a kick or ban of a remote user and sends
// it to the user's node.
func (s *Server) removeRemoteUserLocked(actor *user, r *remoteUser, m *mumblepb.UserRemove, need acl.Permission) {
	if r.UserID == 0 {
		s.deny(actor, need, s.root) // nobody removes SuperUser
		return
	}
	if !s.requireLocked(actor, s.root, need) {
		return
	}
	s.sendCommandLocked(r.node, Command{Kind: "remove", Actor: actor.session, Target: r.Session, Reason: m.GetReason(), Ban: m.GetBan()})
	s.log.Info("user on another node removed", "session", r.Session, s.logUser("by", actor))
}
