package voice

import (
	"time"

	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/stage"
)

// Ticker delivers what stages emit on the tick (stage.Output and
// stage.Emitter) with the router's own code, so deafness, formats and each
// listener's transport apply as for direct speech. It is the tick
// goroutine's state, reused every tick so that a tick allocates nothing.
type Ticker struct {
	e *Engine
	r *Router

	// The stage being ticked.
	sn      *Snapshot
	channel uint32
	now     int64
	relayed []byte // a relayed packet, re-encoded (relayStaged)
}

// NewTicker returns the tick goroutine's Output, routing with r.
func (e *Engine) NewTicker(r *Router) *Ticker { return &Ticker{e: e, r: r} }

// BeginTick implements stage.Output: a tick routes on one snapshot.
func (t *Ticker) BeginTick(now time.Time) {
	t.sn, t.now = t.e.snap.Load(), now.UnixNano()
}

// Channel implements stage.Output.
func (t *Ticker) Channel(channel uint32) stage.Emitter {
	t.channel = channel
	return t
}

// EndTick implements stage.Output.
func (t *Ticker) EndTick() { t.r.Flush() }

// Speech implements stage.Emitter.
func (t *Ticker) Speech(sender uint32, a *wire.Audio) {
	u, ok := t.resolve(sender, a)
	if !ok {
		return
	}
	r := t.r
	var nodes uint64
	for i := range r.receivers {
		if n := r.receivers[i].vu.Node; n != 0 {
			nodes |= 1 << (n & 63)
			continue
		}
		r.deliver(u, &r.receivers[i], t.now)
	}
	t.relayStaged(u, nodes)
}

// relayStaged relays what the stage let through of a local speaker to
// the other nodes whose users hear the channel: with loudest-N only the
// N chosen cross, and the receiving node's own stage chooses among them
// and its own speakers. A mix is made on each node, never relayed.
func (t *Ticker) relayStaged(u *User, nodes uint64) {
	if nodes == 0 || u.Node != 0 || u.Peer == nil || t.e.relay == nil {
		return
	}
	t.relayed = wire.AppendAudio(t.relayed[:0], u.Format, &t.r.in, false)
	t.e.relay.Relay(u, 0, t.relayed, nodes)
}

// SpeechEach implements stage.Emitter. Listeners that share a packet
// share its encodings: the receivers are resolved once and each distinct
// packet is encoded once per format.
func (t *Ticker) SpeechEach(sender uint32, pick func(listener uint32) *wire.Audio) {
	u, ok := t.resolve(sender, nil)
	if !ok {
		return
	}
	r := t.r
	var current *wire.Audio
	for i := range r.receivers {
		rc := &r.receivers[i]
		a := pick(rc.vu.Session)
		if a == nil {
			continue
		}
		if a != current {
			current = a
			r.in = *a
			r.built = 0
		}
		r.deliver(u, rc, t.now)
	}
}

// resolve finds sender on the current snapshot (a user in the channel or
// the channel's virtual user) and fills the router's receivers with the
// listeners of its speech there.
func (t *Ticker) resolve(sender uint32, a *wire.Audio) (*User, bool) {
	sn := t.sn
	ch, inChannel := sn.Channels[t.channel]
	u, ok := sn.Users[sender]
	if !ok {
		u, ok = sn.Virtual[sender]
	}
	if !ok || !inChannel || u.Channel != ch || u.Silenced {
		return nil, false // left, moved away or muted since: say nothing for them
	}
	r := t.r
	r.in = wire.Audio{}
	if a != nil {
		r.in = *a
	}
	r.reset(sn)
	if u.Peer == nil {
		// A virtual user speaks to its channel and the channel's
		// listeners only: it holds no permission to reach linked channels.
		r.addChannel(u, ch, wire.ContextNormal, false)
	} else {
		r.addSpeech(sn, u, ch, r.in.HasPosition)
	}
	return u, true
}
