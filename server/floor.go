package server

// Floor control: a channel configured with floor = true is a hall where
// everyone hears everything but members speak only while they hold the
// floor. The chair's groups (floor_groups) always may. Members ask for the
// floor with a text command in the hall (!hand) or by entering its requests
// subchannel (floor_requests); chairs, who are whoever has MuteDeafen in
// the hall, hand it on with !next, !give, !revoke and !clear. Everything a
// stock client needs to see is what it already shows: a member without the
// floor is suppressed, and the commands and their answers are private
// text messages, never chat in the hall.
//
// The rules are package floor's: a state machine that answers each action
// with events. This file decides who is a chair and who is in the hall,
// and carries the events out (suppress flags, messages, the hall's note,
// talk time).

import (
	"errors"
	"strings"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/floor"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// floorSettings is what the floor needs of a channel's configuration.
func floorSettings(def *conf.Channel) floor.Settings {
	return floor.Settings{Groups: def.FloorGroups, Requests: def.FloorRequests,
		SpeakingTime: def.SpeakingTime.Duration, Minutes: def.FloorMinutes}
}

// setFloorLocked makes ch a hall as def says (keeping who holds the floor
// and the queue when it already was one), or an ordinary channel, and
// recomputes who in it is suppressed.
func (s *Server) setFloorLocked(ch *channel, def *conf.Channel) {
	switch {
	case !def.Floor && ch.floor == nil:
	case !def.Floor:
		s.floorEventsLocked(ch, ch.floor.Close(s.now())) // counted, as any ended turn
		ch.floor = nil
		ch.setNote("")
		out := &mumblepb.ChannelState{ChannelId: ptr(ch.id)}
		ch.describe(out)
		s.broadcastLocked(out, nil)
		for u := range ch.users {
			s.resuppressLocked(u)
		}
	case ch.floor == nil:
		var opened []floor.Event
		ch.floor, opened = floor.Open(floorSettings(def))
		s.floorEventsLocked(ch, opened)
	default:
		s.floorEventsLocked(ch, ch.floor.Configure(floorSettings(def), s.now()))
	}
}

// floorAllowsLocked reports whether the floor lets u speak in ch: it is
// not a hall, or the floor's rules let them (floor.Hall.MaySpeak), with
// chairs by permission and groups as the ACL evaluates them in ch.
func (s *Server) floorAllowsLocked(u *user, ch *channel) bool {
	if ch.floor == nil {
		return true
	}
	return ch.floor.MaySpeak(u.session, u.prioritySpeak,
		func() bool { return s.may(u, ch, acl.MuteDeafen) },
		func(g string) bool { return s.policy.InGroup(serverTree{s}, u.subject, ch.id, g) })
}

// mayTalkLocked is what suppress is the opposite of: the Speak permission
// and, in a hall, the floor.
func (s *Server) mayTalkLocked(u *user, ch *channel) bool {
	return s.may(u, ch, acl.Speak) && s.floorAllowsLocked(u, ch)
}

// resuppressLocked recomputes u's suppress flag and tells everyone when it
// changed.
func (s *Server) resuppressLocked(u *user) {
	if u.channel == nil {
		return
	}
	if suppress := !s.mayTalkLocked(u, u.channel); suppress != u.suppress {
		u.suppress = suppress
		s.snapDirty = true
		s.broadcastLocked(&mumblepb.UserState{Session: ptr(u.session), Suppress: ptr(suppress)}, nil)
	}
}

// floorEventsLocked carries out what the floor of hall answered to an
// action, in order, and returns the reply for whoever acted.
func (s *Server) floorEventsLocked(hall *channel, events []floor.Event) (reply string) {
	for _, e := range events {
		u := s.users[e.Session] // the sessions events name are online: leaving takes them off the floor first
		switch e.Kind {
		case floor.Tell:
			if u != nil {
				s.tellLocked(u, e.Text)
			}
		case floor.Reply:
			reply = e.Text
		case floor.Granted:
			if u != nil && u.channel != hall {
				s.moveIntoHallLocked(hall, u) // from the requests channel
			}
		case floor.Resuppress:
			if u != nil {
				s.resuppressLocked(u)
			}
		case floor.ResuppressAll:
			for m := range hall.users {
				s.resuppressLocked(m)
			}
		case floor.TurnEnded:
			s.countTurnLocked(hall, u, e.Turn)
		case floor.TurnEndedElsewhere:
			// A session number is used again once its user has left: the
			// turn is this user's only if it began after they came.
			if u != nil && !e.Turn.Start.Before(u.connected) {
				u.countOwnTurn(e.Turn)
			}
		case floor.Changed:
			s.showFloorLocked(hall, e.Note, e.Text)
			s.noteFloorLocked(hall, e.Text)
		}
	}
	return reply
}

// floorCommand returns the hall a text message is a floor command for and
// the command's text without the '!' (HTML removed); ok is false for
// anything else, which is then handled as chat. A command is a message to
// one channel, the hall or its requests subchannel, starting with '!'.
func (s *Server) floorCommand(m *mumblepb.TextMessage) (hall *channel, line string, ok bool) {
	if len(m.ChannelId) != 1 || len(m.TreeId) != 0 || len(m.Session) != 0 {
		return nil, "", false
	}
	line, ok = floor.CommandLine(m.GetMessage())
	if !ok {
		return nil, "", false
	}
	ch, exists := s.channels[m.ChannelId[0]]
	if !exists {
		return nil, "", false
	}
	if h := hallOf(ch); h != nil {
		ch = h
	}
	if ch.floor == nil {
		return nil, "", false
	}
	return ch, line, true
}

// handleFloorCommandLocked carries out a floor command (line, without its
// '!') from u in hall.
func (s *Server) handleFloorCommandLocked(u *user, hall *channel, line string) {
	c, ok := floor.Parse(line)
	if !ok {
		return
	}
	if c.Verb != floor.ShowQueue && s.floorRefusedWhileCutOff(u) {
		return
	}
	switch {
	case c.Verb == floor.Hand:
		m := s.floorMemberLocked(u)
		s.floorDoLocked(hall, func(f *floor.Hall) []floor.Event { return f.Raise(m) })
	case c.Verb == floor.Withdraw:
		session := u.session
		s.floorDoLocked(hall, func(f *floor.Hall) []floor.Event { return f.Withdraw(session) })
	case c.Verb == floor.ShowQueue:
		s.tellLocked(u, hall.floor.Summary())
	case !c.Verb.ForChairs():
		s.tellLocked(u, floor.ErrUnknown.Error())
	case !s.requireLocked(u, hall, acl.MuteDeafen):
		// not a chair: requireLocked has sent the denial
	default:
		if msg, err := s.floorActionLocked(hall, string(c.Verb), c.Arg); err != nil {
			s.tellLocked(u, err.Error())
		} else if msg != "" {
			s.tellLocked(u, msg)
		}
	}
}

// floorActionLocked carries out a chair's action on hall, from a client
// or the admin API: next, give (arg: a name), revoke, clear, extend (arg:
// a duration, or empty for a minute), muteall, unmuteall. It returns a
// message for the chair, or an error saying why it could not be done.
func (s *Server) floorActionLocked(hall *channel, action, arg string) (string, error) {
	if s.sharesFloor() && s.clusterCut.Load() {
		return "", errFloorCutOff
	}
	now := s.now()
	var op floorOp
	switch floor.Verb(action) {
	case floor.Next:
		op = func(f *floor.Hall) []floor.Event { return f.Next(now) }
	case floor.Give:
		m, ok := s.floorMemberNamedLocked(hall, arg)
		if !ok {
			return "", floor.NotInHall(arg, hall.name)
		}
		op = func(f *floor.Hall) []floor.Event { return f.Give(m, now) }
	case floor.Revoke:
		op = func(f *floor.Hall) []floor.Event { return f.Revoke(now) }
	case floor.Clear:
		op = (*floor.Hall).Clear
	case floor.Extend:
		if _, err := hall.floor.Clone().Extend(arg, now); err != nil {
			return "", err
		}
		op = func(f *floor.Hall) []floor.Event {
			events, _ := f.Extend(arg, now) // replayed on another node's floor, it may find no timed turn
			return events
		}
	case floor.MuteAll:
		op = (*floor.Hall).MuteAll
	case floor.UnmuteAll:
		op = (*floor.Hall).UnmuteAll
	default:
		return "", floor.ErrUnknown
	}
	return s.floorDoLocked(hall, op), nil
}

// errFloorCutOff is why a node cut off from its cluster refuses floor
// actions.
var errFloorCutOff = errors.New("Refused: this server is cut off from the other servers of the plenary, " +
	"and the floor could not be shared. Try again when it is back.")

func (s *Server) isRequestsChannel(hall, ch *channel) bool {
	return ch != nil && ch.parent == hall && hall.floor.Requests() != "" && ch.name == hall.floor.Requests()
}

func (s *Server) userNamedLocked(name string) *user {
	for _, u := range s.users {
		if strings.EqualFold(u.name, name) {
			return u
		}
	}
	return nil
}

// moveIntoHallLocked brings a member waiting in the requests channel into
// the hall to speak.
func (s *Server) moveIntoHallLocked(hall *channel, u *user) {
	out := &mumblepb.UserState{Session: ptr(u.session)}
	left := s.enterLocked(u, hall, out)
	s.broadcastLocked(out, nil)
	s.removeIfEmptyTemporaryLocked(left)
}

// showFloorLocked shows the floor's new state (note) below the hall's
// description, to everyone, and tells the chairs in the hall (summary).
func (s *Server) showFloorLocked(hall *channel, note, summary string) {
	if note != hall.note {
		hall.setNote(note)
		out := &mumblepb.ChannelState{ChannelId: ptr(hall.id)}
		hall.describe(out)
		s.broadcastLocked(out, nil)
	}
	for u := range hall.users {
		if s.may(u, hall, acl.MuteDeafen) {
			s.tellLocked(u, summary)
		}
	}
}

// tellLocked sends u a private message from the server.
func (s *Server) tellLocked(u *user, text string) {
	u.conn.send(&mumblepb.TextMessage{Session: []uint32{u.session}, Message: ptr(text)})
}

// floorMovedLocked follows u out of from into to (nil: disconnected): out
// of the floor and the queue of the hall from is or belongs to. Entering
// a hall's requests channel raises a hand.
func (s *Server) floorMovedLocked(u *user, from, to *channel) {
	for _, hall := range []*channel{from, hallOf(from)} {
		if hall == nil || hall.floor == nil || to == hall || s.isRequestsChannel(hall, to) {
			continue
		}
		if to == nil && u.replaced {
			continue // the login that replaced u takes the place over (floorReturnedLocked)
		}
		session, now := u.session, s.now()
		s.floorDoLocked(hall, func(f *floor.Hall) []floor.Event { return f.Leave(session, now) })
	}
	if from != nil && to != nil && to != from {
		s.floorReturnedLocked(u) // back in a hall where they had a place in another session
	}
	if hall := hallOf(to); hall != nil && s.isRequestsChannel(hall, to) {
		m := s.floorMemberLocked(u)
		s.floorDoLocked(hall, func(f *floor.Hall) []floor.Event { return f.Raise(m) })
	}
}

// hallOf is the hall ch is the requests channel of, or nil.
func hallOf(ch *channel) *channel {
	if ch == nil || ch.parent == nil || ch.parent.floor == nil || ch.parent.floor.Requests() != ch.name {
		return nil
	}
	return ch.parent
}

// checkFloorTimeLocked warns speakers whose time runs out and ends the
// turns whose time is up; on a cluster node it also lets go of those who
// left with their node and did not come back.
func (s *Server) checkFloorTimeLocked() {
	now := s.now()
	for _, hall := range s.channels {
		if hall.floor == nil {
			continue
		}
		if !s.floorTimedElsewhereLocked(hall) {
			s.floorDoLocked(hall, func(f *floor.Hall) []floor.Event { return f.Tick(now) })
		}
		if s.sharesFloor() && !s.clusterCut.Load() {
			s.floorDropAbsentLocked(hall, now)
		}
	}
	for session, since := range s.floorAbsent {
		if now.Sub(since) > 2*s.config.Cluster.Wait() {
			delete(s.floorAbsent, session) // no longer on any floor
		}
	}
}

// floorClock checks the speaking times twice a second until the server
// stops.
func (s *Server) floorClock() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			s.mu.Lock()
			s.checkFloorTimeLocked()
			s.unlock()
		}
	}
}
