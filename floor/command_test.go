package floor

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestCommandLine: a chat message is a command when its text, without
// HTML, starts with '!'.
func TestCommandLine(t *testing.T) {
	tests := []struct {
		message, line string
		ok            bool
	}{
		{"!hand", "hand", true},
		{"  !hand  ", "hand", true},
		{"<p>!next</p>", "next", true},
		{`<span style="x">!give</span> <b>alice</b>`, "give alice", true},
		{"!give &lt;b&gt;", "give <b>", true},
		{"&#33;queue", "queue", true}, // an escaped '!' is still one
		{"!", "", true},
		{"hello !hand", "", false},
		{"<!-- -->hand", "", false},
		{"", "", false},
		{"¡hand", "", false},
	}
	for _, tt := range tests {
		line, ok := CommandLine(tt.message)
		if line != tt.line || ok != tt.ok {
			t.Errorf("CommandLine(%q) = %q, %v; want %q, %v", tt.message, line, ok, tt.line, tt.ok)
		}
	}
}

// TestParse: verbs in any case; "hand withdraw" is one; the chairs'
// verbs keep their argument as typed; anything else is unknown.
func TestParse(t *testing.T) {
	tests := []struct {
		line string
		want Command
		ok   bool
	}{
		{"", Command{}, false},
		{"   ", Command{}, false},
		{"hand", Command{Verb: Hand}, true},
		{"HAND", Command{Verb: Hand}, true},
		{"hand please", Command{Verb: Hand}, true},
		{"hand withdraw", Command{Verb: Withdraw}, true},
		{"Hand WITHDRAW now", Command{Verb: Withdraw}, true},
		{"withdraw", Command{Verb: "withdraw"}, true},
		{"queue", Command{Verb: ShowQueue}, true},
		{"next", Command{Verb: Next}, true},
		{"give Carol", Command{Verb: Give, Arg: "Carol"}, true},
		{"  GIVE   Anna Maria  ", Command{Verb: Give, Arg: "Anna Maria"}, true},
		{"give", Command{Verb: Give}, true},
		{"revoke", Command{Verb: Revoke}, true},
		{"clear", Command{Verb: Clear}, true},
		{"extend 2m", Command{Verb: Extend, Arg: "2m"}, true},
		{"Extend 2M", Command{Verb: Extend, Arg: "2M"}, true},
		{"muteall", Command{Verb: MuteAll}, true},
		{"UnMuteAll", Command{Verb: UnmuteAll}, true},
		{"help", Command{Verb: "help"}, true},
		{"Ⱥ", Command{Verb: "ⱥ"}, true}, // longer in lower case: no argument taken
	}
	for _, tt := range tests {
		got, ok := Parse(tt.line)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
	for _, v := range []Verb{Hand, Withdraw, ShowQueue, "help", "hand withdraw x"} {
		if v.ForChairs() {
			t.Errorf("%q is for chairs", v)
		}
	}
	for _, v := range []Verb{Next, Give, Revoke, Clear, Extend, MuteAll, UnmuteAll} {
		if !v.ForChairs() {
			t.Errorf("%q is not for chairs", v)
		}
	}
}

// FuzzCommand feeds any chat text through the command parser and, when
// it is one, into a hall, as from a member and from a chair: nothing
// panics, the summary stays valid text, and the hall keeps its rules (a
// holder is never queued, nobody is queued twice).
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"!hand", "!hand withdraw", "<p>!give alice</p>", "!extend 2m", "!EXTEND -1h", "!next", "!muteall", "!queue", "!Ⱥ", "!give \xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, message string) {
		line, ok := CommandLine(message)
		if !ok {
			return
		}
		if !strings.HasPrefix(strings.TrimSpace(message), "!") && !strings.Contains(message, "<") && !strings.Contains(message, "&") {
			t.Fatalf("%q taken as a command", message)
		}
		c, ok := Parse(line)
		if !ok {
			return
		}
		if c.Arg != "" && !c.Verb.ForChairs() {
			t.Fatalf("%q: an argument for %q", line, c.Verb)
		}
		h, _ := Open(Settings{SpeakingTime: time.Minute, Minutes: true})
		now := t0
		member := Member{Session: 1, Name: c.Arg}
		h.Raise(Member{Session: 2, Name: line})
		for range 2 {
			switch c.Verb {
			case Hand:
				h.Raise(member)
			case Withdraw:
				h.Withdraw(member.Session)
			case Next:
				h.Next(now)
			case Give:
				h.Give(member, now)
			case Revoke:
				h.Revoke(now)
			case Clear:
				h.Clear()
			case Extend:
				h.Extend(c.Arg, now)
			case MuteAll:
				h.MuteAll()
			case UnmuteAll:
				h.UnmuteAll()
			}
			now = now.Add(45 * time.Second)
			h.Tick(now)
		}
		if s := h.Summary(); !utf8.ValidString(s) && utf8.ValidString(line) {
			t.Fatalf("summary %q", s)
		}
		seen := map[uint32]bool{}
		holder, held := h.Holder()
		for _, m := range h.Queue() {
			if seen[m.Session] || held && m.Session == holder.Session {
				t.Fatalf("%q: queue %v, holder %v", line, h.Queue(), holder)
			}
			seen[m.Session] = true
		}
	})
}

// TestErrors: what a chair or member reads when a command cannot be done.
func TestErrors(t *testing.T) {
	if got, want := NotInHall("Zed", "Plenary").Error(), `Nobody called "Zed" is in Plenary.`; got != want {
		t.Errorf("NotInHall: %q, want %q", got, want)
	}
	if got := ErrUnknown.Error(); !strings.HasPrefix(got, "Floor commands: !hand, !hand withdraw, !queue; for chairs !next, !give NAME,") {
		t.Errorf("ErrUnknown: %q", got)
	}
}
