package server

// Talk time on the floor: what the status page, the metrics and the
// minutes say about who spoke in a hall and for how long. Privacy decides
// what is kept. A user's own total lives in their session and goes with
// it. The hall's totals, kept until the server stops, name registered
// users only (the server keeps their names anyway); an unregistered
// speaker is counted in the hall's total without a name. A hall with
// floor_minutes keeps the list of turns with every name, and says so to
// everyone in it.

import (
	"maps"
	"time"

	"github.com/plenum-voice/plenum/floor"
)

// hallTalk counts the turns in one hall since the server started.
type hallTalk struct {
	turns      uint64
	total      time.Duration
	registered map[string]time.Duration // by registered user name
}

// HallTalk is the talk time counted in one floor-controlled hall since
// the server started, counted when turns end.
type HallTalk struct {
	Hall       string                   // the hall's path when the turn ended
	Turns      uint64                   // turns ended
	Total      time.Duration            // the floor held, by anyone
	Registered map[string]time.Duration // the part of Total held by registered users, by name
}

// countTurnLocked counts a turn that ended in hall: in its speaker's
// session (u, nil if gone) and in the hall's totals. (The minutes are the
// floor's.)
func (s *Server) countTurnLocked(hall *channel, u *user, turn floor.Turn) {
	if u != nil {
		u.countOwnTurn(turn)
	}
	path, live := s.pathOfLocked(hall)
	if !live {
		path = hall.name
	}
	t := s.floorTalk[path]
	if t == nil {
		t = &hallTalk{registered: map[string]time.Duration{}}
		s.floorTalk[path] = t
	}
	t.turns++
	t.total += turn.Length
	if u != nil && u.userID >= 0 {
		t.registered[u.name] += turn.Length
	}
}

// floorTalkLocked copies the halls' totals for Stats.
func (s *Server) floorTalkLocked() []HallTalk {
	out := make([]HallTalk, 0, len(s.floorTalk))
	for path, t := range s.floorTalk {
		out = append(out, HallTalk{Hall: path, Turns: t.turns, Total: t.total, Registered: maps.Clone(t.registered)})
	}
	return out
}

// countOwnTurn adds turn to u's own talk time, once: in a cluster the
// turn may come back from another server (TurnEndedElsewhere) after this
// one counted it, and a turn is known by its start.
func (u *user) countOwnTurn(turn floor.Turn) {
	if !u.floorCounted.IsZero() && u.floorCounted.Equal(turn.Start) {
		return
	}
	u.floorTime += turn.Length
	u.floorCounted = turn.Start
}
