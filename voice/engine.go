package voice

import (
	"sync/atomic"

	"github.com/plenum-voice/plenum/internal/udpbatch"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/stage"
)

// Peer is a listener's end of a transport: the engine hands it each copy
// routed to its user, encoded in the user's format, and it frames,
// encrypts and sends it however its transport does. A Mumble client's
// peer puts an encrypted datagram into out when its UDP path is alive and
// queues the copy on its TCP tunnel otherwise; a test transport records
// what it gets. SendVoice is called from the goroutines that route, at
// the same time for different packets, and must not block: a peer that
// cannot take a copy now drops it (returning Dropped). plain is only
// valid during the call.
type Peer interface {
	SendVoice(out *udpbatch.Batch, plain []byte, now int64) Path
}

// Engine routes voice from speakers to everyone who hears them, reading
// only the snapshot the control plane last published. It owns no
// goroutine: transports and the stage clock call it from theirs, each with
// a Router of its own.
type Engine struct {
	snap      atomic.Pointer[Snapshot]
	relay     Relay        // carries voice to other nodes of a cluster; nil on a single node
	clock     *stage.Clock // ticks the stages that get a channel's speech
	bandwidth atomic.Int64 // per speaker, bytes per second
	tallies   tallies
}

// NewEngine returns an engine that gives the normal speech of channels
// with a stage to that stage, activating it on clock.
func NewEngine(clock *stage.Clock) *Engine {
	e := &Engine{clock: clock}
	e.Publish(&Snapshot{Users: map[uint32]*User{}, Virtual: map[uint32]*User{}, Channels: map[uint32]*Channel{}})
	return e
}

// Relay carries voice to the users of other nodes of a cluster (package
// cluster). The engine never delivers to a user whose Node is not 0: it
// hands each packet of a speaker on this node that such users hear to the
// relay, once, with the set of their nodes (bit n for node n); the node
// that receives it routes it to its own users by calling Route for the
// speaker, who is a user with a Node there.
type Relay interface {
	// Relay is called on the routing goroutine; pl is the speaker's
	// plaintext packet in sender.Format and is valid only during the call.
	Relay(sender *User, target uint32, pl []byte, nodes uint64)
}

// SetRelay installs the cluster's relay; call it before routing starts.
func (e *Engine) SetRelay(rl Relay) { e.relay = rl }

// Publish installs sn; packets routed from now on see it.
func (e *Engine) Publish(sn *Snapshot) { e.snap.Store(sn) }

// Snapshot returns the snapshot in force. The caller must not change it.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// SetBandwidth sets the per-speaker limit (the bandwidth setting, bits
// per second).
func (e *Engine) SetBandwidth(bitsPerSec int) { e.bandwidth.Store(int64(bitsPerSec / 8)) }

// NewRouter returns a router for one goroutine whose datagrams go to out
// through a batch of msgs messages and slots datagrams of up to slotSize
// bytes.
func (e *Engine) NewRouter(out udpbatch.Sender, msgs, slots, slotSize int) *Router {
	return &Router{e: e, batch: udpbatch.NewBatch(out, msgs, slots, slotSize), tally: e.tallies.add()}
}

func (e *Engine) retire(t *tally) { e.tallies.retire(t) }

// Counters returns the engine's totals.
func (e *Engine) Counters() Counters { return e.tallies.sum() }

// Route forwards one plaintext audio packet, in its speaker's format,
// from the user with session whose peer is from, to everyone who should
// hear it. It reports whether the packet was routed (not dropped as
// silenced, malformed or over the bandwidth limit). A packet from a peer
// that no longer has that session (it left, and the session was reused)
// goes nowhere.
func (e *Engine) Route(r *Router, session uint32, from Peer, pl []byte, now int64) bool {
	sn := e.snap.Load()
	sender, ok := sn.Users[session]
	if !ok || sender.Peer != from {
		return false
	}
	if sender.Silenced {
		r.tally.silenced.Add(1)
		return false
	}
	if wire.DecodeAudio(pl, sender.Format, false, &r.in) != nil || r.in.Target > wire.TargetLoopback {
		return false
	}
	if !sender.Speaker.within(len(r.in.Opus), now, int(e.bandwidth.Load())) {
		r.tally.overBandwidth.Add(1)
		return false
	}

	sender.Speaker.lastSpoke.Store(now)
	r.tally.received.Add(1)
	r.tally.receivedBytes.Add(uint64(len(pl)))
	if st := sender.Channel.Stage; st != nil && r.in.Target == 0 {
		st.Accept(sender.Session, &r.in)
		e.clock.Activate(sender.Channel.ID, st)
		return true
	}
	r.resolve(sn, sender, r.in.Target, r.in.HasPosition)
	var nodes uint64 // the other nodes whose users hear this packet
	for i := range r.receivers {
		if n := r.receivers[i].vu.Node; n != 0 {
			nodes |= 1 << (n & 63)
			continue
		}
		r.deliver(sender, &r.receivers[i], now)
	}
	if nodes != 0 && sender.Node == 0 && e.relay != nil {
		e.relay.Relay(sender, r.in.Target, pl, nodes)
	}
	return true
}

// deliver hands one receiver its copy of the packet in r.in.
func (r *Router) deliver(sender *User, rc *receiver, now int64) {
	if rc.vu.Node != 0 {
		return // their own node delivers to them (Relay)
	}
	if len(r.in.Opus) == 0 && rc.vu.Format == wire.Protobuf {
		return // a legacy empty frame has no protobuf form: 1.5 clients reject it
	}
	pl := r.encoded(sender, rc)
	path := rc.vu.Peer.SendVoice(r.batch, pl, now)
	r.tally.copies[path].Add(1)
	r.tally.copyBytes[path].Add(uint64(len(pl)))
}
