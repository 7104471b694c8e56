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
	active map[uint32]Stage // by channel id
	wake   chan struct{}    // capacity 1: a stage became active
}

func (c *stageClock) init() {
	c.active = make(map[uint32]Stage)
	c.wake = make(chan struct{}, 1)
}

// activate marks the stage of channel as holding packets.
func (c *stageClock) activate(channel uint32, st Stage) {
	c.mu.Lock()
	_, already := c.active[channel]
	if !already {
		c.active[channel] = st
	}
	c.mu.Unlock()
	if !already {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
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

	r := newRouter()
	sock := s.udpSocks[0]
	var scratch []activeStage
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

			if !s.tickStages(r, sock, now, &scratch) {
				ticker.Stop()
				ticker, tick = nil, nil
			}
		}
	}
}

// tickStages ticks every active stage once and reports whether any is
// still active.

func (s *Server) tickStages(r *router, sock *udpSocket, now time.Time, scratch *[]activeStage) bool {
	s.clock.mu.Lock()
	stages := (*scratch)[:0]
	for ch, st := range s.clock.active {
		stages = append(stages, activeStage{ch, st})
	}
	*scratch = stages
	s.clock.mu.Unlock()
	sn := s.snap.Load()
	nowNano := now.UnixNano()
	for _, e := range stages {
		busy := e.st.Tick(now, func(sender uint32, a *voice.Audio) {
			s.emitStaged(r, sock, sn, e.ch, sender, a, nowNano)
		})
		if !busy {
			s.clock.mu.Lock()
			delete(s.clock.active, e.ch)
			s.clock.mu.Unlock()
		}
	}
	r.batch.flush(sock)
	s.clock.mu.Lock()
	defer s.clock.mu.Unlock()
	return len(s.clock.active) > 0
}

type activeStage struct {
	ch uint32
	st Stage
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
