package floor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tests run on a clock of their own: t0 plus the step's offset.
var t0 = time.Unix(1_800_000_000, 0)

var (
	alice = Member{Session: 1, Name: "alice"}
	bob   = Member{Session: 2, Name: "bob"}
	carol = Member{Session: 3, Name: "carol"}
)

// Events as the tests expect them.
func toldE(m Member, text string) Event { return Event{Kind: Tell, Session: m.Session, Text: text} }
func replyE(text string) Event          { return Event{Kind: Reply, Text: text} }
func grantedE(m Member) Event           { return Event{Kind: Granted, Session: m.Session} }
func resuppressE(m Member) Event        { return Event{Kind: Resuppress, Session: m.Session} }
func resuppressAllE() Event             { return Event{Kind: ResuppressAll} }

func endedE(m Member, from, to time.Duration) Event {
	return Event{Kind: TurnEnded, Session: m.Session, Turn: Turn{Name: m.Name, Start: t0.Add(from), Length: to - from}}
}

// changedE is the Changed event of a hall without minutes.
func changedE(summary string) Event {
	return Event{Kind: Changed, Text: summary, Note: "<p>" + summary + "</p>"}
}

// changedMinutesE is the Changed event of a hall that keeps minutes.
func changedMinutesE(summary string) Event {
	return Event{Kind: Changed, Text: summary, Note: "<p>" + summary + "</p><p><i>" + textMinutesNotice + "</i></p>"}
}

// gives is the events of handing the floor to m (first in what follows
// the turn's end), with the minutes' wording or not.
func gives(m Member, minutes bool) []Event {
	text := "You have the floor."
	if minutes {
		text = "You have the floor. Your turn is noted for the minutes."
	}
	return []Event{grantedE(m), resuppressE(m), toldE(m, text)}
}

// takes is the events that tell m their turn ended.
func takes(m Member, why string) []Event { return []Event{resuppressE(m), toldE(m, why)} }

func cat(evs ...any) []Event {
	var out []Event
	for _, e := range evs {
		switch e := e.(type) {
		case Event:
			out = append(out, e)
		case []Event:
			out = append(out, e...)
		default:
			panic(fmt.Sprintf("cat: %T", e))
		}
	}
	return out
}

// step is one action at t0+at and the events it must return, in order.
type step struct {
	at   time.Duration
	name string
	do   func(h *Hall, now time.Time) []Event
	want []Event
}

func raise(m Member) func(*Hall, time.Time) []Event {
	return func(h *Hall, _ time.Time) []Event { return h.Raise(m) }
}
func withdraw(m Member) func(*Hall, time.Time) []Event {
	return func(h *Hall, _ time.Time) []Event { return h.Withdraw(m.Session) }
}
func give(m Member) func(*Hall, time.Time) []Event {
	return func(h *Hall, now time.Time) []Event { return h.Give(m, now) }
}
func leave(m Member) func(*Hall, time.Time) []Event {
	return func(h *Hall, now time.Time) []Event { return h.Leave(m.Session, now) }
}
func extend(arg string) func(*Hall, time.Time) []Event {
	return func(h *Hall, now time.Time) []Event {
		ev, err := h.Extend(arg, now)
		if err != nil {
			return []Event{{Text: "error: " + err.Error()}} // an error as an event of no kind, to compare
		}
		return ev
	}
}
func configure(s Settings) func(*Hall, time.Time) []Event {
	return func(h *Hall, now time.Time) []Event { return h.Configure(s, now) }
}

var (
	next      = (*Hall).Next
	revoke    = (*Hall).Revoke
	tick      = (*Hall).Tick
	closeHall = (*Hall).Close
	clearQ    = func(h *Hall, _ time.Time) []Event { return h.Clear() }
	muteAll   = func(h *Hall, _ time.Time) []Event { return h.MuteAll() }
	unmuteAll = func(h *Hall, _ time.Time) []Event { return h.UnmuteAll() }
)

// run opens a hall with s and plays the steps, checking each one's events.
func run(t *testing.T, s Settings, steps []step) *Hall {
	t.Helper()
	h, _ := Open(s)
	for i, st := range steps {
		got := st.do(h, t0.Add(st.at))
		if !slices.Equal(got, st.want) {
			t.Fatalf("step %d (%s) at %v:\n got  %s\n want %s", i, st.name, st.at, show(got), show(st.want))
		}
	}
	return h
}

func show(ev []Event) string {
	var b strings.Builder
	for _, e := range ev {
		fmt.Fprintf(&b, "\n   %+v", e)
	}
	return b.String()
}

func TestOpen(t *testing.T) {
	h, ev := Open(Settings{Groups: []string{"chair"}})
	if want := []Event{resuppressAllE(), changedE("Floor: nobody. Queue: empty.")}; !slices.Equal(ev, want) {
		t.Fatalf("Open: %s, want %s", show(ev), show(want))
	}
	if _, held := h.Holder(); held || len(h.Queue()) != 0 || h.AllMuted() || h.KeepsMinutes() {
		t.Fatal("a new hall is not empty")
	}
	_, ev = Open(Settings{Minutes: true})
	if want := []Event{resuppressAllE(), changedMinutesE("Floor: nobody. Queue: empty.")}; !slices.Equal(ev, want) {
		t.Fatalf("Open with minutes: %s, want %s", show(ev), show(want))
	}
}

// TestQueue: a hand goes up once, its place is told, withdrawing and
// clearing take it down; the holder is told they have the floor.
func TestQueue(t *testing.T) {
	h := run(t, Settings{}, []step{
		{0, "alice raises", raise(alice), cat(toldE(alice, "You are number 1 in the queue."), changedE("Floor: nobody. Queue: 1. alice."))},
		{0, "alice again", raise(alice), cat(toldE(alice, "You are number 1 in the queue."))},
		{0, "bob raises", raise(bob), cat(toldE(bob, "You are number 2 in the queue."), changedE("Floor: nobody. Queue: 1. alice, 2. bob."))},
		{0, "carol raises", raise(carol), cat(toldE(carol, "You are number 3 in the queue."), changedE("Floor: nobody. Queue: 1. alice, 2. bob, 3. carol."))},
		{0, "bob again", raise(bob), cat(toldE(bob, "You are number 2 in the queue."))},
		{0, "alice withdraws", withdraw(alice), cat(toldE(alice, "You left the queue."), changedE("Floor: nobody. Queue: 1. bob, 2. carol."))},
		{0, "alice withdraws again", withdraw(alice), nil},
		{0, "bob gets it", give(bob), cat(gives(bob, false), changedE("Floor: bob. Queue: 1. carol."))},
		{0, "the holder raises", raise(bob), cat(toldE(bob, "You have the floor."))},
		{0, "alice raises", raise(alice), cat(toldE(alice, "You are number 2 in the queue."), changedE("Floor: bob. Queue: 1. carol, 2. alice."))},
		{0, "clear", clearQ, cat(changedE("Floor: bob. Queue: empty."))},
		{0, "clear again", clearQ, cat(changedE("Floor: bob. Queue: empty."))},
	})
	if len(h.Queue()) != 0 {
		t.Errorf("queue after clear: %v", h.Queue())
	}
}

// TestHandOver: !next takes the queue in order and ends the running turn
// (counted, the speaker told); !give takes anyone, queued or not; !revoke
// and an empty !next leave the floor to nobody.
func TestHandOver(t *testing.T) {
	const ended = "Your turn has ended."
	h := run(t, Settings{}, []step{
		{0, "next, nobody waits", next, cat(changedE("Floor: nobody. Queue: empty."), replyE("Nobody is waiting for the floor."))},
		{0, "revoke, nobody holds", revoke, cat(changedE("Floor: nobody. Queue: empty."))},
		{1 * time.Second, "alice raises", raise(alice), cat(toldE(alice, "You are number 1 in the queue."), changedE("Floor: nobody. Queue: 1. alice."))},
		{2 * time.Second, "bob raises", raise(bob), cat(toldE(bob, "You are number 2 in the queue."), changedE("Floor: nobody. Queue: 1. alice, 2. bob."))},
		{10 * time.Second, "next: alice", next, cat(gives(alice, false), changedE("Floor: alice. Queue: 1. bob."))},
		{70 * time.Second, "next: bob", next, cat(endedE(alice, 10*time.Second, 70*time.Second), gives(bob, false), takes(alice, ended), changedE("Floor: bob. Queue: empty."))},
		{80 * time.Second, "next, empty queue", next, cat(endedE(bob, 70*time.Second, 80*time.Second), takes(bob, ended), changedE("Floor: nobody. Queue: empty."), replyE("Nobody is waiting for the floor."))},
		{90 * time.Second, "give carol, not queued", give(carol), cat(gives(carol, false), changedE("Floor: carol. Queue: empty."))},
		// Given again, the holder's turn starts anew: counted, but
		// they are not told it ended.
		{95 * time.Second, "give carol again", give(carol), cat(endedE(carol, 90*time.Second, 95*time.Second), gives(carol, false), changedE("Floor: carol. Queue: empty."))},
		{96 * time.Second, "bob raises", raise(bob), cat(toldE(bob, "You are number 1 in the queue."), changedE("Floor: carol. Queue: 1. bob."))},
		{97 * time.Second, "alice raises", raise(alice), cat(toldE(alice, "You are number 2 in the queue."), changedE("Floor: carol. Queue: 1. bob, 2. alice."))},
		{100 * time.Second, "give alice out of order", give(alice), cat(endedE(carol, 95*time.Second, 100*time.Second), gives(alice, false), takes(carol, ended), changedE("Floor: alice. Queue: 1. bob."))},
		{110 * time.Second, "revoke", revoke, cat(endedE(alice, 100*time.Second, 110*time.Second), takes(alice, ended), changedE("Floor: nobody. Queue: 1. bob."))},
	})
	if m, held := h.Holder(); held {
		t.Errorf("after revoke %v holds the floor", m)
	}
	if q := h.Queue(); !slices.Equal(q, []Member{bob}) {
		t.Errorf("queue %v, want bob", q)
	}
	if h.Minutes() != nil {
		t.Errorf("a hall without minutes kept %v", h.Minutes())
	}
}

// TestLeave: leaving the hall ends one's turn (counted, nobody told) and
// one's place in the queue.
func TestLeave(t *testing.T) {
	run(t, Settings{}, []step{
		{0, "nobody there", leave(alice), nil},
		{0, "alice raises", raise(alice), cat(toldE(alice, "You are number 1 in the queue."), changedE("Floor: nobody. Queue: 1. alice."))},
		{0, "bob raises", raise(bob), cat(toldE(bob, "You are number 2 in the queue."), changedE("Floor: nobody. Queue: 1. alice, 2. bob."))},
		{0, "carol raises", raise(carol), cat(toldE(carol, "You are number 3 in the queue."), changedE("Floor: nobody. Queue: 1. alice, 2. bob, 3. carol."))},
		{5 * time.Second, "next: alice", next, cat(gives(alice, false), changedE("Floor: alice. Queue: 1. bob, 2. carol."))},
		{8 * time.Second, "bob leaves the queue", leave(bob), cat(changedE("Floor: alice. Queue: 1. carol."))},
		{9 * time.Second, "alice leaves holding the floor", leave(alice), cat(endedE(alice, 5*time.Second, 9*time.Second), changedE("Floor: nobody. Queue: 1. carol."))},
		{9 * time.Second, "alice is gone", leave(alice), nil},
	})
}

// TestSpeakingTime: a timed turn warns its speaker 30 s before the end,
// once (again after an extension that moves the end away), and is
// revoked when it is up; !extend adds a minute or what it is told.
func TestSpeakingTime(t *testing.T) {
	const over = "Your speaking time is over."
	h := run(t, Settings{SpeakingTime: 3 * time.Minute}, []step{
		{0, "tick with nobody", tick, nil},
		{0, "extend with nobody", extend(""), cat(Event{Text: "error: There is no timed turn to extend."})},
		{0, "give alice", give(alice), cat(gives(alice, false), changedE("Floor: alice. Queue: empty."))},
		{2*time.Minute + 29*time.Second, "31 s left", tick, nil},
		{2*time.Minute + 31*time.Second, "29 s left", tick, cat(toldE(alice, "29 seconds of speaking time left."))},
		{2*time.Minute + 32*time.Second, "warned once", tick, nil},
		{2*time.Minute + 33*time.Second, "extend 1m", extend("1m"), cat(toldE(alice, "Your speaking time was extended by 1m0s."), changedE("Floor: alice. Queue: empty."))},
		{3*time.Minute + 30*time.Second, "30 s left again", tick, cat(toldE(alice, "30 seconds of speaking time left."))},
		{3*time.Minute + 31*time.Second, "extend 1s: the end still near", extend("1s"), cat(toldE(alice, "Your speaking time was extended by 1s."), changedE("Floor: alice. Queue: empty."))},
		{3*time.Minute + 32*time.Second, "not warned again", tick, nil},
		{3*time.Minute + 33*time.Second, "extend by default a minute", extend(""), cat(toldE(alice, "Your speaking time was extended by 1m0s."), changedE("Floor: alice. Queue: empty."))},
		{3*time.Minute + 33*time.Second, "extend by nonsense", extend("soon"), cat(Event{Text: `error: "soon" is not a duration such as 2m or 30s.`})},
		{3*time.Minute + 33*time.Second, "extend by nothing", extend("0s"), cat(Event{Text: `error: "0s" is not a duration such as 2m or 30s.`})},
		{3*time.Minute + 33*time.Second, "extend backwards", extend("-1m"), cat(Event{Text: `error: "-1m" is not a duration such as 2m or 30s.`})},
		{4*time.Minute + 29*time.Second, "32 s left", tick, nil},
		{4*time.Minute + 32*time.Second, "29 s left", tick, cat(toldE(alice, "29 seconds of speaking time left."))},
		{5*time.Minute + 0*time.Second, "1 s left", tick, nil},
		{5*time.Minute + 1*time.Second, "over", tick, cat(endedE(alice, 0, 5*time.Minute+1*time.Second), takes(alice, over), changedE("Floor: nobody. Queue: empty."))},
		{5*time.Minute + 11*time.Second, "nothing left to end", tick, nil},
		// A new turn gets the whole time and a new warning.
		{6 * time.Minute, "give bob", give(bob), cat(gives(bob, false), changedE("Floor: bob. Queue: empty."))},
		{8*time.Minute + 31*time.Second, "bob: 29 s left", tick, cat(toldE(bob, "29 seconds of speaking time left."))},
		// A tick that comes late ends the turn without a warning.
		{20 * time.Minute, "late tick", tick, cat(endedE(bob, 6*time.Minute, 20*time.Minute), takes(bob, over), changedE("Floor: nobody. Queue: empty."))},
		{20 * time.Minute, "give carol", give(carol), cat(gives(carol, false), changedE("Floor: carol. Queue: empty."))},
		{30 * time.Minute, "first tick long after the end", tick, cat(endedE(carol, 20*time.Minute, 30*time.Minute), takes(carol, over), changedE("Floor: nobody. Queue: empty."))},
	})
	if _, ok := h.TimeLeft(t0); ok {
		t.Error("time left with nobody on the floor")
	}
}

// TestSpeakingTimeChangedDuringATurn: when a reload adds, changes or
// lifts the speaking time while someone holds the floor, the running turn
// gets the new limit counted from its start, a chair's extensions on top;
// if that end has passed already, the speaker has the warning period to
// finish. The speaker is told either way, and not warned again for the
// same end.
func TestSpeakingTimeChangedDuringATurn(t *testing.T) {
	const over = "Your speaking time is over."
	timed := func(d time.Duration) Settings { return Settings{SpeakingTime: d} }
	for _, tc := range []struct {
		name  string
		start Settings
		steps []step
	}{
		{"added to an untimed turn that ran past it", Settings{}, []step{
			{0, "give alice", give(alice), cat(gives(alice, false), changedE("Floor: alice. Queue: empty."))},
			{5 * time.Minute, "3m, passed long ago", configure(timed(3 * time.Minute)), cat(resuppressAllE(),
				toldE(alice, "The speaking time is now 3m0s, which your turn has already passed: 30s left to finish."))},
			{5*time.Minute + time.Second, "the next tick lets her finish", tick, nil},
			{5*time.Minute + 29*time.Second, "told already, not warned", tick, nil},
			{5*time.Minute + 30*time.Second, "over", tick, cat(endedE(alice, 0, 5*time.Minute+30*time.Second), takes(alice, over), changedE("Floor: nobody. Queue: empty."))},
		}},
		{"added to an untimed turn with time to spare", Settings{}, []step{
			{0, "give alice", give(alice), cat(gives(alice, false), changedE("Floor: alice. Queue: empty."))},
			{time.Minute, "3m", configure(timed(3 * time.Minute)), cat(resuppressAllE(),
				toldE(alice, "The speaking time is now 3m0s: 2m0s of your turn left."))},
			{2*time.Minute + 29*time.Second, "31 s left", tick, nil},
			{2*time.Minute + 31*time.Second, "29 s left", tick, cat(toldE(alice, "29 seconds of speaking time left."))},
			{3 * time.Minute, "over", tick, cat(endedE(alice, 0, 3*time.Minute), takes(alice, over), changedE("Floor: nobody. Queue: empty."))},
		}},
		{"shortened", timed(10 * time.Minute), []step{
			{0, "give alice", give(alice), cat(gives(alice, false), changedE("Floor: alice. Queue: empty."))},
			{time.Minute, "10m to 3m", configure(timed(3 * time.Minute)), cat(resuppressAllE(),
				toldE(alice, "The speaking time is now 3m0s: 2m0s of your turn left."))},
			{2*time.Minute + 31*time.Second, "29 s left", tick, cat(toldE(alice, "29 seconds of speaking time left."))},
			{3 * time.Minute, "over at the new end", tick, cat(endedE(alice, 0, 3*time.Minute), takes(alice, over), changedE("Floor: nobody. Queue: empty."))},
		}},
		{"shortened to an end within the warning period", timed(10 * time.Minute), []step{
			{0, "give alice", give(alice), cat(gives(alice, false), changedE("Floor: alice. Queue: empty."))},
			{2*time.Minute + 45*time.Second, "10m to 3m", configure(timed(3 * time.Minute)), cat(resuppressAllE(),
				toldE(alice, "The speaking time is now 3m0s: 15s of your turn left."))},
			{2*time.Minute + 50*time.Second, "told already, not warned", tick, nil},
			{3 * time.Minute, "over", tick, cat(endedE(alice, 0, 3*time.Minute), takes(alice, over), changedE("Floor: nobody. Queue: empty."))},
		}},
		{"lengthened after a warning, the chair's extension kept", timed(3 * time.Minute), []step{
			{0, "give alice", give(alice), cat(gives(alice, false), changedE("Floor: alice. Queue: empty."))},
			{2*time.Minute + 31*time.Second, "29 s left", tick, cat(toldE(alice, "29 seconds of speaking time left."))},
			{2*time.Minute + 40*time.Second, "extend 1m", extend("1m"), cat(toldE(alice, "Your speaking time was extended by 1m0s."), changedE("Floor: alice. Queue: empty."))},
			{3 * time.Minute, "3m to 10m", configure(timed(10 * time.Minute)), cat(resuppressAllE(),
				toldE(alice, "The speaking time is now 10m0s: 8m0s of your turn left."))},
			{10*time.Minute + 31*time.Second, "warned again near the new end", tick, cat(toldE(alice, "29 seconds of speaking time left."))},
			{11 * time.Minute, "over", tick, cat(endedE(alice, 0, 11*time.Minute), takes(alice, over), changedE("Floor: nobody. Queue: empty."))},
		}},
		{"lifted, then set again", timed(3 * time.Minute), []step{
			{0, "give alice", give(alice), cat(gives(alice, false), changedE("Floor: alice. Queue: empty."))},
			{2*time.Minute + 31*time.Second, "29 s left", tick, cat(toldE(alice, "29 seconds of speaking time left."))},
			{2*time.Minute + 40*time.Second, "lifted", configure(Settings{}), cat(resuppressAllE(),
				toldE(alice, "The speaking time was lifted: your turn is no longer timed."))},
			{10 * time.Minute, "untimed", tick, nil},
			{10 * time.Minute, "1m, passed", configure(timed(time.Minute)), cat(resuppressAllE(),
				toldE(alice, "The speaking time is now 1m0s, which your turn has already passed: 30s left to finish."))},
			{10*time.Minute + 30*time.Second, "over", tick, cat(endedE(alice, 0, 10*time.Minute+30*time.Second), takes(alice, over), changedE("Floor: nobody. Queue: empty."))},
		}},
		{"unchanged, or nobody holding the floor", timed(3 * time.Minute), []step{
			{0, "give alice", give(alice), cat(gives(alice, false), changedE("Floor: alice. Queue: empty."))},
			{time.Minute, "other groups, same time", configure(Settings{SpeakingTime: 3 * time.Minute, Groups: []string{"x"}}), cat(resuppressAllE())},
			{2 * time.Minute, "revoke", revoke, cat(endedE(alice, 0, 2*time.Minute), takes(alice, "Your turn has ended."), changedE("Floor: nobody. Queue: empty."))},
			{3 * time.Minute, "1m with nobody on the floor", configure(timed(time.Minute)), cat(resuppressAllE())},
			{4 * time.Minute, "give bob", give(bob), cat(gives(bob, false), changedE("Floor: bob. Queue: empty."))},
			{4*time.Minute + 31*time.Second, "29 s left of the new time", tick, cat(toldE(bob, "29 seconds of speaking time left."))},
			{5 * time.Minute, "over", tick, cat(endedE(bob, 4*time.Minute, 5*time.Minute), takes(bob, over), changedE("Floor: nobody. Queue: empty."))},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { run(t, tc.start, tc.steps) })
	}

	// What the status page shows follows the new end.
	h, _ := Open(Settings{})
	h.Give(alice, t0)
	h.Configure(Settings{SpeakingTime: 3 * time.Minute}, t0.Add(time.Minute))
	if left, ok := h.TimeLeft(t0.Add(time.Minute)); !ok || left != 2*time.Minute {
		t.Errorf("time left %v %v after the change, want 2m0s", left, ok)
	}
}

// TestTimeLeftAndHeld are what the status page shows of a running turn.
func TestTimeLeftAndHeld(t *testing.T) {
	h, _ := Open(Settings{SpeakingTime: time.Minute})
	h.Give(alice, t0)
	if left, ok := h.TimeLeft(t0.Add(20 * time.Second)); !ok || left != 40*time.Second {
		t.Errorf("time left %v %v, want 40s", left, ok)
	}
	if left, ok := h.TimeLeft(t0.Add(2 * time.Minute)); !ok || left != 0 {
		t.Errorf("time left after the end %v %v, want 0", left, ok)
	}
	if d := h.Held(alice.Session, t0.Add(20*time.Second)); d != 20*time.Second {
		t.Errorf("alice held the floor %v, want 20s", d)
	}
	if d := h.Held(bob.Session, t0.Add(20*time.Second)); d != 0 {
		t.Errorf("bob held the floor %v, want 0", d)
	}
	untimed, _ := Open(Settings{})
	untimed.Give(alice, t0)
	if _, ok := untimed.TimeLeft(t0); ok {
		t.Error("time left without a speaking time")
	}
	if _, err := untimed.Extend("1m", t0); err == nil || err.Error() != "There is no timed turn to extend." {
		t.Errorf("extending an untimed turn: %v", err)
	}
}

// TestMinutes: a hall that keeps minutes says so to every speaker and
// below its description, lists every ended turn, keeps at most
// MaxMinutes, and forgets them all when the minutes are turned off.
func TestMinutes(t *testing.T) {
	s := Settings{Minutes: true}
	h := run(t, s, []step{
		{0, "give alice", give(alice), cat(gives(alice, true), changedMinutesE("Floor: alice. Queue: empty."))},
		{90 * time.Second, "give bob", give(bob), cat(endedE(alice, 0, 90*time.Second), gives(bob, true), takes(alice, "Your turn has ended."), changedMinutesE("Floor: bob. Queue: empty."))},
		{120 * time.Second, "bob leaves", leave(bob), cat(endedE(bob, 90*time.Second, 120*time.Second), changedMinutesE("Floor: nobody. Queue: empty."))},
		{120 * time.Second, "same settings, other groups", configure(Settings{Minutes: true, Groups: []string{"x"}}), cat(resuppressAllE())},
	})
	want := []Turn{{"alice", t0, 90 * time.Second}, {"bob", t0.Add(90 * time.Second), 30 * time.Second}}
	if got := h.Minutes(); !slices.Equal(got, want) {
		t.Fatalf("minutes %v, want %v", got, want)
	}
	if ev := h.Configure(Settings{}, t0); !slices.Equal(ev, cat(resuppressAllE(), changedE("Floor: nobody. Queue: empty."))) {
		t.Fatalf("minutes turned off: %s", show(ev))
	}
	if h.Minutes() != nil || h.KeepsMinutes() {
		t.Fatalf("minutes turned off, still kept: %v", h.Minutes())
	}
	h.Give(carol, t0)
	h.Revoke(t0.Add(time.Second))
	if h.Minutes() != nil {
		t.Fatalf("a turn kept without minutes: %v", h.Minutes())
	}
	if ev := h.Configure(s, t0); !slices.Equal(ev, cat(resuppressAllE(), changedMinutesE("Floor: nobody. Queue: empty."))) {
		t.Fatalf("minutes turned on: %s", show(ev))
	}

	// The oldest turns go first once there are MaxMinutes.
	for i := range MaxMinutes + 5 {
		h.Give(Member{Session: uint32(10 + i), Name: fmt.Sprint("m", i)}, t0.Add(time.Duration(i)*time.Minute))
	}
	h.Revoke(t0.Add((MaxMinutes + 5) * time.Minute))
	got := h.Minutes()
	if len(got) != MaxMinutes || got[0].Name != "m5" || got[len(got)-1].Name != fmt.Sprint("m", MaxMinutes+4) {
		t.Fatalf("%d minutes from %s to %s, want %d from m5", len(got), got[0].Name, got[len(got)-1].Name, MaxMinutes)
	}
}

// TestClose: a hall that stops being one counts its running turn.
func TestClose(t *testing.T) {
	run(t, Settings{Minutes: true}, []step{
		{0, "close empty", closeHall, nil},
		{0, "give alice", give(alice), cat(gives(alice, true), changedMinutesE("Floor: alice. Queue: empty."))},
		{time.Minute, "close", closeHall, cat(endedE(alice, 0, time.Minute))},
		{time.Minute, "close again", closeHall, nil},
	})
}

// TestMaySpeak: the holder and priority speakers always may speak; the
// hall's groups may unless everyone is muted, when the chairs may.
func TestMaySpeak(t *testing.T) {
	h, _ := Open(Settings{Groups: []string{"chair", "presidium"}})
	h.Give(alice, t0)
	groupsOf := map[uint32][]string{bob.Session: {"presidium"}, carol.Session: {"chair"}, 4: {"other"}}
	chairs := map[uint32]bool{carol.Session: true, 5: true}
	tests := []struct {
		session  uint32
		priority bool
		muteAll  bool
		want     bool
	}{
		{alice.Session, false, false, true}, // the floor
		{alice.Session, false, true, true},
		{bob.Session, false, false, true}, // presidium
		{bob.Session, false, true, false},
		{carol.Session, false, false, true}, // chair, by group and permission
		{carol.Session, false, true, true},
		{4, false, false, false}, // another group
		{4, true, false, true},   // a priority speaker
		{4, true, true, true},
		{5, false, false, false}, // a chair by permission only
		{5, false, true, true},
		{6, false, false, false}, // nobody in particular
		{6, false, true, false},
	}
	for _, tt := range tests {
		if tt.muteAll {
			h.MuteAll()
		} else {
			h.UnmuteAll()
		}
		asked := ""
		got := h.MaySpeak(tt.session, tt.priority,
			func() bool { asked += "chair "; return chairs[tt.session] },
			func(g string) bool { asked += "group "; return slices.Contains(groupsOf[tt.session], g) })
		if got != tt.want {
			t.Errorf("session %d priority %v mute-all %v: may speak %v, want %v", tt.session, tt.priority, tt.muteAll, got, tt.want)
		}
		if tt.muteAll && strings.Contains(asked, "group") || !tt.muteAll && strings.Contains(asked, "chair") {
			t.Errorf("session %d mute-all %v asked %q", tt.session, tt.muteAll, asked)
		}
	}
	if free, _ := Open(Settings{}); free.MaySpeak(1, false, func() bool { return true }, func(string) bool { return true }) {
		t.Error("a hall without groups let a member without the floor speak")
	}
}

// TestMuteAll: muting and unmuting everyone changes everyone's right to
// speak and shows in the summary.
func TestMuteAll(t *testing.T) {
	h := run(t, Settings{}, []step{
		{0, "muteall", muteAll, cat(resuppressAllE(), changedE("Everyone is muted but the floor, the chairs and priority speakers. Floor: nobody. Queue: empty."))},
		{0, "raise", raise(alice), cat(toldE(alice, "You are number 1 in the queue."), changedE("Everyone is muted but the floor, the chairs and priority speakers. Floor: nobody. Queue: 1. alice."))},
		{0, "unmuteall", unmuteAll, cat(resuppressAllE(), changedE("Floor: nobody. Queue: 1. alice."))},
	})
	if h.AllMuted() {
		t.Error("still muted")
	}
}

// TestSummaryEscapesNames: names are HTML in the summary, escaped.
func TestSummaryEscapesNames(t *testing.T) {
	h, _ := Open(Settings{})
	h.Give(Member{Session: 1, Name: "<b>x</b>"}, t0)
	h.Raise(Member{Session: 2, Name: "a&b"})
	if got, want := h.Summary(), "Floor: &lt;b&gt;x&lt;/b&gt;. Queue: 1. a&amp;b."; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if m, _ := h.Holder(); m.Name != "<b>x</b>" {
		t.Errorf("the holder's name %q", m.Name)
	}
}

// TestSettingsAreCopied: the caller's slice of groups is not the hall's.
func TestSettingsAreCopied(t *testing.T) {
	groups := []string{"chair"}
	h, _ := Open(Settings{Groups: groups})
	groups[0] = "everyone"
	if h.MaySpeak(1, false, nil, func(g string) bool { return g == "everyone" }) {
		t.Error("the hall took the caller's slice")
	}
}
