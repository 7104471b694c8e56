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
	// Tick emits, through emit, the packets the channel's listeners get
	// for this tick, and reports whether it still holds packets (false
	// lets the clock stop ticking it). Called from the tick goroutine only.
	Tick(now time.Time, emit func(sender uint32, a *voice.Audio)) (busy bool)
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
		scratch = append(scratch, activeStage{ch, e})
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

	t := &ticking{s: s, r: newRouter(), sock: s.udpSocks[0]}
	t.emitFunc = t.emit // one method value for the life of the loop
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
// allocates nothing: the emit callback handed to stages is a method value
// made once, reading the channel and time of the stage being ticked.
type ticking struct {
	s        *Server
	r        *router
	sock     *udpSocket
	stages   []activeStage
	emitFunc func(sender uint32, a *voice.Audio)

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
		if !e.entry.st.Tick(now, t.emitFunc) {
			clock.idle(e.ch, e.entry)
		}
	}
	t.r.batch.flush(t.sock)
	return clock.anyActive()
}

func (t *ticking) emit(sender uint32, a *voice.Audio) {
	t.s.emitStaged(t.r, t.sock, t.sn, t.channel, sender, a, t.now)
}

type activeStage struct {
	ch    uint32
	entry *clockEntry
}

// emitStaged delivers one packet a stage emitted for channel, as normal
// speech of sender in that channel.
func (s *Server) emitStaged(r *router, sock *udpSocket, sn *snapshot, channel, sender uint32, a *voice.Audio, now int64) {
	vu, ok := sn.users[sender]
	vc, inChannel := sn.channels[channel]
	if !ok || !inChannel || vu.silenced {
		return // left, moved away or muted since: say nothing for them
	}

	r.in = *a
	r.reset(sn)
	r.addSpeech(sn, vu, vc, a.HasPosition)
	for i := range r.receivers {
		rc := &r.receivers[i]
		if len(r.in.Opus) == 0 && rc.vu.format == voice.Protobuf {
			continue
		}
		s.deliver(r, sock, rc.vu.u, r.encoded(vu, rc), now)
	}
}
