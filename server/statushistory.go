package server

// What the status page knows beyond the moment: the history of the server
// as a whole for its charts (admin.History, counts only), and, per user,
// their loss over about the last minute and their time talking. A sampler
// goroutine keeps both, once a second.

import (
	"sync"
	"time"

	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/crypto"
	"github.com/plenum-voice/plenum/voice"
)

// statusHistory is the sampler's state.
type statusHistory struct {
	history  *admin.History
	sampleMu sync.Mutex // one sample at a time: the sampler's, or a test's
	sampler  *admin.Sampler
	lastTick time.Time // under sampleMu
}

func newStatusHistory() statusHistory {
	h := admin.NewHistory()
	return statusHistory{history: h, sampler: admin.NewSampler(h)}
}

// History is the server's history for the status page's charts.
func (s *Server) History() *admin.History { return s.history }

// statusTick is how often the sampler looks; tests slow it down to drive
// it themselves.
var statusTick = time.Second

// sampleStatusLoop samples the server once a second until it stops.
func (s *Server) sampleStatusLoop() {
	t := time.NewTicker(statusTick)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case now := <-t.C:
			s.sampleStatus(now)
		}
	}
}

// sampleStatus counts who is talking and adds to their talk time; every
// admin.SampleEvery it also measures everyone's loss and adds a sample to
// the history. now is the sampler's clock; who is talking is judged by
// the real one, which the voice path keeps.
func (s *Server) sampleStatus(now time.Time) {
	s.sampleMu.Lock()
	defer s.sampleMu.Unlock()
	since := now.Sub(s.lastTick)
	if s.lastTick.IsZero() || since < 0 || since > 2*time.Second {
		since = time.Second // the first tick, or a clock that jumped: count one tick's worth
	}
	s.lastTick = now
	s.mu.Lock()
	talking, wall := 0, time.Now().UnixNano()
	for _, u := range s.users {
		if wall-u.speaker.LastSpoke() < int64(talkingWindow) {
			talking++
			u.talkTime += since
		}
	}
	s.unlock()
	s.sampler.Tick(now, talking, s.statusTotals)
}

// statusTotals measures everyone's loss over the last minute and returns
// the server's running totals for a sample.
func (s *Server) statusTotals() admin.Totals {
	v := s.voice.Counters()
	t := admin.Totals{
		VoiceIn:  v.Received,
		VoiceOut: v.Copies[voice.UDP] + v.Copies[voice.Tunnel],
		// Voice lost to trouble: over a speaker's bandwidth, shed from a
		// full or late tunnel, shed from a socket backlog, refused by the
		// kernel on sending. Voice of the silenced and datagrams that are
		// not voice are not counted.
		VoiceDropped: v.OverBandwidth + v.Copies[voice.Dropped] + s.control.tunnelLate.Load() + s.udpStats.stale.Load() + s.udpSendFailures(),
		CPU:          processCPU(),
		MemBytes:     residentMemory(),
	}
	s.mu.Lock()
	defer s.unlock()
	now := s.now()
	for _, u := range s.users {
		u.decMu.Lock()
		in := packetCountsOf(u.crypt.Stats())
		u.decMu.Unlock()
		var out packetCounts
		if cs := u.clientStats; cs != nil {
			out = packetCounts{good: cs.GetGood(), late: cs.GetLate(), lost: cs.GetLost()}
		}
		u.loss.mark(in, out)
		t.Participants++
		if s.userStatusLocked(u, now).Bad() {
			t.Bad++
		}
	}
	return t
}

// lossWindow is a user's UDP loss over about the last minute, in both
// directions: marks of the packet counts taken every sample, and the loss
// between the oldest and the newest. It lives as long as the user, under
// the world's lock, and is never kept.
type lossWindow struct {
	marks       [lossMarks]lossMark
	taken       int
	in, out     float64 // percent
	inOK, outOK bool    // whether in and out are figures: enough packets in the window
}

// lossMarks is the number of marks the window spans: a minute of samples.
const lossMarks = int(time.Minute / admin.SampleEvery)

// minLossPackets is the fewest packets in the window that give a loss
// figure: a client that is silent and hears silence sends and gets only
// a ping every few seconds, too few to tell 2 % from 10 %.
const minLossPackets = 50

type lossMark struct{ in, out packetCounts }

// packetCounts are the counts of a crypt state's statistics: packets in
// order, out of order, and never arrived.
type packetCounts struct{ good, late, lost uint32 }

// mark takes the counts now: the loss is over the span since the mark
// lossMarks ago, or since the user connected if that was more recent.
func (w *lossWindow) mark(in, out packetCounts) {
	slot := w.taken % lossMarks
	var base lossMark
	if w.taken >= lossMarks {
		base = w.marks[slot]
	}
	w.in, w.inOK = lossBetween(base.in, in)
	w.out, w.outOK = lossBetween(base.out, out)
	w.marks[slot] = lossMark{in, out}
	w.taken++
}

// lossBetween is the share of packets lost between two marks, if enough
// packets passed. Counts that went back (a new crypt state) count from 0.
func lossBetween(before, now packetCounts) (float64, bool) {
	if now.good < before.good || now.late < before.late {
		before = packetCounts{}
	}
	good, late := float64(now.good-before.good), float64(now.late-before.late)
	lost := max(0, float64(now.lost)-float64(before.lost)) // a late packet takes one off lost
	if total := good + late + lost; total >= minLossPackets {
		return 100 * lost / total, true
	}
	return 0, false
}

func packetCountsOf(st crypto.Stats) packetCounts {
	return packetCounts{good: st.Good, late: st.Late, lost: st.Lost}
}
