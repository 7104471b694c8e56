package server

// What the admin listener (package admin) shows of the server and does
// on it: Status, built under the server's lock, and the chair's floor
// actions.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plenum-voice/plenum/admin"
)

// talkingWindow is how recently a user must have sent voice to be shown
// talking: longer than a lost packet or two, shorter than a pause.
const talkingWindow = 400 * time.Millisecond

// Status takes a snapshot of the server for the operator.
func (s *Server) Status() admin.Status {
	s.mu.Lock()
	defer s.unlock()
	now := s.now()
	st := admin.Status{Time: now}
	live := s.livePathsLocked()
	paths := make(map[*channel]string, len(live))
	for p, ch := range live {
		paths[ch] = p
	}
	for _, ch := range s.breadthFirst() {
		if len(ch.users) == 0 && ch.floor == nil {
			continue
		}
		cs := admin.ChannelStatus{ID: ch.id, Path: displayPath(paths[ch], ch), Floor: s.floorStatusLocked(ch, now)}
		if v := ch.virtual; v != nil {
			cs.Recording, cs.Mixing = v.recording, v.mixing
		}
		for u := range ch.users {
			cs.Users = append(cs.Users, s.userStatusLocked(u, now))
		}
		slices.SortFunc(cs.Users, func(a, b admin.UserStatus) int { return strings.Compare(a.Name, b.Name) })
		st.Channels = append(st.Channels, cs)
	}
	return st
}

// FloorAction carries out a chair's action on the hall at path, as the
// admin API does.
func (s *Server) FloorAction(path, action, arg string) (string, error) {
	s.mu.Lock()
	defer s.unlock()
	hall := s.livePathsLocked()[path]
	if hall == nil || hall.floor == nil {
		return "", fmt.Errorf("no floor-controlled hall %q", path)
	}
	if action == "" {
		return "", errors.New("no action")
	}
	return s.floorActionLocked(hall, action, arg)
}

func displayPath(p string, ch *channel) string {
	if p == "" {
		return ch.name
	}
	return p
}

func (s *Server) floorStatusLocked(ch *channel, now time.Time) *admin.FloorStatus {
	f := ch.floor
	if f == nil {
		return nil
	}
	fs := &admin.FloorStatus{Queue: []string{}, MuteAll: f.AllMuted(), MinutesKept: f.KeepsMinutes()}
	for _, t := range f.Minutes() {
		fs.Minutes = append(fs.Minutes, admin.TurnStatus{Name: t.Name, Start: t.Start, Seconds: t.Length.Seconds()})
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

func (s *Server) userStatusLocked(u *user, now time.Time) admin.UserStatus {
	us := admin.UserStatus{
		Session:   u.session,
		Name:      u.name,
		Talking:   time.Now().UnixNano()-u.speaker.LastSpoke() < int64(talkingWindow),
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
