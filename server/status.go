package server

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Status is what the status page and /api/status show an operator: the
// channels with their members, who is talking, each hall's floor, what is
// recorded, and how each connection is doing. It holds names, which is
// why only the operator may read it (adminauth.go); no address.
type Status struct {
	Time     time.Time       `json:"time"`
	Channels []ChannelStatus `json:"channels"`
}

// ChannelStatus is one channel with people in it, or with a floor.
type ChannelStatus struct {
	ID        uint32       `json:"id"`
	Path      string       `json:"path"`
	Recording bool         `json:"recording,omitempty"`
	Mixing    bool         `json:"mixing,omitempty"`
	Floor     *FloorStatus `json:"floor,omitempty"`
	Users     []UserStatus `json:"users"`
}

// FloorStatus is a hall's floor.
type FloorStatus struct {
	Holder      string       `json:"holder,omitempty"`
	LeftSec     float64      `json:"left_s,omitempty"` // speaking time left; 0 without a limit
	Queue       []string     `json:"queue"`
	MuteAll     bool         `json:"mute_all,omitempty"`
	MinutesKept bool         `json:"minutes_kept,omitempty"` // floor_minutes: the hall keeps Minutes
	Minutes     []TurnStatus `json:"minutes,omitempty"`      // the ended turns, oldest first
}

// TurnStatus is one ended turn on the floor, for the minutes.
type TurnStatus struct {
	Name    string    `json:"name"`
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
}

// UserStatus is one member.
type UserStatus struct {
	Session   uint32  `json:"session"`
	Name      string  `json:"name"`
	Talking   bool    `json:"talking"`
	Silenced  bool    `json:"silenced,omitempty"` // muted, suppressed or self-muted
	Transport string  `json:"transport"`          // "udp" or "tcp": how voice reaches them
	PingMs    float64 `json:"ping_ms"`            // the client's own average, UDP or TCP
	LossPct   float64 `json:"loss_pct"`           // voice from the server the client lost
	FloorSec  float64 `json:"floor_s,omitempty"`  // time they held a floor since they connected
}

// talkingWindow is how recently a user must have sent voice to be shown
// talking: longer than a lost packet or two, shorter than a pause.
const talkingWindow = 400 * time.Millisecond

// Status takes a snapshot of the server for the operator.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.unlock()
	now := s.now()
	st := Status{Time: now}
	live := s.livePathsLocked()
	paths := make(map[*channel]string, len(live))
	for p, ch := range live {
		paths[ch] = p
	}
	for _, ch := range s.breadthFirst() {
		if len(ch.users) == 0 && ch.floor == nil {
			continue
		}
		cs := ChannelStatus{ID: ch.id, Path: displayPath(paths[ch], ch), Floor: s.floorStatusLocked(ch, now)}
		if v := ch.virtual; v != nil {
			cs.Recording, cs.Mixing = v.recording, v.mixing
		}
		for u := range ch.users {
			cs.Users = append(cs.Users, s.userStatusLocked(u, now))
		}
		slices.SortFunc(cs.Users, func(a, b UserStatus) int { return strings.Compare(a.Name, b.Name) })
		st.Channels = append(st.Channels, cs)
	}
	return st
}

func displayPath(p string, ch *channel) string {
	if p == "" {
		return ch.name
	}
	return p
}

func (s *Server) floorStatusLocked(ch *channel, now time.Time) *FloorStatus {
	f := ch.floor
	if f == nil {
		return nil
	}
	fs := &FloorStatus{Queue: []string{}, MuteAll: f.AllMuted(), MinutesKept: f.KeepsMinutes()}
	for _, t := range f.Minutes() {
		fs.Minutes = append(fs.Minutes, TurnStatus{Name: t.Name, Start: t.Start, Seconds: t.Length.Seconds()})
	}
	if holder, ok := f.Holder(); ok {
		fs.Holder = holder.Name
		if left, timed := f.TimeLeft(now); timed {
			fs.LeftSec = left.Seconds()
		}
	}
	for _, m := range f.Queue() {
		fs.Queue = append(fs.Queue, m.Name)
	}
	return fs
}

func (s *Server) userStatusLocked(u *user, now time.Time) UserStatus {
	us := UserStatus{
		Session:   u.session,
		Name:      u.name,
		Talking:   time.Now().UnixNano()-u.lastSpoke.Load() < int64(talkingWindow),
		Silenced:  u.mute || u.suppress || u.selfMute,
		Transport: "tcp",
		FloorSec:  u.floorTime.Seconds(),
	}
	if u.udpTarget(now.UnixNano()) != nil {
		us.Transport = "udp"
	}
	if hall := u.channel; hall != nil && hall.floor != nil {
		us.FloorSec += hall.floor.Held(u.session, now).Seconds()
	}
	if cs := u.clientStats; cs != nil {
		us.PingMs = float64(cs.GetTcpPingAvg())
		if us.Transport == "udp" {
			us.PingMs = float64(cs.GetUdpPingAvg())
		}
		if n := cs.GetGood() + cs.GetLate() + cs.GetLost(); n > 0 {
			us.LossPct = 100 * float64(cs.GetLost()) / float64(n)
		}
	}
	return us
}

// String is a one-line summary, for logs and tests.
func (cs ChannelStatus) String() string {
	var talking []string
	for _, u := range cs.Users {
		if u.Talking {
			talking = append(talking, u.Name)
		}
	}
	return fmt.Sprintf("%s: %d users, talking %v", cs.Path, len(cs.Users), talking)
}
