package server

// UserState: self mute/deaf, moves, admin flags, comments and textures.

import (
	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/store"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Self-only UserState fields: setting them for someone else drops the whole
// message, as in Murmur.
func hasSelfOnlyFields(m *mumblepb.UserState) bool {
	return m.SelfMute != nil || m.SelfDeaf != nil || m.PluginContext != nil || m.PluginIdentity != nil ||
		m.Recording != nil || len(m.ListeningChannelAdd) > 0 || len(m.ListeningChannelRemove) > 0 ||
		len(m.ListeningVolumeAdjustment) > 0
}

func (s *Server) handleUserState(actor *user, m *mumblepb.UserState) {
	if m.UserId != nil {
		s.handleRegister(actor, m)
		m.UserId = nil
		if len(protoFields(m)) <= 1 {
			return // the registration was all there was
		}
	}
	s.mu.Lock()
	defer s.unlock()
	target := actor
	if m.Session != nil {
		t, ok := s.users[m.GetSession()]
		if r, remote := s.remote[m.GetSession()]; !ok && remote {
			s.userStateToRemoteLocked(actor, r, m)
			return
		}
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
		if !s.requireLocked(actor, target.channel, acl.MuteDeafen) {
			return
		}
		if m.GetSuppress() && !actor.isAPI() {
			s.deny(actor, acl.MuteDeafen, target.channel) // suppress can only be lifted (Murmur's Ice may set it)
			return
		}
	}
	if (m.Comment != nil || m.Texture != nil) && target != actor {
		if !s.requireLocked(actor, s.root, acl.ResetUserContent) {
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
	if m.Texture != nil && s.cfg().ImageMessageLength > 0 && len(m.Texture) > s.cfg().ImageMessageLength {
		s.denyType(actor, mumblepb.PermissionDenied_TextTooLong)
		return
	}
	if !s.checkListeningLocked(target, m) {
		return
	}
	s.applyUserStateLocked(actor, target, m, dest)
}

// checkMoveLocked applies Murmur's rules for moving target (maybe the actor
// itself) into ch, sending the denial if it fails.
func (s *Server) checkMoveLocked(actor, target *user, ch *channel) bool {
	if actor != target {
		if !s.requireLocked(actor, target.channel, acl.Move) {
			return false
		}
		// Without Move in ch, the actor may still take target where
		// target may enter; the denial names the actor's Move.
		if !s.may(target, ch, acl.Enter) && !s.requireLocked(actor, ch, acl.Move) {
			return false
		}
	} else if !s.requireLocked(actor, ch, acl.Enter) {
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
	out := &mumblepb.UserState{Session: ptr(target.session), Actor: actorOf(actor)}
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
	if m.Suppress != nil { // only false gets here, but from the admin API
		set(&target.suppress, m.GetSuppress(), &out.Suppress)
	}
	if m.PrioritySpeaker != nil {
		set(&target.prioritySpeak, m.GetPrioritySpeaker(), &out.PrioritySpeaker)
		if target.channel.floor != nil { // in a hall, priority speakers may speak
			if suppress := !s.mayTalkLocked(target, target.channel); suppress != target.suppress {
				set(&target.suppress, suppress, &out.Suppress)
			}
		}
	}
	if m.Recording != nil && m.GetRecording() != target.recording {
		set(&target.recording, m.GetRecording(), &out.Recording)
	}
	if len(m.ListeningChannelAdd) > 0 || len(m.ListeningChannelRemove) > 0 || len(m.ListeningVolumeAdjustment) > 0 {

		s.applyListeningLocked(target, m, out)
		if len(out.ListeningChannelAdd) > 0 || len(out.ListeningChannelRemove) > 0 {
			changed = true
			s.saveListeningLocked(target)
		}
	}
	if m.PluginContext != nil {
		target.pluginContext = append([]byte(nil), m.PluginContext...) // stored, never broadcast
	}
	if m.PluginIdentity != nil {
		target.pluginIdentity = m.GetPluginIdentity()
	}

	if (m.Comment != nil || m.Texture != nil) && target.userID >= 0 && !store.IsExternalID(target.userID) {
		id, comment, texture := target.userID, m.Comment, m.Texture
		if texture == nil && m.Texture != nil {
			texture = []byte{}
		}
		s.persistLocked(actor, "comment or avatar", func() error { return s.persistUserState(id, comment, texture) })
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
	var left *channel
	if dest != nil {
		left = s.enterLocked(target, dest, out)
		changed = true
	}
	if changed {
		s.broadcastLocked(out, nil)
	}
	s.removeIfEmptyTemporaryLocked(left)
}

// protoFields lists the fields set in m.
func protoFields(m proto.Message) []protoreflect.FieldDescriptor {
	var fields []protoreflect.FieldDescriptor
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		fields = append(fields, fd)
		return true
	})
	return fields
}
