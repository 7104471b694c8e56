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

import (
	"errors"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// floor is the state of a floor-controlled hall.
type floor struct {
	groups   []string      // group specs that always may speak
	requests string        // name of the subchannel whose entrants ask for the floor; "" = none
	limit    time.Duration // speaking time per turn; 0 = none
	holder   *user         // who holds the floor, or nil
	queue    []*user       // who asked, in order
	since    time.Time     // the holder's turn began
	deadline time.Time     // the holder's turn ends then (with a limit)
	warned   bool          // the holder was told their time runs out
	muteAll  bool          // only the holder, chairs and priority speakers may speak
	minutes  bool          // turns are kept for the minutes (floor_minutes)
	turns    []floorTurn   // the ended turns, oldest first, with minutes
}

// minutesNotice is shown below the description of a hall that keeps
// minutes, so nobody takes the floor without knowing.
const minutesNotice = "Turns on the floor are noted for the minutes: who spoke, when and for how long."

// floorWarning is how long before the end of a turn its speaker is told.
const floorWarning = 30 * time.Second

// setFloorLocked makes ch a hall as def says (keeping who holds the floor
// and the queue when it already was one), or an ordinary channel, and
// recomputes who in it is suppressed.
func (s *Server) setFloorLocked(ch *channel, def *conf.Channel) {
	switch {
	case !def.Floor && ch.floor == nil:
		return
	case !def.Floor:
		s.endTurnLocked(ch) // counted, as any ended turn
		ch.floor = nil
		ch.setNote("")
		out := &mumblepb.ChannelState{ChannelId: ptr(ch.id)}
		ch.describe(out)
		s.broadcastLocked(out, nil)
	case ch.floor == nil:
		ch.floor = &floor{minutes: def.FloorMinutes}
		defer s.floorChangedLocked(ch) // show the empty floor once it is set up
	case ch.floor.minutes != def.FloorMinutes:
		ch.floor.minutes, ch.floor.turns = def.FloorMinutes, nil // turned off: forgotten
		defer s.floorChangedLocked(ch)                           // the hall is told either way
	}
	if f := ch.floor; f != nil {
		f.groups, f.requests, f.limit = slices.Clone(def.FloorGroups), def.FloorRequests, def.SpeakingTime.Duration
	}
	for u := range ch.users {
		s.resuppressLocked(u)
	}
}

// floorAllowsLocked reports whether the floor lets u speak in ch: it is
// not a hall, or u holds the floor, is a priority speaker, or belongs to
// one of its groups; while everyone is muted, chairs instead of the groups.
func (s *Server) floorAllowsLocked(u *user, ch *channel) bool {
	f := ch.floor
	if f == nil || f.holder == u || u.prioritySpeak {
		return true
	}
	if f.muteAll {
		return s.may(u, ch, acl.MuteDeafen)
	}
	for _, g := range f.groups {
		if s.policy.InGroup(serverTree{s}, u.subject, ch.id, g) {
			return true
		}
	}
	return false
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

var htmlTag = regexp.MustCompile(`<[^>]*>`)

// floorCommand returns the hall a text message is a floor command for and
// the command's text without the '!' (HTML removed); ok is false for
// anything else, which is then handled as chat. A command is a message to
// one channel, the hall or its requests subchannel, starting with '!'.
func (s *Server) floorCommand(m *mumblepb.TextMessage) (hall *channel, line string, ok bool) {
	if len(m.ChannelId) != 1 || len(m.TreeId) != 0 || len(m.Session) != 0 {
		return nil, "", false
	}
	text := strings.TrimSpace(html.UnescapeString(htmlTag.ReplaceAllString(m.GetMessage(), "")))
	if !strings.HasPrefix(text, "!") {
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
	return ch, text[1:], true
}

// handleFloorCommandLocked carries out a floor command (line, without its
// '!') from u in hall.
func (s *Server) handleFloorCommandLocked(u *user, hall *channel, line string) {
	words := strings.Fields(strings.ToLower(line))
	f := hall.floor
	if len(words) == 0 {
		return
	}
	switch words[0] {
	case "hand":
		if len(words) > 1 && words[1] == "withdraw" {
			s.withdrawLocked(hall, u)
			return
		}
		s.raiseHandLocked(hall, u)
		return
	case "queue":
		s.tellLocked(u, s.floorSummaryLocked(f))
		return
	}
	if !chairActions[words[0]] {
		s.tellLocked(u, errUnknownFloorAction.Error())
		return
	}
	if !s.may(u, hall, acl.MuteDeafen) {
		s.deny(u, acl.MuteDeafen, hall)
		return
	}
	arg := strings.TrimSpace(strings.TrimSpace(line)[len(words[0]):])
	if msg, err := s.floorActionLocked(hall, words[0], arg); err != nil {
		s.tellLocked(u, err.Error())
	} else if msg != "" {
		s.tellLocked(u, msg)
	}
}

// chairActions are the commands only chairs may give.
var chairActions = map[string]bool{"next": true, "give": true, "revoke": true, "clear": true, "extend": true, "muteall": true, "unmuteall": true}

// errUnknownFloorAction lists the chair's commands.
var errUnknownFloorAction = errors.New("Floor commands: !hand, !hand withdraw, !queue; for chairs !next, !give NAME, !revoke, !clear, !extend [DURATION], !muteall, !unmuteall.")

// floorActionLocked carries out a chair's action on hall, from a client
// or the admin API: next, give (arg: a name), revoke, clear, extend (arg:
// a duration, or empty for a minute), muteall, unmuteall. It returns a
// message for the chair, or an error saying why it could not be done.
func (s *Server) floorActionLocked(hall *channel, action, arg string) (string, error) {
	f := hall.floor
	switch action {
	case "next":
		if len(f.queue) == 0 {
			s.giveFloorLocked(hall, nil)
			return "Nobody is waiting for the floor.", nil
		}
		s.giveFloorLocked(hall, f.queue[0])
	case "give":
		target := s.userNamedLocked(arg)
		if target == nil || (target.channel != hall && !s.isRequestsChannel(hall, target.channel)) {
			return "", fmt.Errorf("Nobody called %q is in %s.", arg, hall.name)
		}
		s.giveFloorLocked(hall, target)
	case "revoke":
		s.giveFloorLocked(hall, nil)
	case "clear":
		f.queue = nil
		s.floorChangedLocked(hall)
	case "extend":
		return "", s.extendLocked(hall, arg)
	case "muteall", "unmuteall":
		f.muteAll = action == "muteall"
		for m := range hall.users {
			s.resuppressLocked(m)
		}
		s.floorChangedLocked(hall)
	default:
		return "", errUnknownFloorAction
	}
	return "", nil
}

func (s *Server) isRequestsChannel(hall, ch *channel) bool {
	return ch != nil && ch.parent == hall && hall.floor.requests != "" && ch.name == hall.floor.requests
}

func (s *Server) userNamedLocked(name string) *user {
	for _, u := range s.users {
		if strings.EqualFold(u.name, name) {
			return u
		}
	}
	return nil
}

// raiseHandLocked puts u at the end of the queue, once.
func (s *Server) raiseHandLocked(hall *channel, u *user) {
	f := hall.floor
	if f.holder == u {
		s.tellLocked(u, "You have the floor.")
		return
	}
	if i := slices.Index(f.queue, u); i >= 0 {
		s.tellLocked(u, fmt.Sprintf("You are number %d in the queue.", i+1))
		return
	}
	f.queue = append(f.queue, u)
	s.tellLocked(u, fmt.Sprintf("You are number %d in the queue.", len(f.queue)))
	s.floorChangedLocked(hall)
}

// withdrawLocked takes u out of the queue.
func (s *Server) withdrawLocked(hall *channel, u *user) {
	f := hall.floor
	i := slices.Index(f.queue, u)
	if i < 0 {
		return
	}
	f.queue = slices.Delete(f.queue, i, i+1)
	s.tellLocked(u, "You left the queue.")
	s.floorChangedLocked(hall)
}

// giveFloorLocked hands the floor to u (nil: nobody), taking u out of the
// queue, and updates who is suppressed.
func (s *Server) giveFloorLocked(hall *channel, u *user) {
	s.handOverLocked(hall, u, "Your turn has ended.")
}

// handOverLocked is giveFloorLocked telling the previous holder why their
// turn ended.
func (s *Server) handOverLocked(hall *channel, u *user, why string) {
	f := hall.floor
	prev := f.holder
	s.endTurnLocked(hall)
	f.holder = u
	f.warned = false
	f.since = s.now()
	if f.limit > 0 {
		f.deadline = f.since.Add(f.limit)
	}
	if u != nil {
		if i := slices.Index(f.queue, u); i >= 0 {
			f.queue = slices.Delete(f.queue, i, i+1)
		}
		if u.channel != hall {
			s.moveIntoHallLocked(hall, u) // from the requests channel
		}
		s.resuppressLocked(u)
		if f.minutes {
			s.tellLocked(u, "You have the floor. Your turn is noted for the minutes.")
		} else {
			s.tellLocked(u, "You have the floor.")
		}
	}
	if prev != nil && prev != u {
		s.resuppressLocked(prev)
		s.tellLocked(prev, why)
	}
	s.floorChangedLocked(hall)
}

// moveIntoHallLocked brings a member waiting in the requests channel into
// the hall to speak.
func (s *Server) moveIntoHallLocked(hall *channel, u *user) {
	out := &mumblepb.UserState{Session: ptr(u.session)}
	left := s.enterLocked(u, hall, out)
	s.broadcastLocked(out, nil)
	s.removeIfEmptyTemporaryLocked(left)
}

// floorChangedLocked shows the new state below the hall's description, to
// everyone, and tells the chairs in the hall.
func (s *Server) floorChangedLocked(hall *channel) {
	summary := s.floorSummaryLocked(hall.floor)
	note := "<p>" + summary + "</p>"
	if hall.floor.minutes {
		note += "<p><i>" + minutesNotice + "</i></p>"
	}
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

func (s *Server) floorSummaryLocked(f *floor) string {
	var b strings.Builder
	if f.muteAll {
		b.WriteString("Everyone is muted but the floor, the chairs and priority speakers. ")
	}
	if f.holder != nil {
		fmt.Fprintf(&b, "Floor: %s.", html.EscapeString(f.holder.name))
	} else {
		b.WriteString("Floor: nobody.")
	}
	if len(f.queue) == 0 {
		b.WriteString(" Queue: empty.")
		return b.String()
	}
	b.WriteString(" Queue:")
	for i, u := range f.queue {
		fmt.Fprintf(&b, " %d. %s", i+1, html.EscapeString(u.name))
		if i < len(f.queue)-1 {
			b.WriteString(",")
		}
	}
	b.WriteString(".")
	return b.String()
}

// tellLocked sends u a private message from the server.
func (s *Server) tellLocked(u *user, text string) {
	u.conn.send(&mumblepb.TextMessage{Session: []uint32{u.session}, Message: ptr(text)})
}

// floorLeftLocked follows u out of ch (moved away or disconnected): out of
// the floor and the queue of the hall ch belongs to. Entering a hall's
// requests channel raises a hand.
func (s *Server) floorMovedLocked(u *user, from, to *channel) {
	for _, hall := range []*channel{from, hallOf(from)} {
		if hall == nil || hall.floor == nil || to == hall || s.isRequestsChannel(hall, to) {
			continue
		}
		f := hall.floor
		if f.holder == u {
			s.endTurnLocked(hall)
			s.floorChangedLocked(hall)
		}
		if i := slices.Index(f.queue, u); i >= 0 {
			f.queue = slices.Delete(f.queue, i, i+1)
			s.floorChangedLocked(hall)
		}
	}
	if hall := hallOf(to); hall != nil && s.isRequestsChannel(hall, to) {
		s.raiseHandLocked(hall, u)
	}
}

// hallOf is the hall ch is the requests channel of, or nil.
func hallOf(ch *channel) *channel {
	if ch == nil || ch.parent == nil || ch.parent.floor == nil || ch.parent.floor.requests != ch.name {
		return nil
	}
	return ch.parent
}

// extendLocked gives the current turn more time: arg as a duration
// ("2m"), one minute when empty.
func (s *Server) extendLocked(hall *channel, arg string) error {
	f := hall.floor
	if f.holder == nil || f.limit == 0 {
		return errors.New("There is no timed turn to extend.")
	}
	more := time.Minute
	if arg != "" {
		d, err := time.ParseDuration(arg)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a duration such as 2m or 30s.", arg)
		}
		more = d
	}
	f.deadline = f.deadline.Add(more)
	if f.deadline.Sub(s.now()) > floorWarning {
		f.warned = false
	}
	s.tellLocked(f.holder, fmt.Sprintf("Your speaking time was extended by %v.", more))
	s.floorChangedLocked(hall)
	return nil
}

// checkFloorTimeLocked warns speakers whose time runs out and ends the
// turns whose time is up.
func (s *Server) checkFloorTimeLocked() {
	now := s.now()
	for _, hall := range s.channels {
		f := hall.floor
		if f == nil || f.holder == nil || f.limit == 0 {
			continue
		}
		switch left := f.deadline.Sub(now); {
		case left <= 0:
			s.handOverLocked(hall, nil, "Your speaking time is over.")
		case left <= floorWarning && !f.warned:
			f.warned = true
			s.tellLocked(f.holder, fmt.Sprintf("%d seconds of speaking time left.", int(left.Round(time.Second).Seconds())))
		}
	}
}

// floorClock checks the speaking times twice a second until the server
// stops.
func (s *Server) floorClock() {
	defer s.wg.Done()
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
