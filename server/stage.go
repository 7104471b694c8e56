package server

// The per-channel tick stage: the place where later work that shapes a
// channel's speech (loudest-N forwarding, mixing, recording) plugs in
// without touching the router. A channel with a stage hands its normal
// speech to the stage instead of forwarding it at once; every tick the
// stage emits what the channel's listeners are to receive, and the router
// delivers that exactly as it delivers direct speech (deafness, formats,
// UDP or tunnel). Channels without a stage, the default, are untouched,
// and an idle stage costs nothing: only stages holding packets are ticked.

import (
	"sync"
	"time"

	"github.com/plenum-voice/plenum/proto/voice"
)

// tickInterval is the stage clock: one Opus frame of the usual size.
const tickInterval = 20 * time.Millisecond

// Stage shapes the normal speech of one channel.
type Stage interface {
	// Accept takes one packet of normal speech from sender. The packet and
	// its Opus bytes are only valid during the call: a stage copies what
	// it keeps. Called from the voice goroutines, concurrently.
	Accept(sender uint32, a *voice.Audio)
	// Tick emits, through out, the packets the channel's listeners get for
	// this tick, and reports whether it still holds packets (false lets
	// the clock stop ticking it). Called from the tick goroutine only.
	Tick(now time.Time, out Emitter) (busy bool)
}

// Emitter delivers what a stage emits to the listeners of its channel,
// exactly as the router delivers direct speech: deaf listeners and the
// sender itself get nothing, each listener gets its own format, and the
// copy goes over UDP or the tunnel as that listener's path allows. The
// sender is a user's session or the channel's virtual user; a sender who
// left, moved away or was muted since is silently skipped. Packets are
// only read during the call.
type Emitter interface {
	// Speech delivers a to every listener of the channel.
	Speech(sender uint32, a *voice.Audio)
	// SpeechEach delivers to each listener of the channel the packet pick
	// returns for their session; nil sends them nothing. It is how one
	// stream reaches most listeners while some get one of their own.
	SpeechEach(sender uint32, pick func(listener uint32) *voice.Audio)
}

// stageClock ticks the stages that hold packets.
type stageClock struct {
	mu     sync.Mutex
	active map[uint32]*clockEntry // by channel id
	wake   chan struct{}          // capacity 1: a stage became active
}

// clockEntry is one active stage. touched records an Accept since the
// last tick began, so that a stage that reported itself idle just as a
// packet arrived is not dropped from the clock with that packet inside.
type clockEntry struct {
	st      Stage
	touched bool
}

func (c *stageClock) init() {
	c.active = make(map[uint32]*clockEntry)
	c.wake = make(chan struct{}, 1)
}

// activate marks the stage of channel as holding packets.
func (c *stageClock) activate(channel uint32, st Stage) {
	c.mu.Lock()
	e, already := c.active[channel]
	if already {
		e.touched = true
		e.st = st // the channel's stage may have been replaced
	} else {
		c.active[channel] = &clockEntry{st: st, touched: true}
	}
	c.mu.Unlock()
	if !already {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// due lists the active stages into scratch and clears their touched marks.
func (c *stageClock) due(scratch []activeStage) []activeStage {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch, e := range c.active {
		e.touched = false
		scratch = append(scratch, activeStage{ch, e, e.st})
	}
	return scratch
}

// idle removes a stage whose Tick reported nothing held, unless a packet
// was accepted since the tick began.
func (c *stageClock) idle(ch uint32, e *clockEntry) {
	c.mu.Lock()
	if !e.touched && c.active[ch] == e {
		delete(c.active, ch)
	}
	c.mu.Unlock()
}

func (c *stageClock) anyActive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.active) > 0
}

// SetStage installs (or with nil removes) the stage of a channel.
func (s *Server) SetStage(channel uint32, st Stage) {
	s.mu.Lock()
	defer s.unlock()
	if ch, ok := s.channels[channel]; ok {
		ch.stage = st
		s.snapDirty = true
	}
}

// tickLoop runs the stage clock until the server stops. It sleeps while
// no stage holds packets.
func (s *Server) tickLoop() {
	defer s.wg.Done()

	t := &ticking{s: s, r: newRouter(s.udpSocks[0])}
	var ticker *time.Ticker
	var tick <-chan time.Time
	for {
		select {
		case <-s.closing:
			if ticker != nil {
				ticker.Stop()
			}
			return
		case <-s.clock.wake:
			if ticker == nil {
				ticker = time.NewTicker(tickInterval)
				tick = ticker.C
			}
		case now := <-tick:
			if !t.tickStages(now) {
				ticker.Stop()
				ticker, tick = nil, nil
			}
		}
	}
}

// ticking is the tick goroutine's state, reused every tick so that a tick
// allocates nothing. It is the Emitter handed to stages, reading the
// channel and time of the stage being ticked.
type ticking struct {
	s      *Server
	r      *router
	stages []activeStage

	// The stage being ticked.
	sn      *snapshot
	channel uint32
	now     int64
}

// tickStages ticks every active stage once and reports whether any is
// still active.
func (t *ticking) tickStages(now time.Time) bool {
	clock := &t.s.clock
	t.stages = clock.due(t.stages[:0])
	t.sn, t.now = t.s.snap.Load(), now.UnixNano()
	for _, e := range t.stages {
		t.channel = e.ch
		if !e.st.Tick(now, t) {
			clock.idle(e.ch, e.entry)
		}
	}
	t.r.batch.Flush()
	return clock.anyActive()
}

type activeStage struct {
	ch    uint32
	entry *clockEntry
	st    Stage // entry.st when the tick began; activate may replace it
}

// Speech implements Emitter.
func (t *ticking) Speech(sender uint32, a *voice.Audio) {
	vu, ok := t.resolve(sender, a)
	if !ok {
		return
	}
	r := t.r
	for i := range r.receivers {
		t.deliver(vu, &r.receivers[i])
	}
}

// SpeechEach implements Emitter. Listeners that share a packet share its
// encodings: the receivers are resolved once and each distinct packet is
// encoded once per format.
func (t *ticking) SpeechEach(sender uint32, pick func(listener uint32) *voice.Audio) {
	vu, ok := t.resolve(sender, nil)
	if !ok {
		return
	}
	r := t.r
	var current *voice.Audio
	for i := range r.receivers {
		rc := &r.receivers[i]
		a := pick(rc.vu.session)
		if a == nil {
			continue
		}
		if a != current {
			current = a
			r.in = *a
			r.built = 0
		}
		t.deliver(vu, rc)
	}
}

// resolve finds sender on the current snapshot (a user in the channel or
// the channel's virtual user) and fills the router's receivers with the
// listeners of its speech there.
func (t *ticking) resolve(sender uint32, a *voice.Audio) (*voiceUser, bool) {
	sn := t.sn
	vc, inChannel := sn.channels[t.channel]
	vu, ok := sn.users[sender]
	if !ok {
		vu, ok = sn.virtual[sender]
	}
	if !ok || !inChannel || vu.channel != vc || vu.silenced {
		return nil, false // left, moved away or muted since: say nothing for them
	}
	r := t.r
	r.in = voice.Audio{}
	if a != nil {
		r.in = *a
	}
	r.reset(sn)
	if vu.u == nil {
		// A virtual user speaks to its channel and the channel's
		// listeners only: it holds no permission to reach linked channels.
		r.addChannel(vu, vc, voice.ContextNormal, false)
	} else {
		r.addSpeech(sn, vu, vc, r.in.HasPosition)
	}
	return vu, true
}

func (t *ticking) deliver(sender *voiceUser, rc *receiver) {
	if len(t.r.in.Opus) == 0 && rc.vu.format == voice.Protobuf {
		return // a legacy empty frame has no protobuf form
	}
	t.s.deliver(t.r, rc.vu.u, t.r.encoded(sender, rc), t.now)
}
