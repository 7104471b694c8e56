package voice

import (
	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/internal/udpbatch"
	wire "github.com/plenum-voice/plenum/proto/voice"
)

// receiver is one listener of one packet.
type receiver struct {
	vu         *User
	context    uint8
	positional bool
	volume     float32 // listener volume factor; 0 or 1 = unchanged
}

// Router routes packets for one goroutine: it holds the scratch space of
// routing, the goroutine's outgoing datagrams and its counters, so that
// forwarding allocates nothing in steady state and shares no cache line
// with another goroutine's routing. Each goroutine that routes voice owns
// one (Engine.NewRouter) and closes it when it stops.
type Router struct {
	e         *Engine
	in        wire.Audio
	out       wire.Audio
	receivers []receiver
	// seen[session] == gen means the session is already a receiver, at
	// index slot[session]; bumping gen clears the set in O(1).
	seen  []uint32
	slot  []int32
	gen   uint32
	stack []*Channel
	// variants caches each encoding of the current packet, indexed by
	// format, context and whether positions are included.
	variants [2 * 4 * 2][]byte
	built    uint16
	single   []byte          // a variant with a listener's own volume, not cached
	batch    *udpbatch.Batch // encrypted datagrams waiting for sendmmsg
	tally    *tally          // this router's counters (counters.go)
}

// Batch is the router's outgoing datagrams: transports that send
// datagrams put their copies there, and the router's owner flushes it
// once per batch of work (Flush).
func (r *Router) Batch() *udpbatch.Batch { return r.batch }

// Flush sends the datagrams waiting in the router's batch.
func (r *Router) Flush() { r.batch.Flush() }

// Close gives the router's counts to the engine's totals; the router
// must not be used afterwards.
func (r *Router) Close() { r.e.retire(r.tally) }

// reset prepares the receiver set for a new packet on snapshot sn.
func (r *Router) reset(sn *Snapshot) {
	r.receivers = r.receivers[:0]
	r.built = 0
	if int(sn.MaxSession) >= len(r.seen) {
		n := int(sn.MaxSession) + 256
		r.seen = make([]uint32, n)
		r.slot = make([]int32, n)
		r.gen = 0
	}
	r.gen++
	if r.gen == 0 { // wrapped: stale marks could look current
		clear(r.seen)
		r.gen = 1
	}
}

// add makes vu a receiver with ctx, keeping the lowest context when vu is
// reached more than once (normal speech beats shout beats whisper beats
// listening) and the largest listener volume.
func (r *Router) add(sender, vu *User, ctx uint8, hasPos bool, volume float32) {
	if vu == sender || vu.Deaf {
		return
	}
	pos := hasPos && vu.Plugin == sender.Plugin
	if r.seen[vu.Session] == r.gen {
		rc := &r.receivers[r.slot[vu.Session]]
		if ctx < rc.context {
			rc.context = ctx
		}
		if volume > rc.volume {
			rc.volume = volume
		}
		return
	}
	r.seen[vu.Session] = r.gen
	r.slot[vu.Session] = int32(len(r.receivers))
	r.receivers = append(r.receivers, receiver{vu: vu, context: ctx, positional: pos, volume: volume})
}

// addChannel adds the users in ch with ctx and its listeners with the
// listen context.
func (r *Router) addChannel(sender *User, ch *Channel, ctx uint8, hasPos bool) {
	for _, m := range ch.Members {
		r.add(sender, m, ctx, hasPos, 0)
	}
	for _, l := range ch.Listeners {
		r.add(sender, l.User, wire.ContextListen, hasPos, l.Volume)
	}
}

// resolve fills r.receivers for a packet from sender to target, following
// Murmur: normal speech reaches the channel and linked channels where the
// sender may speak; voice targets reach channels where the sender may
// whisper (shout) and users in channels where it may whisper (whisper).
func (r *Router) resolve(sn *Snapshot, sender *User, target uint32, hasPos bool) {
	r.reset(sn)
	switch {
	case target == wire.TargetLoopback:
		// Loopback goes back even to a deaf sender: it is a self-test.
		r.receivers = append(r.receivers, receiver{vu: sender, context: wire.ContextNormal, positional: hasPos})

	case target == 0:
		r.addSpeech(sn, sender, sender.Channel, hasPos)
	case target < wire.TargetLoopback:
		vt := sender.Targets[target]
		if vt == nil {
			return
		}
		for i := range vt.Channels {
			r.addChannelTarget(sn, sender, &vt.Channels[i], hasPos)
		}
		for _, session := range vt.Sessions {
			vu, ok := sn.Users[session]
			if ok && sn.may(sender, vu.Channel, acl.Whisper) {
				r.add(sender, vu, wire.ContextWhisper, hasPos, 0)
			}
		}
	}
}

// addSpeech adds everyone who hears normal speech from sender in ch: its
// users and listeners, and those of linked channels where the sender may
// speak.
func (r *Router) addSpeech(sn *Snapshot, sender *User, ch *Channel, hasPos bool) {
	r.addChannel(sender, ch, wire.ContextNormal, hasPos)
	for _, l := range ch.Links {
		if sn.may(sender, l, acl.Speak) {
			r.addChannel(sender, l, wire.ContextNormal, hasPos)
		}
	}
}

// addChannelTarget shouts to a channel, optionally with its links and
// subchannels, and filtered by group membership.
func (r *Router) addChannelTarget(sn *Snapshot, sender *User, ct *ChannelTarget, hasPos bool) {
	r.stack = append(r.stack[:0], ct.Channel)
	if ct.Links {
		r.stack = append(r.stack, ct.Channel.Links...)
	}
	if ct.Children {
		r.appendDescendants(ct.Channel)
	}
	for _, ch := range r.stack {
		if !sn.may(sender, ch, acl.Whisper) {
			continue
		}
		for _, m := range ch.Members {
			if ct.Group == "" || sn.Policy.InGroup(sn, m.Subject, ch.ID, ct.Group) {
				r.add(sender, m, wire.ContextShout, hasPos, 0)
			}
		}
		for _, l := range ch.Listeners {
			if ct.Group == "" || sn.Policy.InGroup(sn, l.User.Subject, ch.ID, ct.Group) {
				r.add(sender, l.User, wire.ContextListen, hasPos, l.Volume)
			}
		}
	}
}

func (r *Router) appendDescendants(ch *Channel) {
	for _, c := range ch.Children {
		r.stack = append(r.stack, c)
		r.appendDescendants(c)
	}
}

// encoded returns the plaintext for a receiver, encoding each distinct
// (format, context, positional) variant of the packet once.
func (r *Router) encoded(sender *User, rc *receiver) []byte {
	if rc.volume != 0 && rc.volume != 1 && rc.vu.Format == wire.Protobuf {
		r.out = r.in
		r.out.Target = uint32(rc.context)
		r.out.Sender = sender.Session
		r.out.HasPosition = rc.positional
		r.out.Volume = rc.volume
		r.single = wire.AppendAudio(r.single[:0], wire.Protobuf, &r.out, true)
		return r.single
	}
	pos := 0
	if rc.positional {
		pos = 1
	}
	key := int(rc.vu.Format)*8 + int(rc.context)*2 + pos
	if r.built&(1<<key) == 0 {
		r.out = r.in
		r.out.Target = uint32(rc.context)
		r.out.Sender = sender.Session
		r.out.HasPosition = rc.positional
		r.out.Volume = 0
		r.variants[key] = wire.AppendAudio(r.variants[key][:0], rc.vu.Format, &r.out, true)
		r.built |= 1 << key
	}
	return r.variants[key]
}
