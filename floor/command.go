package floor

// Commands are text messages to the hall (or its requests channel) that
// start with '!'. They come from clients as chat, HTML and all.

import (
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"
)

// Verb is what a command asks for.
type Verb string

// What members may ask for.
const (
	Hand      Verb = "hand"          // join the queue
	Withdraw  Verb = "hand withdraw" // leave it
	ShowQueue Verb = "queue"         // who holds the floor and who waits
)

// What only chairs may do, from a client or the admin API.
const (
	Next      Verb = "next"      // the first in the queue gets the floor
	Give      Verb = "give"      // Arg gets the floor
	Revoke    Verb = "revoke"    // nobody holds the floor
	Clear     Verb = "clear"     // empty the queue
	Extend    Verb = "extend"    // the running turn gets Arg (a duration) or a minute more
	MuteAll   Verb = "muteall"   // only the floor, chairs and priority speakers may speak
	UnmuteAll Verb = "unmuteall" // lift MuteAll
)

// ForChairs reports whether only chairs may give v.
func (v Verb) ForChairs() bool {
	switch v {
	case Next, Give, Revoke, Clear, Extend, MuteAll, UnmuteAll:
		return true
	}
	return false
}

// Command is one floor command.
type Command struct {
	Verb Verb   // lower case; anything unknown is answered with ErrUnknown
	Arg  string // for chairs' verbs: the rest of the line, as typed
}

// ErrUnknown answers an unknown command with the list of commands.
var ErrUnknown = errors.New(textHelp)

// NotInHall is the error for a give to a name nobody in the hall has.
func NotInHall(name, hall string) error {
	return fmt.Errorf(textNotInHall, name, hall)
}

var htmlTag = regexp.MustCompile(`<[^>]*>`)

// CommandLine returns a chat message's text as a floor command line:
// without HTML, surrounding space and the leading '!'. ok is false when
// the message does not start with '!', so it is chat.
func CommandLine(message string) (line string, ok bool) {
	text := strings.TrimSpace(html.UnescapeString(htmlTag.ReplaceAllString(message, "")))
	if !strings.HasPrefix(text, "!") {
		return "", false
	}
	return text[1:], true
}

// Parse reads a command line (without its '!'); ok is false for an
// empty one, which is ignored. Verbs are matched in any case.
func Parse(line string) (c Command, ok bool) {
	words := strings.Fields(strings.ToLower(line))
	if len(words) == 0 {
		return Command{}, false
	}
	c.Verb = Verb(words[0])
	switch {
	case c.Verb == Hand && len(words) > 1 && words[1] == "withdraw":
		c.Verb = Withdraw
	case c.Verb.ForChairs():
		// Only these verbs are cut off the line: they are ASCII and keep
		// their length in lower case, which an arbitrary word need not.
		c.Arg = strings.TrimSpace(strings.TrimSpace(line)[len(words[0]):])
	}
	return c, true
}
