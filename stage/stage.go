// Package stage shapes a channel's speech on a 20 ms tick: loudest-N,
// mixing, recording.
//
// A channel with a Stage hands its normal speech to the stage instead of
// forwarding it at once; every tick the stage emits what the channel's
// listeners are to receive, and its owner delivers that exactly as it
// delivers direct speech (deafness, formats, UDP or tunnel). The package
// knows nothing of connections, snapshots or sockets: what a stage needs
// from the server comes in as small explicit inputs (an Emitter to speak
// through, who is a priority speaker, the codec pool, a recording sink).
//
// Channels without a stage are untouched, and an idle stage costs
// nothing: the Clock ticks only stages holding packets.
package stage

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

// Output is where a Clock's ticks go: its owner's delivery. The clock
// calls it from its goroutine only, once BeginTick, then Channel for each
// stage it ticks, then EndTick.
type Output interface {
	// BeginTick starts a tick at now: whatever the deliveries of this tick
	// read (the routing state) is taken here, once for all stages.
	BeginTick(now time.Time)
	// Channel returns the Emitter for the listeners of channel, valid
	// until the next call.
	Channel(channel uint32) Emitter
	// EndTick sends what the tick emitted (batched sends are flushed).
	EndTick()
}

// Clock ticks the stages that hold packets, every 20 ms, on one goroutine
// (Run) that its owner starts and stops. Activate may be called from any
// goroutine.
type Clock struct {
	mu     sync.Mutex
	active map[uint32]*clockEntry // by channel id
	wake   chan struct{}          // capacity 1: a stage became active

	stages []activeStage // the tick's scratch, reused so a tick allocates nothing
}

// clockEntry is one active stage. touched records an Accept since the
// last tick began, so that a stage that reported itself idle just as a
// packet arrived is not dropped from the clock with that packet inside.
type clockEntry struct {
	st      Stage
	touched bool
}

type activeStage struct {
	ch    uint32
	entry *clockEntry
	st    Stage // entry.st when the tick began; Activate may replace it
}

// NewClock returns a clock with no active stage.
func NewClock() *Clock {
	return &Clock{
		active: make(map[uint32]*clockEntry),
		wake:   make(chan struct{}, 1),
	}
}

// Activate marks st, the stage of channel, as holding packets: the clock
// ticks it until its Tick reports it idle.
func (c *Clock) Activate(channel uint32, st Stage) {
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

// Run ticks the active stages into out every 20 ms until done is closed.
// It sleeps while no stage holds packets.
func (c *Clock) Run(done <-chan struct{}, out Output) {
	var ticker *time.Ticker
	var tick <-chan time.Time
	for {
		select {
		case <-done:
			if ticker != nil {
				ticker.Stop()
			}
			return
		case <-c.wake:
			if ticker == nil {
				ticker = time.NewTicker(tickInterval)
				tick = ticker.C
			}
		case now := <-tick:
			if !c.Tick(now, out) {
				ticker.Stop()
				ticker, tick = nil, nil
			}
		}
	}
}

// Tick ticks every active stage once, into out, and reports whether any
// is still active. Run calls it; only one goroutine may.
func (c *Clock) Tick(now time.Time, out Output) bool {
	c.stages = c.due(c.stages[:0])
	out.BeginTick(now)
	for _, e := range c.stages {
		if !e.st.Tick(now, out.Channel(e.ch)) {
			c.idle(e.ch, e.entry)
		}
	}
	out.EndTick()
	return c.anyActive()
}

// due lists the active stages into scratch and clears their touched marks.
func (c *Clock) due(scratch []activeStage) []activeStage {
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
func (c *Clock) idle(ch uint32, e *clockEntry) {
	c.mu.Lock()
	if !e.touched && c.active[ch] == e {
		delete(c.active, ch)
	}
	c.mu.Unlock()
}

func (c *Clock) anyActive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.active) > 0
}
