package server

import (
	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/internal/udpbatch"
	"github.com/plenum-voice/plenum/proto/voice"
)

// receiver is one listener of one packet.
type receiver struct {
	vu         *voiceUser
	context    uint8
	positional bool
	volume     float32 // listener volume factor; 0 or 1 = unchanged
}

// router holds the scratch space for routing packets. Each goroutine that
// routes voice owns one, so forwarding allocates nothing in steady state.
type router struct {
	in        voice.Audio
	out       voice.Audio
	receivers []receiver
	// seen[session] == gen means the session is already a receiver, at
	// index slot[session]; bumping gen clears the set in O(1).
	seen  []uint32
	slot  []int32
	gen   uint32
	stack []*voiceChannel
	// variants caches each encoding of the current packet, indexed by
	// format, context and whether positions are included.
	variants [2 * 4 * 2][]byte
	built    uint16
	single   []byte          // a variant with a listener's own volume, not cached
	batch    *udpbatch.Batch // encrypted datagrams waiting for sendmmsg
	routed   uint64          // voice packets this router accepted for routing
}

// newRouter returns a router that sends through a small batch to out.
func newRouter(out udpbatch.Sender) *router {
	return &router{batch: udpbatch.NewBatch(out, batchSize, batchSize, maxDatagram)}
}

// reset prepares the receiver set for a new packet on snapshot sn.
func (r *router) reset(sn *snapshot) {
	r.receivers = r.receivers[:0]
	r.built = 0
	if int(sn.maxSession) >= len(r.seen) {
		n := int(sn.maxSession) + 256
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
func (r *router) add(sender, vu *voiceUser, ctx uint8, hasPos bool, volume float32) {
	if vu == sender || vu.deaf {
		return
	}
	pos := hasPos && vu.plugin == sender.plugin
	if r.seen[vu.session] == r.gen {
		rc := &r.receivers[r.slot[vu.session]]
		if ctx < rc.context {
			rc.context = ctx
		}
		if volume > rc.volume {
			rc.volume = volume
		}
		return
	}
	r.seen[vu.session] = r.gen
	r.slot[vu.session] = int32(len(r.receivers))
	r.receivers = append(r.receivers, receiver{vu: vu, context: ctx, positional: pos, volume: volume})
}

// addChannel adds the users in ch with ctx and its listeners with the
// listen context.
func (r *router) addChannel(sender *voiceUser, ch *voiceChannel, ctx uint8, hasPos bool) {
	for _, m := range ch.members {
		r.add(sender, m, ctx, hasPos, 0)
	}
	for _, l := range ch.listeners {
		r.add(sender, l.vu, voice.ContextListen, hasPos, l.volume)
	}
}

// resolve fills r.receivers for a packet from sender to target, following
// Murmur: normal speech reaches the channel and linked channels where the
// sender may speak; voice targets reach channels where the sender may
// whisper (shout) and users in channels where it may whisper (whisper).
func (r *router) resolve(sn *snapshot, sender *voiceUser, target uint32, hasPos bool) {
	r.reset(sn)
	switch {
	case target == voice.TargetLoopback:
		// Loopback goes back even to a deaf sender: it is a self-test.
		r.receivers = append(r.receivers, receiver{vu: sender, context: voice.ContextNormal, positional: hasPos})

	case target == 0:
		r.addSpeech(sn, sender, sender.channel, hasPos)
	case target < voice.TargetLoopback:
		vt := sender.targets[target]
		if vt == nil {
			return
		}
		for i := range vt.channels {
			r.addChannelTarget(sn, sender, &vt.channels[i], hasPos)
		}
		for _, session := range vt.sessions {
			vu, ok := sn.users[session]
			if ok && sn.may(sender, vu.channel, acl.Whisper) {
				r.add(sender, vu, voice.ContextWhisper, hasPos, 0)
			}
		}
	}
}

// addSpeech adds everyone who hears normal speech from sender in ch: its
// users and listeners, and those of linked channels where the sender may
// speak.
func (r *router) addSpeech(sn *snapshot, sender *voiceUser, ch *voiceChannel, hasPos bool) {
	r.addChannel(sender, ch, voice.ContextNormal, hasPos)
	for _, l := range ch.links {
		if sn.may(sender, l, acl.Speak) {
			r.addChannel(sender, l, voice.ContextNormal, hasPos)
		}
	}
}

// addChannelTarget shouts to a channel, optionally with its links and
// subchannels, and filtered by group membership.
func (r *router) addChannelTarget(sn *snapshot, sender *voiceUser, ct *channelTarget, hasPos bool) {
	r.stack = append(r.stack[:0], ct.ch)
	if ct.links {
		r.stack = append(r.stack, ct.ch.links...)
	}
	if ct.children {
		r.appendDescendants(ct.ch)
	}
	for _, ch := range r.stack {
		if !sn.may(sender, ch, acl.Whisper) {
			continue
		}
		for _, m := range ch.members {
			if ct.group == "" || sn.policy.InGroup(sn, m.subject, ch.id, ct.group) {
				r.add(sender, m, voice.ContextShout, hasPos, 0)
			}
		}
		for _, l := range ch.listeners {
			if ct.group == "" || sn.policy.InGroup(sn, l.vu.subject, ch.id, ct.group) {
				r.add(sender, l.vu, voice.ContextListen, hasPos, l.volume)
			}
		}
	}
}

func (r *router) appendDescendants(ch *voiceChannel) {
	for _, c := range ch.children {
		r.stack = append(r.stack, c)
		r.appendDescendants(c)
	}
}

// encoded returns the plaintext for a receiver, encoding each distinct
// (format, context, positional) variant of the packet once.
func (r *router) encoded(sender *voiceUser, rc *receiver) []byte {
	if rc.volume != 0 && rc.volume != 1 && rc.vu.format == voice.Protobuf {
		r.out = r.in
		r.out.Target = uint32(rc.context)
		r.out.Sender = sender.session
		r.out.HasPosition = rc.positional
		r.out.Volume = rc.volume
		r.single = voice.AppendAudio(r.single[:0], voice.Protobuf, &r.out, true)
		return r.single
	}
	pos := 0
	if rc.positional {
		pos = 1
	}
	key := int(rc.vu.format)*8 + int(rc.context)*2 + pos
	if r.built&(1<<key) == 0 {
		r.out = r.in
		r.out.Target = uint32(rc.context)
		r.out.Sender = sender.session
		r.out.HasPosition = rc.positional
		r.out.Volume = 0
		r.variants[key] = voice.AppendAudio(r.variants[key][:0], rc.vu.format, &r.out, true)
		r.built |= 1 << key
	}
	return r.variants[key]
}
