package server

import (
	"strings"

	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// A virtual user is a user the server itself puts in a channel: the voice
// of the channel's mix, and the member whose recording flag tells everyone
// in the channel, in every stock client, that the channel is recorded.
// It has a session like anyone else, so clients list it and play its
// voice, but no connection: it never receives, and nothing a client asks
// of it (moving, muting, messaging it) finds a user to act on.
type virtualUser struct {
	session   uint32
	name      string
	channel   *channel
	mixing    bool // it speaks the channel's mix
	recording bool
}

func (v *virtualUser) stateMessage() *mumblepb.UserState {
	// The flag is always said: a client keeps a flag a message leaves out,
	// so one that went down would stay up.
	return &mumblepb.UserState{
		Session:   ptr(v.session),
		Name:      ptr(v.name),
		ChannelId: ptr(v.channel.id),
		Recording: ptr(v.recording),
	}
}

// virtualName is the name of a channel's virtual user: the channel's name
// and what the user is there for, so that nobody takes it for a person.
func virtualName(ch *channel, mixing bool) string {
	if mixing {
		return ch.name + " (mix)"
	}
	return ch.name + " (recorder)"
}

// setVirtualLocked gives ch a virtual user with the given role, changes
// the one it has, or (want false) removes it, and tells every client.
func (s *Server) setVirtualLocked(ch *channel, want, mixing, recording bool) {
	v := ch.virtual
	if !want {
		if v != nil {
			s.removeVirtualLocked(v)
		}
		return
	}
	name := virtualName(ch, mixing)
	if v == nil {
		session, ok := s.sessions.get()
		if !ok {
			s.log.Error("no session left for a channel's virtual user", "channel", ch.name)
			return
		}
		v = &virtualUser{session: session, channel: ch}
		ch.virtual = v
		s.virtual[session] = v
	} else if v.name == name && v.recording == recording {
		return
	}
	v.name, v.mixing, v.recording = name, mixing, recording
	s.snapDirty = true
	s.broadcastLocked(v.stateMessage(), nil)
}

// renameVirtualLocked follows a rename of ch in its virtual user's name.
func (s *Server) renameVirtualLocked(ch *channel) {
	if v := ch.virtual; v != nil {
		s.setVirtualLocked(ch, true, v.mixing, v.recording)
	}
}

func (s *Server) removeVirtualLocked(v *virtualUser) {
	delete(s.virtual, v.session)
	v.channel.virtual = nil
	s.sessions.put(v.session)
	s.snapDirty = true
	s.broadcastLocked(&mumblepb.UserRemove{Session: ptr(v.session)}, nil)
}

// isVirtualNameLocked reports whether name is taken by a virtual user, so
// that no client can log in as a channel's mix or recorder.
func (s *Server) isVirtualNameLocked(name string) bool {
	for _, v := range s.virtual {
		if strings.EqualFold(v.name, name) {
			return true
		}
	}
	return false
}
