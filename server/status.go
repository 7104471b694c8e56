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

// build is Build(), read once.
var build = Build()

// Status takes a snapshot of the server for the operator.
func (s *Server) Status() admin.Status {
	s.mu.Lock()
	defer s.unlock()
	now := s.now()
	st := admin.Status{Time: now, Version: VersionString(), Build: build, Started: s.started}
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
		slices.SortFunc(cs.Users, func(a, b admin.UserStatus) int { return strings.Compare(a.Name, b.Name) }) // the page sorts naturally
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

// userStatusLocked is u for the status; now is the floor's clock (which
// tests replace), while the voice path's times are the real clock's.
func (s *Server) userStatusLocked(u *user, now time.Time) admin.UserStatus {
	wall := time.Now().UnixNano()
	us := admin.UserStatus{
		Session:   u.session,
		Name:      u.name,
		Talking:   wall-u.speaker.LastSpoke() < int64(talkingWindow),
		Silenced:  u.mute || u.suppress || u.selfMute,
		Transport: "tcp",
		TalkSec:   u.talkTime.Seconds(),
		FloorSec:  u.floorTime.Seconds(),
	}
	if u.udpTarget(wall) != nil {
		us.Transport = "udp"
	}
	if hall := u.channel; hall != nil && hall.floor != nil {
		us.FloorSec += hall.floor.Held(u.session, now).Seconds()
	}
	if cs := u.clientStats; cs != nil {
		us.PingMs = reportedPing(cs.TcpPingAvg, cs.TcpPackets)
		us.UDPPingMs = reportedPing(cs.UdpPingAvg, cs.UdpPackets)
	}
	if w := &u.loss; w.inOK || w.outOK {
		worst := 0.0
		if w.inOK {
			us.LossInPct, worst = ptr(w.in), w.in
		}
		if w.outOK {
			us.LossOutPct, worst = ptr(w.out), max(worst, w.out)
		}
		us.LossPct = &worst
	}
	return us
}

// reportedPing is a ping average a client reported, in milliseconds, or
// nil when it has none: it reports 0 (or leaves the average out) before it
// has measured, and the count of its measurements, where it sends one, is
// then 0. The server never measures a round trip itself: it only echoes
// the client's pings.
func reportedPing(avg *float32, measured *uint32) *float64 {
	if avg == nil || *avg <= 0 || measured != nil && *measured == 0 {
		return nil
	}
	return ptr(float64(*avg))
}
