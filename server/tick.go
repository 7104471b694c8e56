package server

// The delivery side of the stage clock (package stage): the tick
// goroutine, and the Emitter through which stages speak to a channel's
// listeners with the router's own code.

import (
	"time"

	"github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/stage"
)

// SetStage installs (or with nil removes) the stage of a channel.
func (s *Server) SetStage(channel uint32, st stage.Stage) {
	s.mu.Lock()
	defer s.unlock()
	if ch, ok := s.channels[channel]; ok {
		ch.stage = st
		s.snapDirty = true
	}
}

// tickLoop runs the stage clock until the server stops.
func (s *Server) tickLoop() {
	defer s.wg.Done()
	s.clock.Run(s.closing, &ticking{s: s, r: newRouter(s.udpSocks[0])})
}

// ticking is the tick goroutine's state, reused every tick so that a tick
// allocates nothing. It is the clock's Output, and the Emitter handed to
// stages, reading the channel and time of the stage being ticked.
type ticking struct {
	s *Server
	r *router

	// The stage being ticked.
	sn      *snapshot
	channel uint32
	now     int64
}

// BeginTick implements stage.Output: a tick routes on one snapshot.
func (t *ticking) BeginTick(now time.Time) {
	t.sn, t.now = t.s.snap.Load(), now.UnixNano()
}

// Channel implements stage.Output.
func (t *ticking) Channel(channel uint32) stage.Emitter {
	t.channel = channel
	return t
}

// EndTick implements stage.Output.
func (t *ticking) EndTick() {
	t.r.batch.Flush()
}

// Speech implements stage.Emitter.
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

// SpeechEach implements stage.Emitter. Listeners that share a packet
// share its encodings: the receivers are resolved once and each distinct
// packet is encoded once per format.
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
