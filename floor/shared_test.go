package floor

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestAdoptAnotherServersFloor: a hall adopting another server's state
// takes its holder and queue, gives the new holder the floor and tells
// the previous one their turn ended; the turn the other server ended is
// counted only in its speaker's own talk time (TurnEndedElsewhere), not
// as a turn of the hall (TurnEnded), which is the other server's to count.
func TestAdoptAnotherServersFloor(t *testing.T) {
	here, _ := Open(Settings{})
	there, _ := Open(Settings{})
	a, b := Member{Session: 1, Name: "a", ID: "user:1"}, Member{Session: 2, Name: "b", ID: "cert:bb"}
	here.Give(a, t0)
	there.Adopt(here.State())
	there.Raise(b)
	there.Next(t0.Add(40 * time.Second))
	got := here.Adopt(there.State())
	aTurn := Turn{Name: "a", Start: t0.UTC(), Length: 40 * time.Second}
	want := []Event{{Kind: TurnEndedElsewhere, Session: 1, Turn: aTurn}, grantedE(b), toldE(b, textHolding), resuppressE(a), toldE(a, textTurnEnded),
		resuppressAllE(), changedE("Floor: b. Queue: empty.")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("adopting:\n got %v\nwant %v", got, want)
	}
	if !reflect.DeepEqual(here.State(), there.State()) {
		t.Errorf("states differ: %+v, %+v", here.State(), there.State())
	}
	if again := here.Adopt(there.State()); again != nil {
		t.Errorf("adopting the same state again: %v", again)
	}
}

// TestAdoptTakesTheMinutes: a hall that keeps minutes takes the turns
// another server ended; one that does not keeps none.
func TestAdoptTakesTheMinutes(t *testing.T) {
	there, _ := Open(Settings{Minutes: true})
	there.Give(Member{Session: 1, Name: "a"}, t0)
	there.Revoke(t0.Add(90 * time.Second))
	here, _ := Open(Settings{Minutes: true})
	here.Adopt(there.State())
	if got := here.Minutes(); len(got) != 1 || got[0].Name != "a" || got[0].Length != 90*time.Second {
		t.Errorf("the minutes adopted: %+v, want a's 90 s", got)
	}
	without, _ := Open(Settings{})
	without.Adopt(there.State())
	if got := without.Minutes(); len(got) != 0 {
		t.Errorf("a hall without minutes took %+v", got)
	}
}

// TestRebindKeepsPlace: a member who comes back in a new session, known
// by any of their ids, keeps their place; others are untouched.
func TestRebindKeepsPlace(t *testing.T) {
	h, _ := Open(Settings{})
	a, b := Member{Session: 1, Name: "a", ID: "cert:aa"}, Member{Session: 2, Name: "b", ID: "user:2"}
	h.Raise(a)
	h.Raise(b)
	if ev := h.Rebind([]string{"user:9", "cert:zz"}, 7, "z"); ev != nil {
		t.Errorf("a stranger rebound: %v", ev)
	}
	if ev := h.Rebind([]string{"user:5", "cert:aa"}, 9, "a"); len(ev) == 0 {
		t.Error("no events for a rebind")
	}
	if q := h.Queue(); q[0].Session != 9 || q[1].Session != 2 {
		t.Errorf("queue after the rebind: %+v", q)
	}
	if ev := h.Rebind([]string{"cert:aa"}, 9, "a"); ev != nil {
		t.Errorf("rebinding the same session again: %v", ev)
	}
	if ev := h.Rebind(nil, 3, "nobody"); ev != nil {
		t.Errorf("no ids rebound: %v", ev)
	}
}

// TestStateSurvivesJSON: a state that went through JSON (as the cluster
// keeps it) is the same state, minutes included, so adopting it changes
// nothing.
func TestStateSurvivesJSON(t *testing.T) {
	h, _ := Open(Settings{SpeakingTime: time.Minute, Minutes: true})
	h.Give(Member{Session: 3, Name: "c"}, time.Now()) // a clock with a monotonic reading, as the server's
	h.Give(Member{Session: 1, Name: "a", ID: "user:1"}, time.Now())
	h.Raise(Member{Session: 2, Name: "b"})
	if len(h.State().Minutes) != 1 {
		t.Fatalf("the state's minutes: %+v, want c's turn", h.State().Minutes)
	}
	data, err := json.Marshal(h.State())
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, h.State()) {
		t.Errorf("after JSON:\n got %+v\nwant %+v", back, h.State())
	}
	if ev := h.Adopt(back); ev != nil {
		t.Errorf("adopting its own state from JSON: %v", ev)
	}
}

// TestAdoptTellsWhoMovedBack: two hands raised at once on two servers;
// the one whose write lost adopts the other's revision with its own hand
// after it, and its member, told number 1, is told number 2. Nobody who
// moved forward is told anything.
func TestAdoptTellsWhoMovedBack(t *testing.T) {
	here, _ := Open(Settings{})
	there, _ := Open(Settings{})
	a, b, c := Member{Session: 1, Name: "a", ID: "user:1"}, Member{Session: 2, Name: "b", ID: "user:2"}, Member{Session: 3, Name: "c", ID: "user:3"}
	there.Raise(b) // won the race
	here.Raise(a)  // told "number 1" here
	replayed := there.Clone()
	replayed.Raise(a)
	got := here.Adopt(replayed.State())
	want := []Event{toldE(a, "You are now number 2 in the queue: someone else's hand was raised first."),
		resuppressAllE(), changedE("Floor: nobody. Queue: 1. b, 2. a.")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("adopting:\n got %v\nwant %v", got, want)
	}
	here.Raise(c)
	forward := here.Clone()
	forward.Next(t0) // b gets the floor: a and c move forward
	for _, e := range here.Adopt(forward.State()) {
		if e.Kind == Tell && (e.Session == a.Session || e.Session == c.Session) {
			t.Errorf("told a member who moved forward: %v", e)
		}
	}
}
