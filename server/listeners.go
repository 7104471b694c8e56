package server

// Channel listeners (Mumble 1.4+): a user may listen to channels other
// than their own and hears them with the "listen" context, optionally at
// their own volume (1.5+).

import (
	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// checkListeningLocked checks a user's listening_channel_add against the
// Listen permission and the limits, sending the denial if one fails.
func (s *Server) checkListeningLocked(u *user, m *mumblepb.UserState) bool {
	perChannel, perUser := s.cfg().ListenersPerChannel, s.cfg().ListenersPerUser // -1 unlimited
	adding := 0
	for _, id := range m.ListeningChannelAdd {
		ch, found := s.channels[id]
		if !found {
			continue
		}
		if _, listening := u.listening[ch]; listening {
			continue
		}
		if !s.requireLocked(u, ch, acl.Listen) {
			return false
		}
		if perChannel >= 0 && len(ch.listeners) >= perChannel {
			s.denyType(u, mumblepb.PermissionDenied_ChannelListenerLimit)
			return false
		}
		adding++
		if perUser >= 0 && len(u.listening)+adding > perUser {
			s.denyType(u, mumblepb.PermissionDenied_UserListenerLimit)
			return false
		}
	}
	return true
}

// applyListeningLocked applies listening changes that passed the checks
// and adds what changed to out. Volume adjustments are the listener's own
// business and are not broadcast.
func (s *Server) applyListeningLocked(u *user, m *mumblepb.UserState, out *mumblepb.UserState) {
	for _, id := range m.ListeningChannelRemove {
		if ch, found := s.channels[id]; found {
			if _, listening := u.listening[ch]; listening {
				delete(u.listening, ch)
				delete(ch.listeners, u)
				out.ListeningChannelRemove = append(out.ListeningChannelRemove, id)
			}
		}
	}
	for _, id := range m.ListeningChannelAdd {
		ch, found := s.channels[id]
		if !found {
			continue
		}
		if _, listening := u.listening[ch]; listening {
			continue
		}
		if u.listening == nil {
			u.listening = make(map[*channel]float32)
		}
		u.listening[ch] = 1
		ch.listeners[u] = struct{}{}
		out.ListeningChannelAdd = append(out.ListeningChannelAdd, id)
	}
	for _, adj := range m.ListeningVolumeAdjustment {
		ch, found := s.channels[adj.GetListeningChannel()]
		if !found {
			continue
		}
		if _, listening := u.listening[ch]; listening && adj.GetVolumeAdjustment() > 0 {
			u.listening[ch] = adj.GetVolumeAdjustment()
		}
	}
	s.snapDirty = true
}

// dropListenersLocked stops everyone listening to ch (it is being removed)
// and tells everyone.
func (s *Server) dropListenersLocked(ch *channel) {
	for u := range ch.listeners {
		delete(u.listening, ch)
		s.broadcastLocked(&mumblepb.UserState{Session: ptr(u.session), ListeningChannelRemove: []uint32{ch.id}}, nil)
	}
	clear(ch.listeners)
	s.snapDirty = true
}

// dropUserListeningLocked forgets a leaving user's listeners.
func (s *Server) dropUserListeningLocked(u *user) {
	for ch := range u.listening {
		delete(ch.listeners, u)
	}
	u.listening = nil
}

// listeningIDs returns the channels u listens to, for UserState.
func (u *user) listeningIDs() []uint32 {
	ids := make([]uint32, 0, len(u.listening))
	for ch := range u.listening {
		ids = append(ids, ch.id)
	}
	return ids
}

// restoreListeningLocked gives a user back the channels they listened
// to, after ServerSync (the client needs its own session first): a
// registered user's from the store, as Murmur does, or anyone's from the
// node they were on when it died.
func (s *Server) restoreListeningLocked(u *user, ids []uint32) {
	if len(ids) == 0 {
		return
	}
	m := &mumblepb.UserState{ListeningChannelAdd: ids}
	out := &mumblepb.UserState{Session: ptr(u.session)}
	s.applyListeningLocked(u, m, out)
	if len(out.ListeningChannelAdd) > 0 {
		s.broadcastLocked(out, nil)
	}
}

// saveListeningLocked stores a registered user's listened channels once the
// lock is released, before anyone hears of the change.
func (s *Server) saveListeningLocked(u *user) {
	if !u.stored() {
		return
	}
	id, ids := u.userID, u.listeningIDs()
	s.persistLocked(u, "list of listened channels", func() error { return s.store.SetListeners(id, ids) })
}
