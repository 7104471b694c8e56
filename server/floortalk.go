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
)

// floorTurn is one ended turn, as the minutes list it.
type floorTurn struct {
	name   string
	start  time.Time
	length time.Duration
}

// maxMinutes bounds a hall's minutes: a day of one-minute turns, and
// a few hundred kilobytes.
const maxMinutes = 2000

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

// endTurnLocked ends the turn of the hall's holder, if there is one, and
// counts it: in the holder's session, in the hall's totals and, with
// floor_minutes, in the minutes.
func (s *Server) endTurnLocked(hall *channel) {
	f := hall.floor
	u := f.holder
	if u == nil {
		return
	}
	f.holder = nil
	length := s.now().Sub(f.since)
	u.floorTime += length
	if f.minutes {
		if len(f.turns) == maxMinutes {
			f.turns = append(f.turns[:0], f.turns[1:]...)
		}
		f.turns = append(f.turns, floorTurn{name: u.name, start: f.since, length: length})
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
	t.total += length
	if u.userID >= 0 {
		t.registered[u.name] += length
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
