// Package floor decides who may speak in a floor-controlled hall: who
// holds the floor, who waits for it, how long a turn may last, and what
// everyone concerned is told. It is a state machine without I/O: each
// action takes plain identities (a session number and a display name)
// and the time, changes the hall's state and returns the events that
// follow from it, in order. The server carries the events out (suppress
// flags, text messages, the line below the hall's description, talk-time
// counters); permissions, channels and connections are its business,
// never this package's.
//
// Everything a person reads from the floor is in text.go.
package floor

import (
	"errors"
	"fmt"
	"html"
	"slices"
	"strings"
	"time"
)

// Member is someone in a hall (or its requests channel), as the floor
// knows them.
type Member struct {
	Session uint32 `json:"session"`
	Name    string `json:"name"` // as shown to others
	// ID names the person across connections and servers (a registered
	// user's id or a certificate's hash), "" if nothing does; see Rebind.
	ID string `json:"id,omitempty"`
}

// Settings are a hall's configuration.
type Settings struct {
	Groups       []string      // group specs whose members always may speak (floor_groups)
	Requests     string        // name of the subchannel whose entrants ask for the floor; "" = none (floor_requests)
	SpeakingTime time.Duration // a turn's length; 0 = no limit (speaking_time)
	Minutes      bool          // ended turns are kept for the minutes (floor_minutes)
}

// Turn is one ended turn, as the minutes list it.
type Turn struct {
	Name   string        `json:"name"`
	Start  time.Time     `json:"start"`
	Length time.Duration `json:"length"`
}

// Warning is how long before the end of a timed turn its speaker is told.
const Warning = 30 * time.Second

// MaxMinutes bounds a hall's minutes: a day of one-minute turns, and a
// few hundred kilobytes. The oldest turns go first.
const MaxMinutes = 2000

// Hall is the floor of one hall, made by Open. It is not safe for
// concurrent use: its owner (the server, under its lock) serialises calls.
type Hall struct {
	settings Settings
	holder   Member        // who holds the floor, if held
	held     bool          // somebody holds the floor
	queue    []Member      // who asked, in order
	since    time.Time     // the holder's turn began
	deadline time.Time     // the holder's turn ends then (with a speaking time)
	extended time.Duration // what chairs added to the running turn (!extend)
	warned   bool          // the holder was told their time runs out
	muteAll  bool          // only the holder, chairs and priority speakers may speak
	minutes  []Turn        // the ended turns, oldest first, with Settings.Minutes
	ended    *EndedTurn    // the turn that ended last, for its speaker's server (shared.go)
}

// EndedTurn is a turn that ended, and whose it was.
type EndedTurn struct {
	Session uint32 `json:"session"`
	Turn
}

// Kind says what an Event asks of the server.
type Kind uint8

const (
	// Tell: send Session the private message Text.
	Tell Kind = iota + 1
	// Reply: answer whoever gave the command (a chair or the admin API)
	// with Text.
	Reply
	// Granted: Session now holds the floor; bring them into the hall if
	// they wait in its requests channel.
	Granted
	// Resuppress: whether Session may speak has changed; recompute their
	// suppress flag.
	Resuppress
	// ResuppressAll: whether anyone in the hall may speak may have
	// changed; recompute everyone's suppress flag there.
	ResuppressAll
	// TurnEnded: Session's turn ended; count Turn as their talk time.
	TurnEnded
	// Changed: the floor or the queue changed; Note goes below the hall's
	// description and the chairs in the hall are told Text.
	Changed
	// TurnEndedElsewhere: another server ended Session's turn, and counted
	// it in the hall's totals; count Turn in Session's own talk time only.
	TurnEndedElsewhere
)

func (k Kind) String() string {
	switch k {
	case Tell:
		return "Tell"
	case Reply:
		return "Reply"
	case Granted:
		return "Granted"
	case Resuppress:
		return "Resuppress"
	case ResuppressAll:
		return "ResuppressAll"
	case TurnEnded:
		return "TurnEnded"
	case Changed:
		return "Changed"
	case TurnEndedElsewhere:
		return "TurnEndedElsewhere"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Event is one thing the server does because of an action, in the order
// the action returns them.
type Event struct {
	Kind    Kind
	Session uint32 // Tell, Granted, Resuppress, TurnEnded(Elsewhere): whom it concerns
	Text    string // Tell, Reply: the message; Changed: the floor's summary
	Note    string // Changed: HTML for below the hall's description
	Turn    Turn   // TurnEnded(Elsewhere): the turn
}

// Open makes a hall with settings s, which the server then shows: the
// floor is free and everyone's right to speak is to be recomputed.
func Open(s Settings) (*Hall, []Event) {
	h := &Hall{settings: cloneSettings(s)}
	return h, []Event{{Kind: ResuppressAll}, h.changed()}
}

// Configure changes the hall's settings at now, keeping who holds the
// floor and the queue. Turning the minutes off forgets them. A new
// speaking time applies to the running turn too (retime).
func (h *Hall) Configure(s Settings, now time.Time) []Event {
	minutesChanged := s.Minutes != h.settings.Minutes
	timeChanged := s.SpeakingTime != h.settings.SpeakingTime
	h.settings = cloneSettings(s)
	ev := []Event{{Kind: ResuppressAll}}
	if timeChanged && h.held {
		ev = append(ev, h.retime(now))
	}
	if minutesChanged {
		h.minutes = nil
		ev = append(ev, h.changed()) // the notice comes or goes
	}
	return ev
}

// retime gives the running turn the hall's new speaking time, counted
// from the turn's start with what chairs added on top, as if it had been
// in force all along: keeping the old end would let a shortened time run
// on, and a turn that began untimed has no end at all (the zero time, so
// the next tick would end it at once). If the new end has passed, the
// speaker gets the warning period to finish rather than being cut off
// mid-sentence. The speaker is told, and not warned again for an end
// they were just told is near.
func (h *Hall) retime(now time.Time) Event {
	limit := h.settings.SpeakingTime
	if limit == 0 {
		h.warned = false
		return tell(h.holder.Session, textTimeLifted)
	}
	h.deadline = h.since.Add(limit + h.extended)
	left := h.deadline.Sub(now)
	text := textTimeChanged
	if left <= 0 {
		h.deadline, left = now.Add(Warning), Warning
		text = textTimeChangedPassed
	}
	h.warned = left <= Warning
	return tell(h.holder.Session, fmt.Sprintf(text, limit, left.Round(time.Second)))
}

// Close ends the running turn, if any, because the hall stops being one.
func (h *Hall) Close(now time.Time) []Event {
	return h.endTurn(nil, now)
}

func cloneSettings(s Settings) Settings {
	s.Groups = slices.Clone(s.Groups)
	return s
}

// Requests is the name of the hall's requests subchannel, "" if none.
func (h *Hall) Requests() string { return h.settings.Requests }

// MaySpeak reports whether the floor lets someone in the hall speak:
// they hold the floor, are a priority speaker, or belong to one of the
// hall's groups; while everyone is muted, chairs instead of the groups.
// chair and inGroup are asked only when the answer depends on them.
func (h *Hall) MaySpeak(session uint32, priority bool, chair func() bool, inGroup func(group string) bool) bool {
	if (h.held && h.holder.Session == session) || priority {
		return true
	}
	if h.muteAll {
		return chair()
	}
	return slices.ContainsFunc(h.settings.Groups, inGroup)
}

// Raise puts m at the end of the queue, once, and tells them their place.
func (h *Hall) Raise(m Member) []Event {
	if h.holds(m.Session) {
		return []Event{tell(m.Session, textHolding)}
	}
	if i := h.place(m.Session); i >= 0 {
		return []Event{tell(m.Session, fmt.Sprintf(textPlace, i+1))}
	}
	h.queue = append(h.queue, m)
	return []Event{tell(m.Session, fmt.Sprintf(textPlace, len(h.queue))), h.changed()}
}

// Withdraw takes session out of the queue.
func (h *Hall) Withdraw(session uint32) []Event {
	i := h.place(session)
	if i < 0 {
		return nil
	}
	h.queue = slices.Delete(h.queue, i, i+1)
	return []Event{tell(session, textLeftQueue), h.changed()}
}

// Next gives the floor to the first in the queue, ending the running
// turn; with nobody waiting it only ends the turn.
func (h *Hall) Next(now time.Time) []Event {
	if len(h.queue) == 0 {
		return append(h.handOver(nil, textTurnEnded, now), Event{Kind: Reply, Text: textNobodyWaiting})
	}
	return h.handOver(&h.queue[0], textTurnEnded, now)
}

// Give hands the floor to m, ending the running turn. Whether m may have
// it (is in the hall or its requests channel) is the caller's to check.
func (h *Hall) Give(m Member, now time.Time) []Event {
	return h.handOver(&m, textTurnEnded, now)
}

// Revoke ends the running turn; nobody holds the floor.
func (h *Hall) Revoke(now time.Time) []Event {
	return h.handOver(nil, textTurnEnded, now)
}

// Clear empties the queue.
func (h *Hall) Clear() []Event {
	h.queue = nil
	return []Event{h.changed()}
}

// Extend gives the running timed turn more time: arg as a duration
// ("2m"), a minute when empty.
func (h *Hall) Extend(arg string, now time.Time) ([]Event, error) {
	if !h.held || h.settings.SpeakingTime == 0 {
		return nil, errors.New(textNoTimedTurn)
	}
	more := time.Minute
	if arg != "" {
		d, err := time.ParseDuration(arg)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf(textNotADuration, arg)
		}
		more = d
	}
	h.deadline = h.deadline.Add(more)
	h.extended += more
	if h.deadline.Sub(now) > Warning {
		h.warned = false // warned again when the new end comes near
	}
	return []Event{tell(h.holder.Session, fmt.Sprintf(textExtended, more)), h.changed()}, nil
}

// MuteAll silences everyone in the hall but the holder, the chairs and
// priority speakers; members of the hall's groups too.
func (h *Hall) MuteAll() []Event { return h.setMuteAll(true) }

// UnmuteAll lifts MuteAll.
func (h *Hall) UnmuteAll() []Event { return h.setMuteAll(false) }

func (h *Hall) setMuteAll(on bool) []Event {
	h.muteAll = on
	return []Event{{Kind: ResuppressAll}, h.changed()}
}

// Leave follows session out of the hall (moved elsewhere or gone): out
// of the floor and out of the queue. Their suppress flag is the new
// channel's business.
func (h *Hall) Leave(session uint32, now time.Time) []Event {
	var ev []Event
	if h.holds(session) {
		ev = append(h.endTurn(ev, now), h.changed())
	}
	if i := h.place(session); i >= 0 {
		h.queue = slices.Delete(h.queue, i, i+1)
		ev = append(ev, h.changed())
	}
	return ev
}

// Tick warns a speaker whose time runs out and ends a turn whose time is
// up. The server calls it often (twice a second).
func (h *Hall) Tick(now time.Time) []Event {
	if !h.held || h.settings.SpeakingTime == 0 {
		return nil
	}
	switch left := h.deadline.Sub(now); {
	case left <= 0:
		return h.handOver(nil, textTimeOver, now)
	case left <= Warning && !h.warned:
		h.warned = true
		return []Event{tell(h.holder.Session, fmt.Sprintf(textTimeWarning, int(left.Round(time.Second).Seconds())))}
	}
	return nil
}

// handOver gives the floor to m (nil: nobody), taking m out of the
// queue, and tells the previous holder why their turn ended.
func (h *Hall) handOver(m *Member, why string, now time.Time) []Event {
	prev, hadPrev := h.holder, h.held
	ev := h.endTurn(nil, now)
	h.warned = false
	h.since = now
	h.extended = 0
	h.deadline = now.Add(h.settings.SpeakingTime) // unused while untimed; retime sets it if that changes
	if m != nil {
		to := *m // m may point into the queue, which changes now
		h.holder, h.held = to, true
		if i := h.place(to.Session); i >= 0 {
			h.queue = slices.Delete(h.queue, i, i+1)
		}
		text := textHolding
		if h.settings.Minutes {
			text = textHoldingMinutes
		}
		ev = append(ev, Event{Kind: Granted, Session: to.Session}, Event{Kind: Resuppress, Session: to.Session}, tell(to.Session, text))
	}
	if hadPrev && !h.holds(prev.Session) {
		ev = append(ev, Event{Kind: Resuppress, Session: prev.Session}, tell(prev.Session, why))
	}
	return append(ev, h.changed())
}

// endTurn ends the running turn, if any, keeps it for the minutes when
// the hall keeps them, and appends the event that counts it to ev.
func (h *Hall) endTurn(ev []Event, now time.Time) []Event {
	if !h.held {
		return ev
	}
	h.held = false
	t := Turn{Name: h.holder.Name, Start: h.since, Length: now.Sub(h.since)}
	if h.settings.Minutes {
		if len(h.minutes) == MaxMinutes {
			h.minutes = append(h.minutes[:0], h.minutes[1:]...)
		}
		h.minutes = append(h.minutes, t)
	}
	h.ended = &EndedTurn{Session: h.holder.Session, Turn: t}
	return append(ev, Event{Kind: TurnEnded, Session: h.holder.Session, Turn: t})
}

func (h *Hall) holds(session uint32) bool { return h.held && h.holder.Session == session }

// place is session's index in the queue, or -1.
func (h *Hall) place(session uint32) int {
	return slices.IndexFunc(h.queue, func(m Member) bool { return m.Session == session })
}

func tell(session uint32, text string) Event {
	return Event{Kind: Tell, Session: session, Text: text}
}

// changed is the event that shows the floor as it is now.
func (h *Hall) changed() Event {
	summary := h.Summary()
	note := "<p>" + summary + "</p>"
	if h.settings.Minutes {
		note += "<p><i>" + textMinutesNotice + "</i></p>"
	}
	return Event{Kind: Changed, Text: summary, Note: note}
}

// Summary says who holds the floor and who waits, in HTML (names
// escaped), as chairs and !queue are told.
func (h *Hall) Summary() string {
	var b strings.Builder
	if h.muteAll {
		b.WriteString(textAllMuted)
		b.WriteString(" ")
	}
	if h.held {
		fmt.Fprintf(&b, textHolder, html.EscapeString(h.holder.Name))
	} else {
		b.WriteString(textNoHolder)
	}
	b.WriteString(" ")
	if len(h.queue) == 0 {
		b.WriteString(textQueueEmpty)
		return b.String()
	}
	names := make([]string, len(h.queue))
	for i, m := range h.queue {
		names[i] = fmt.Sprintf(textQueueEntry, i+1, html.EscapeString(m.Name))
	}
	fmt.Fprintf(&b, textQueue, strings.Join(names, ", "))
	return b.String()
}

// Holder is who holds the floor; ok is false when nobody does.
func (h *Hall) Holder() (m Member, ok bool) { return h.holder, h.held }

// Held is how long session has held the floor in the running turn, 0
// when they do not hold it.
func (h *Hall) Held(session uint32, now time.Time) time.Duration {
	if !h.holds(session) {
		return 0
	}
	return now.Sub(h.since)
}

// TimeLeft is what remains of the running turn, never below 0; ok is
// false when nobody holds the floor or turns are not timed.
func (h *Hall) TimeLeft(now time.Time) (left time.Duration, ok bool) {
	if !h.held || h.settings.SpeakingTime == 0 {
		return 0, false
	}
	return max(h.deadline.Sub(now), 0), true
}

// Queue is who waits, in order.
func (h *Hall) Queue() []Member { return slices.Clone(h.queue) }

// AllMuted reports whether MuteAll is in force.
func (h *Hall) AllMuted() bool { return h.muteAll }

// KeepsMinutes reports whether the hall keeps minutes.
func (h *Hall) KeepsMinutes() bool { return h.settings.Minutes }

// Minutes are the ended turns, oldest first, while the hall keeps them.
func (h *Hall) Minutes() []Turn { return slices.Clone(h.minutes) }
