package admin

// The status page's charts come from a history of the server as a whole:
// a sample every 10 s of counts and rates, nobody in particular. It is
// kept in memory only and bounded: the last hour at full resolution, and
// the whole session at a resolution that halves whenever it fills up.

import (
	"sync"
	"time"
)

// Sample is the server as a whole over one interval. It counts people
// but names nobody.
type Sample struct {
	Time         time.Time `json:"time"`          // the end of the interval
	Participants int       `json:"participants"`  // connected at the end
	Talking      int       `json:"talking"`       // most talking at once during the interval
	Bad          int       `json:"bad"`           // participants with bad connections at the end
	VoiceIn      float64   `json:"voice_in"`      // voice packets received per second
	VoiceOut     float64   `json:"voice_out"`     // copies sent per second
	VoiceDropped float64   `json:"voice_dropped"` // packets or copies dropped per second
	CPU          float64   `json:"cpu"`           // the server's CPU time as a share of one core
	MemBytes     uint64    `json:"mem_bytes"`     // the server's resident memory at the end
}

// merge combines two adjacent samples into one for the span of both,
// weighted by the number of samples each stands for: rates and CPU are
// averaged, counts and memory keep their peak (the desk asks how many
// people were there, or had trouble, not how many on average).
func merge(a Sample, na int, b Sample, nb int) Sample {
	avg := func(x, y float64) float64 { return (x*float64(na) + y*float64(nb)) / float64(na+nb) }
	return Sample{
		Time:         b.Time,
		Participants: max(a.Participants, b.Participants),
		Talking:      max(a.Talking, b.Talking),
		Bad:          max(a.Bad, b.Bad),
		VoiceIn:      avg(a.VoiceIn, b.VoiceIn),
		VoiceOut:     avg(a.VoiceOut, b.VoiceOut),
		VoiceDropped: avg(a.VoiceDropped, b.VoiceDropped),
		CPU:          avg(a.CPU, b.CPU),
		MemBytes:     max(a.MemBytes, b.MemBytes),
	}
}

// The history's shape: a sample every SampleEvery, the last hour of them,
// and at most sessionPoints for the whole session.
const (
	SampleEvery   = 10 * time.Second
	recentSamples = int(time.Hour / SampleEvery)
	sessionPoints = 360
)

// History is the server's recent past for the charts. It is safe for
// concurrent use: the server's sampler adds, the status page reads.
type History struct {
	mu sync.Mutex

	recent      []Sample // a ring of the last recentCap samples
	recentStart int      // the oldest sample in recent once it is full
	recentCap   int

	session    []Sample // the whole session, each point perPoint samples
	sessionCap int      // even, so that halving pairs every point
	perPoint   int
	pending    Sample // the samples of the point being filled
	pendingN   int
	first      time.Time // the time of the first sample
}

// NewHistory returns an empty history of the usual shape.
func NewHistory() *History { return newHistory(recentSamples, sessionPoints) }

func newHistory(recentCap, sessionCap int) *History {
	return &History{recentCap: recentCap, sessionCap: sessionCap &^ 1, perPoint: 1}
}

// Add appends the next sample; samples come in time order.
func (h *History) Add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.first.IsZero() {
		h.first = s.Time
	}
	if len(h.recent) < h.recentCap {
		h.recent = append(h.recent, s)
	} else {
		h.recent[h.recentStart] = s
		h.recentStart = (h.recentStart + 1) % h.recentCap
	}
	if h.pendingN == 0 {
		h.pending = s
	} else {
		h.pending = merge(h.pending, h.pendingN, s, 1)
	}
	if h.pendingN++; h.pendingN < h.perPoint {
		return
	}
	h.session = append(h.session, h.pending)
	h.pendingN = 0
	if len(h.session) >= h.sessionCap {
		h.halveSession()
	}
}

// halveSession merges every two points of the session into one.
func (h *History) halveSession() {
	for i := 0; i < len(h.session)/2; i++ {
		h.session[i] = merge(h.session[2*i], h.perPoint, h.session[2*i+1], h.perPoint)
	}
	h.session = h.session[:len(h.session)/2]
	h.perPoint *= 2
}

// Recent returns the samples of the last hour, oldest first.
func (h *History) Recent() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Sample, 0, len(h.recent))
	out = append(out, h.recent[h.recentStart:]...)
	return append(out, h.recent[:h.recentStart]...)
}

// Session returns the whole session, oldest first: each point spans the
// same number of samples, but the last may span fewer.
func (h *History) Session() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Sample, 0, len(h.session)+1)
	out = append(out, h.session...)
	if h.pendingN > 0 {
		out = append(out, h.pending)
	}
	return out
}

// Start is the start of the first sample's interval: when the history
// began. It is zero before the first sample.
func (h *History) Start() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.first.IsZero() {
		return time.Time{}
	}
	return h.first.Add(-SampleEvery)
}

// Latest returns the last sample, and false before the first.
func (h *History) Latest() (Sample, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.recent) == 0 {
		return Sample{}, false
	}
	last := h.recentStart - 1
	if last < 0 {
		last = len(h.recent) - 1
	}
	return h.recent[last], true
}

// Totals are the running counts a sampler turns into a Sample: what is
// now (participants, bad connections, memory) and what has accumulated
// since the start (packets, CPU time), from which it takes rates.
type Totals struct {
	Participants int
	Bad          int
	VoiceIn      uint64
	VoiceOut     uint64
	VoiceDropped uint64
	CPU          time.Duration // CPU time the process has used
	MemBytes     uint64
}

// Sampler turns the server's totals into samples for a History. The
// server calls Tick about once a second with the number talking at that
// moment (so that a sample knows the most talking at once, not just at
// its end); every SampleEvery a tick also reads the totals and adds a
// sample. Its clock is the one ticks give it, so a test drives it with
// any times it likes. One goroutine at a time calls Tick.
type Sampler struct {
	History *History
	every   time.Duration
	last    time.Time // the end of the last interval; zero before the first tick
	base    Totals    // the totals then
	talking int       // the most talking at once since last
}

// NewSampler returns a sampler that adds to h every SampleEvery.
func NewSampler(h *History) *Sampler { return &Sampler{History: h, every: SampleEvery} }

// Due reports whether a tick at now adds a sample (and so reads totals).
func (sm *Sampler) Due(now time.Time) bool {
	return sm.last.IsZero() || now.Sub(sm.last) >= sm.every
}

// Tick notes talking, the number talking at now. When a sample is due
// (Due), totals is read: the first tick only takes it as the base, each
// later one adds the sample of the interval since the one before.
func (sm *Sampler) Tick(now time.Time, talking int, totals func() Totals) {
	sm.talking = max(sm.talking, talking)
	if !sm.Due(now) {
		return
	}
	t := totals()
	if !sm.last.IsZero() {
		sm.History.Add(sm.sample(now, t))
	}
	sm.last, sm.base, sm.talking = now, t, 0
}

func (sm *Sampler) sample(now time.Time, t Totals) Sample {
	secs := now.Sub(sm.last).Seconds()
	rate := func(now, before uint64) float64 {
		if now < before { // a counter that went back: no rate rather than a wrong one
			return 0
		}
		return float64(now-before) / secs
	}
	return Sample{
		Time:         now,
		Participants: t.Participants,
		Talking:      sm.talking,
		Bad:          t.Bad,
		VoiceIn:      rate(t.VoiceIn, sm.base.VoiceIn),
		VoiceOut:     rate(t.VoiceOut, sm.base.VoiceOut),
		VoiceDropped: rate(t.VoiceDropped, sm.base.VoiceDropped),
		CPU:          max(0, (t.CPU-sm.base.CPU).Seconds()/secs),
		MemBytes:     t.MemBytes,
	}
}
