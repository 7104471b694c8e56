package floor

import (
	"fmt"
	"reflect"
	"slices"
	"time"
)

// State is the part of a hall's floor that servers sharing one plenary
// share: who holds the floor since when and until when, who waits, and
// whether everyone is muted. The settings come from each server's
// configuration, and the minutes stay with the server that ended a turn.
type State struct {
	Holder   *Member       `json:"holder,omitempty"`
	Since    time.Time     `json:"since,omitzero"`
	Deadline time.Time     `json:"deadline,omitzero"`
	Extended time.Duration `json:"extended,omitempty"`
	Warned   bool          `json:"warned,omitempty"`
	Queue    []Member      `json:"queue,omitempty"`
	MuteAll  bool          `json:"mute_all,omitempty"`
	// Minutes are the ended turns of a hall that keeps them
	// (floor_minutes), so that every server has the whole list whichever
	// server ended a turn.
	Minutes []Turn `json:"minutes,omitempty"`
	// LastTurn is the turn that ended last, so that its speaker's server
	// counts it in their own talk time whichever server ended it.
	LastTurn *EndedTurn `json:"last_turn,omitempty"`
}

// State is the hall's shared state now.
func (h *Hall) State() State {
	// Times as they come back from JSON (UTC, no monotonic reading), so
	// that a state compares equal to itself after a trip through the
	// cluster.
	st := State{Since: h.since.UTC().Round(0), Deadline: h.deadline.UTC().Round(0), Extended: h.extended, Warned: h.warned,
		Queue: slices.Clone(h.queue), MuteAll: h.muteAll}
	if h.held {
		holder := h.holder
		st.Holder = &holder
	}
	if h.ended != nil {
		last := *h.ended
		last.Start = last.Start.UTC().Round(0)
		st.LastTurn = &last
	}
	if len(h.minutes) > 0 {
		st.Minutes = make([]Turn, len(h.minutes))
		for i, t := range h.minutes {
			t.Start = t.Start.UTC().Round(0)
			st.Minutes[i] = t
		}
	}
	return st
}

// Clone is a copy of the hall, for trying actions on without changing it.
func (h *Hall) Clone() *Hall {
	c := *h
	c.settings = cloneSettings(h.settings)
	c.queue = slices.Clone(h.queue)
	c.minutes = slices.Clone(h.minutes)
	if h.ended != nil {
		ended := *h.ended
		c.ended = &ended
	}
	return &c
}

// Adopt makes st the hall's state (another server changed the floor) and
// returns what follows for the people concerned: the new holder gets the
// floor (Granted, told), the previous one is told their turn ended, the
// right to speak is recomputed and the floor shown. Turns are counted in
// the hall's totals (TurnEnded) by the server that ended them, not here;
// a turn ended elsewhere is counted in its speaker's own talk time
// (TurnEndedElsewhere) by whichever server has them. The minutes come
// with the state, where the hall keeps them.
func (h *Hall) Adopt(st State) []Event {
	before := h.State()
	if reflect.DeepEqual(before, st) {
		return nil
	}
	var ev []Event
	if st.LastTurn != nil && !reflect.DeepEqual(before.LastTurn, st.LastTurn) {
		ev = append(ev, Event{Kind: TurnEndedElsewhere, Session: st.LastTurn.Session, Turn: st.LastTurn.Turn})
	}
	h.ended = nil
	if st.LastTurn != nil {
		last := *st.LastTurn
		h.ended = &last
	}
	prev, hadPrev := h.holder, h.held
	placeBefore := map[uint32]int{}
	for i, m := range h.queue {
		placeBefore[m.Session] = i
	}
	h.since, h.deadline, h.extended, h.warned = st.Since, st.Deadline, st.Extended, st.Warned
	h.queue, h.muteAll = slices.Clone(st.Queue), st.MuteAll
	if h.settings.Minutes {
		h.minutes = slices.Clone(st.Minutes)
	}
	h.held = st.Holder != nil
	h.holder = Member{}
	if h.held {
		h.holder = *st.Holder
	}
	if h.held && (!hadPrev || prev.Session != h.holder.Session) {
		text := textHolding
		if h.settings.Minutes {
			text = textHoldingMinutes
		}
		ev = append(ev, Event{Kind: Granted, Session: h.holder.Session}, tell(h.holder.Session, text))
	}
	if hadPrev && !h.holds(prev.Session) {
		ev = append(ev, Event{Kind: Resuppress, Session: prev.Session}, tell(prev.Session, textTurnEnded))
	}
	// A member told one place who now waits further back: a hand raised
	// at the same moment elsewhere came first. Moving forward needs no
	// word, as on one server.
	for i, m := range h.queue {
		if before, ok := placeBefore[m.Session]; ok && i > before {
			ev = append(ev, tell(m.Session, fmt.Sprintf(textPlaceLater, i+1)))
		}
	}
	return append(ev, Event{Kind: ResuppressAll}, h.changed())
}

// Rebind gives the floor or the place in the queue of the person known
// by any of ids (Member.ID) to their new session: they reconnected, to
// this server or another one.
func (h *Hall) Rebind(ids []string, session uint32, name string) []Event {
	same := func(m Member) bool { return m.ID != "" && m.Session != session && slices.Contains(ids, m.ID) }
	changed := false
	if h.held && same(h.holder) {
		h.holder.Session, h.holder.Name, changed = session, name, true
	}
	for i := range h.queue {
		if same(h.queue[i]) {
			h.queue[i].Session, h.queue[i].Name, changed = session, name, true
		}
	}
	if !changed {
		return nil
	}
	return []Event{{Kind: ResuppressAll}, h.changed()}
}
