package server

// The admin API's event stream (admin.API.Subscribe): what the server
// tells every client (users arriving, leaving, changing state; channels
// made, changed, removed) is read off broadcastLocked, so no change
// escapes it; floor changes and text messages, which are not broadcast,
// are noted where they happen. Text goes in only with admin_events_text.
//
// Events are made under the world lock and handed to each subscriber's
// buffered channel without waiting: a subscriber that falls
// eventBuffer events behind is dropped (its channel closed), never
// waited for.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"google.golang.org/protobuf/proto"
)

// eventBuffer is how far a subscriber may fall behind.
const eventBuffer = 1024

// eventHub hands events to the subscribers. names, the connected users'
// names by session (for the event of their leaving, when the user is
// gone already), is kept under the world lock.
type eventHub struct {
	mu    sync.Mutex
	subs  map[chan admin.Event]struct{}
	seq   uint64
	count atomic.Int32

	names map[uint32]string // under Server.mu
}

func (h *eventHub) active() bool { return h.count.Load() > 0 }

func (h *eventHub) subscribe() (<-chan admin.Event, func()) {
	ch := make(chan admin.Event, eventBuffer)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan admin.Event]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.count.Add(1)
	h.mu.Unlock()
	return ch, func() { h.drop(ch) }
}

// drop ends a subscription; the first call closes its channel.
func (h *eventHub) drop(ch chan admin.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		h.count.Add(-1)
		close(ch)
	}
}

func (h *eventHub) publish(e admin.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	e.Seq, e.Time = h.seq, time.Now().UTC()
	for ch := range h.subs {
		select {
		case ch <- e:
		default: // too far behind: it ends, and the reader sees why
			delete(h.subs, ch)
			h.count.Add(-1)
			close(ch)
		}
	}
}

// Subscribe implements admin.API.
func (a apiServer) Subscribe() (<-chan admin.Event, func()) { return a.s.events.subscribe() }

// noteBroadcastLocked turns a broadcast into an event. The names of
// users are noted even without subscribers, so that a stream opened
// later names whoever leaves.
func (s *Server) noteBroadcastLocked(m proto.Message) {
	h := &s.events
	switch m := m.(type) {
	case *mumblepb.UserState:
		u, ok := s.users[m.GetSession()]
		if !ok {
			return // a virtual user, or gone
		}
		if m.Name != nil {
			if h.names == nil {
				h.names = map[uint32]string{}
			}
			h.names[u.session] = u.name
			if h.active() {
				h.publish(admin.Event{Type: "user.connected", Session: u.session, Name: u.name, Channel: ptr(u.channel.id), ChannelPath: s.pathLocked(u.channel)})
			}
			return
		}
		if h.active() {
			s.noteUserStateLocked(u, m)
		}
	case *mumblepb.UserRemove:
		name, known := h.names[m.GetSession()]
		if m.Reason == nil && m.Ban == nil {
			delete(h.names, m.GetSession())
			if known && h.active() {
				h.publish(admin.Event{Type: "user.left", Session: m.GetSession(), Name: name})
			}
			return
		}
		if h.active() {
			h.publish(admin.Event{Type: "user.removed", Session: m.GetSession(), Reason: m.GetReason(), Ban: m.GetBan()})
		}
	case *mumblepb.ChannelState:
		if h.active() {
			e := admin.Event{Type: "channel.state", Channel: ptr(m.GetChannelId()), Name: m.GetName(), Parent: m.Parent,
				LinksAdd: m.LinksAdd, LinksRemove: m.LinksRemove}
			if ch, ok := s.channels[m.GetChannelId()]; ok {
				e.ChannelPath = s.pathLocked(ch)
			}
			h.publish(e)
		}
	case *mumblepb.ChannelRemove:
		if h.active() {
			h.publish(admin.Event{Type: "channel.removed", Channel: ptr(m.GetChannelId())})
		}
	}
}

// noteUserStateLocked publishes what a UserState changed of u.
func (s *Server) noteUserStateLocked(u *user, m *mumblepb.UserState) {
	e := admin.Event{Type: "user.state", Session: u.session, Name: u.name, State: map[string]bool{}}
	flag := func(name string, v *bool) {
		if v != nil {
			e.State[name] = *v
		}
	}
	flag("mute", m.Mute)
	flag("deaf", m.Deaf)
	flag("suppress", m.Suppress)
	flag("self_mute", m.SelfMute)
	flag("self_deaf", m.SelfDeaf)
	flag("priority_speaker", m.PrioritySpeaker)
	flag("recording", m.Recording)
	if m.UserId != nil {
		e.State["registered"] = m.GetUserId() != 0xFFFFFFFF
	}
	if m.ChannelId != nil {
		e.Channel, e.ChannelPath = ptr(u.channel.id), s.pathLocked(u.channel)
	}
	if len(e.State) == 0 {
		e.State = nil
		if e.Channel == nil {
			return // a comment, an avatar, listening: not for the stream
		}
	}
	s.events.publish(e)
}

// noteTextLocked publishes a text message, if admin_events_text is on.
func (s *Server) noteTextLocked(sender *user, m *mumblepb.TextMessage) {
	if !s.events.active() || !s.cfg().AdminEventsText {
		return
	}
	e := admin.Event{Type: "text", Text: m.GetMessage(), Sessions: m.Session, Channels: m.ChannelId, Trees: m.TreeId}
	if !sender.isAPI() {
		e.Session, e.Name = sender.session, sender.name
	} else {
		e.Name = sender.name
	}
	s.events.publish(e)
}

// noteFloorLocked publishes a hall's floor after a change.
func (s *Server) noteFloorLocked(hall *channel, summary string) {
	if s.events.active() {
		s.events.publish(admin.Event{Type: "floor", Channel: ptr(hall.id), ChannelPath: s.pathLocked(hall), Floor: summary})
	}
}

// noteACLLocked publishes that ch's groups or ACL entries were edited.
func (s *Server) noteACLLocked(ch *channel) {
	if s.events.active() {
		s.events.publish(admin.Event{Type: "channel.acl", Channel: ptr(ch.id), ChannelPath: s.pathLocked(ch)})
	}
}

// pathLocked is ch's path ("" for the root).
func (s *Server) pathLocked(ch *channel) string {
	if ch == nil || ch.parent == nil {
		return ""
	}
	p := s.pathLocked(ch.parent)
	if p == "" {
		return ch.name
	}
	return p + "/" + ch.name
}
