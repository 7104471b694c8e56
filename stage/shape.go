package stage

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hraban/opus"
	"github.com/plenum-voice/plenum/proto/voice"
)

// The shaper is the stage of a channel configured with max_speakers, mix
// or record. Every tick it decodes what each speaker sent, measures how
// loud they are, and then either forwards the original packets of the
// loudest speakers (loudest-N) or mixes them into one stream from the
// channel's virtual user (mixing). Whatever it mixes it can also record.

// Shape is what a channel's TOML asks of its stage.
type Shape struct {
	MaxSpeakers int  // hear only this many speakers at once; 0 = everyone
	MixAbove    int  // mix when more than this many speak; -1 = never
	Record      bool // encode the mix to the channel's recording (see RecordTo)
}

// Timing of the shaper, in ticks of 20 ms.
const (
	// A speaker who sent nothing for this long has stopped (a 60 ms frame
	// comes every third tick, so a quarter second is several lost frames).
	silentTicks = 12
	// A speaker chosen among the loudest keeps their place at least this
	// long, and a challenger must be this much louder, so that voices of
	// similar loudness do not flicker in and out.
	holdTicks   = 25 // 0.5 s
	swapMarginD = 6.0
	// Mixing starts when more than mixAbove speak and stops when no more
	// than that have spoken for this long.
	mixLeaveTicks = 50
	// A mixed speaker whose voice left the mix keeps their own stream this
	// long, fed the same audio as everyone's, before switching back to
	// the shared one: by then both encoders carry the same recent audio,
	// so the switch is inaudible.
	personalHangover = 3
	// How many ticks of the shared mix a new personal encoder is fed
	// before its first frame is sent, for the same reason.
	warmTicks = 3
	// PLC fills a mixed speaker's missing audio this many ticks at most.
	maxConceal = 3
	// Mixing without max_speakers mixes this many of the loudest: each
	// mixed speaker costs an encoder (about 0.1 ms a tick here, see
	// BenchmarkStageTick), and a hundred voices at once are a crowd that
	// sixteen render as well.
	maxMixed = 16
	// Loudness smoothing per frame: fast attack, slower release.
	attack, release = 0.5, 0.15
	silenceDB       = -90.0
)

// inboxSlots is how many packets a speaker may send between two ticks:
// two 10 ms frames per tick, with room for a burst after a stall.
const inboxSlots = 8

type inPacket struct {
	frame  uint64
	n      int
	term   bool
	hasPos bool
	pos    [3]float32
	opus   [maxOpusBytes]byte
}

// speaker is one member who sent speech to the channel recently.
type speaker struct {
	session uint32

	// Accept fills inbox[cur] under shaper.mu; Tick swaps the halves and
	// decodes the other one without the lock, so decoding never delays
	// the voice goroutines.
	inbox [2][inboxSlots]inPacket
	cur   int
	held  int
	taken []inPacket // the half this tick took

	// Tick goroutine only.
	dec          *opus.Decoder
	level        float64 // smoothed loudness in dBFS
	lastHeard    uint64  // tick of the last packet
	lastFrame    uint64  // frame number of the last packet
	ended        bool    // sent a terminator
	priority     bool    // a priority speaker: never left out
	selected     bool    // among those heard (loudest-N) or mixed
	selectedAt   uint64
	forwarded    bool // listeners have heard a packet of this stream and no end yet
	frameSamples int  // samples in their last frame
	jb           jitterBuffer
}

// Shaper is the Stage of a channel with a Shape: loudest-N, mixing,
// recording.
type Shaper struct {
	virtual    uint32 // session of the channel's virtual user; 0 = none
	cfg        Shape
	codecs     *CodecPool
	isPriority func(session uint32) bool // a priority speaker is always heard
	rate       int                       // decoders' sample rate: 48 kHz to mix, less to measure
	stopped    atomic.Bool               // replaced or removed: the clock drops it

	mu       sync.Mutex
	speakers map[uint32]*speaker // by session; entries are reused
	free     []*speaker
	tick     uint64 // written by Tick under mu; Tick reads it without

	// Tick goroutine only.
	order      []*speaker // speakers, loudest first, rebuilt every tick
	out        voice.Audio
	pcm        []int16 // decode scratch
	mixing     bool
	quietSince uint64 // tick since which no more than mixAbove spoke
	mix        mixer
}

// NewShaper returns the stage of a channel shaped as cfg. virtual is the
// session of the channel's virtual user, which speaks the mix (0 when the
// channel does not mix). codecs is the tick goroutine's pool. isPriority
// says whether a session is a priority speaker now; it is asked for each
// speaker every tick, from the tick goroutine.
func NewShaper(cfg Shape, virtual uint32, codecs *CodecPool, isPriority func(session uint32) bool) *Shaper {
	sh := &Shaper{
		virtual:    virtual,
		cfg:        cfg,
		codecs:     codecs,
		isPriority: isPriority,
		speakers:   make(map[uint32]*speaker, 64),
		pcm:        make([]int16, maxFrameSamp),
	}
	sh.rate = loudnessRate
	if cfg.MixAbove >= 0 || cfg.Record {
		sh.rate = sampleRate
	}
	sh.mix.init(sh)
	return sh
}

// Shape returns what the shaper was made for.
func (sh *Shaper) Shape() Shape { return sh.cfg }

// RecordTo makes the shaper write the encoded mix of every tick to rec,
// silence included, while its Shape records. Call it before the shaper is
// first ticked: the tick goroutine reads it without a lock.
func (sh *Shaper) RecordTo(rec RecordSink) { sh.mix.rec = rec }

// Stop retires the shaper (replaced or removed): the clock drops it at its
// next tick, and it emits nothing more. Safe from any goroutine.
func (sh *Shaper) Stop() { sh.stopped.Store(true) }

// Accept implements Stage: it copies the packet into the speaker's inbox.
func (sh *Shaper) Accept(sender uint32, a *voice.Audio) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sp := sh.speakers[sender]
	if sp == nil {
		sp = sh.newSpeaker(sender)
	}
	if sp.held == inboxSlots || len(a.Opus) > maxOpusBytes {
		return // more than a tick can hold: the oldest are already late
	}
	p := &sp.inbox[sp.cur][sp.held]
	p.frame, p.term, p.hasPos, p.pos = a.Frame, a.Terminator, a.HasPosition, a.Position
	p.n = copy(p.opus[:], a.Opus)
	sp.held++
}

func (sh *Shaper) newSpeaker(session uint32) *speaker {
	var sp *speaker
	if n := len(sh.free); n > 0 {
		sp = sh.free[n-1]
		sh.free = sh.free[:n-1]
		*sp = speaker{inbox: sp.inbox, jb: sp.jb}
		sp.jb.reset()
	} else {
		sp = &speaker{}
		sp.jb.init()
	}
	sp.session = session
	sp.level = silenceDB
	sp.lastHeard = sh.tick
	sh.speakers[session] = sp
	return sp
}

// Tick implements Stage.
func (sh *Shaper) Tick(now time.Time, out Emitter) bool {
	if sh.stopped.Load() {
		return false
	}
	sh.mu.Lock()
	sh.tick++ // under mu: a new speaker's lastHeard is read from it in Accept
	sh.order = sh.order[:0]
	for _, sp := range sh.speakers {
		sh.order = append(sh.order, sp)
	}
	sh.mu.Unlock()

	for _, sp := range sh.order {
		sh.take(sp)
	}
	sh.setPriority()
	sh.rank()
	sh.chooseMode(out)
	sh.choose(out)
	for _, sp := range sh.order {
		sh.forward(sp, out)
	}
	if sh.mixing || sh.cfg.Record {
		sh.mix.tick(out)
	}
	sh.retire(out)
	sh.mu.Lock()
	speaking := len(sh.speakers) > 0
	sh.mu.Unlock()
	return speaking || sh.mix.busy() || sh.cfg.Record
}

// take moves the speaker's inbox into the tick and decodes each packet for
// its loudness (and for the mix). The packets stay where they are until the
// next take: Accept fills the other half meanwhile.
func (sh *Shaper) take(sp *speaker) {
	sh.mu.Lock()
	sp.taken = sp.inbox[sp.cur][:sp.held]
	sp.cur ^= 1
	sp.held = 0
	sh.mu.Unlock()
	for i := range sp.taken {
		p := &sp.taken[i]
		sh.decode(sp, p)
		sp.lastHeard, sp.lastFrame = sh.tick, p.frame
		sp.ended = p.term
	}
}

// forward sends this tick's packets of a speaker who is heard directly.
func (sh *Shaper) forward(sp *speaker, out Emitter) {
	if !sp.selected || sh.mixing {
		return
	}
	for i := range sp.taken {
		p := &sp.taken[i]
		sh.out = voice.Audio{Frame: p.frame, Opus: p.opus[:p.n], Terminator: p.term, HasPosition: p.hasPos, Position: p.pos}
		out.Speech(sp.session, &sh.out)
		sp.forwarded = !p.term
	}
}

// decode measures the packet's loudness and keeps its audio for the mix.
func (sh *Shaper) decode(sp *speaker, p *inPacket) {
	if p.n == 0 {
		return
	}
	if sp.dec == nil {
		d, err := sh.codecs.decoder(sh.rate)
		if err != nil {
			return
		}
		sp.dec = d
	}
	n, err := sp.dec.Decode(p.opus[:p.n], sh.pcm)
	if err != nil || n == 0 {
		return
	}
	sp.frameSamples = n
	db := loudness(sh.pcm[:n])
	rate := release
	if db > sp.level {
		rate = attack
	}
	sp.level += rate * (db - sp.level)
	if sh.cfg.MixAbove >= 0 || sh.cfg.Record {
		// Kept even while not mixing (trim bounds it): the tick that
		// starts mixing then already has this audio.
		sp.jb.push(sh.pcm[:n])
	}
}

// loudness returns the power of pcm in dB relative to full scale.
func loudness(pcm []int16) float64 {
	var sum int64
	for _, v := range pcm {
		sum += int64(v) * int64(v)
	}
	if sum == 0 {
		return silenceDB
	}
	ms := float64(sum) / float64(len(pcm)) / (32768 * 32768)
	return max(10*math.Log10(ms), silenceDB)
}

// rank sorts the speakers loudest first (insertion sort: the order barely
// changes between ticks, and it allocates nothing).
func (sh *Shaper) rank() {
	o := sh.order
	for i := 1; i < len(o); i++ {
		for j := i; j > 0 && o[j].level > o[j-1].level; j-- {
			o[j], o[j-1] = o[j-1], o[j]
		}
	}
}

// active reports whether sp is speaking now. A speaker whose terminator
// came this tick still is, so that the terminator itself is forwarded.
func (sh *Shaper) active(sp *speaker) bool {
	if sp.ended && sp.lastHeard < sh.tick {
		return false
	}
	return sh.tick-sp.lastHeard < silentTicks
}

// chooseMode switches between forwarding and mixing.
func (sh *Shaper) chooseMode(out Emitter) {
	if sh.cfg.MixAbove < 0 {
		return
	}
	n := 0
	for _, sp := range sh.order {
		if sh.active(sp) {
			n++
		}
	}
	switch {
	case n > sh.cfg.MixAbove:
		sh.quietSince = sh.tick
		if !sh.mixing {
			sh.mixing = true
			for _, sp := range sh.order {
				sh.endForwarded(sp, out) // from now on they are heard in the mix
			}
		}
	case sh.mixing && sh.tick-sh.quietSince >= mixLeaveTicks:
		sh.mixing = false
		sh.mix.endStream(out)
		if !sh.cfg.Record {
			sh.mix.release()
		}
	}
}

// choose updates who is heard: everyone (no limit), or the N loudest
// besides the priority speakers, who are always heard, with hysteresis
// against flicker.
func (sh *Shaper) choose(out Emitter) {
	limit := sh.cfg.MaxSpeakers
	if limit == 0 && sh.mixing {
		limit = maxMixed
	}
	heard := 0
	for _, sp := range sh.order {
		if sp.selected && !sh.active(sp) && !sp.jb.playing {
			sh.deselect(sp, out)
		}
		if sp.priority {
			if !sp.selected && sh.active(sp) {
				sh.selectSpeaker(sp) // always heard, on top of the N loudest
			}
			continue
		}
		if sp.selected {
			heard++
		}
	}
	for limit > 0 && heard > limit { // mixing just began: down to the cap
		q := sh.quietestSelected()
		sh.deselect(q, out)
		heard--
	}
	for _, sp := range sh.order { // loudest first
		if sp.selected || !sh.active(sp) {
			continue
		}
		if limit == 0 || heard < limit {
			sh.selectSpeaker(sp)
			heard++
			continue
		}
		q := sh.quietestReplaceable()
		if q == nil || sp.level < q.level+swapMarginD {
			break // nobody further down is louder either
		}
		sh.deselect(q, out)
		sh.selectSpeaker(sp)
	}
	for _, sp := range sh.order {
		if !sp.selected {
			sp.jb.trim() // not mixed: keep only what a start would play
		}
	}
}

func (sh *Shaper) selectSpeaker(sp *speaker) {
	sp.selected, sp.selectedAt = true, sh.tick
}

// quietestReplaceable is the quietest selected speaker who is not a
// priority speaker and has held their place long enough.
func (sh *Shaper) quietestReplaceable() *speaker {
	for i := len(sh.order) - 1; i >= 0; i-- {
		sp := sh.order[i]
		if sp.selected && !sp.priority && sh.tick-sp.selectedAt >= holdTicks {
			return sp
		}
	}
	return nil
}

// quietestSelected is the quietest selected speaker without priority.
func (sh *Shaper) quietestSelected() *speaker {
	for i := len(sh.order) - 1; i >= 0; i-- {
		if sp := sh.order[i]; sp.selected && !sp.priority {
			return sp
		}
	}
	return nil
}

func (sh *Shaper) deselect(sp *speaker, out Emitter) {
	sp.selected = false
	sh.endForwarded(sp, out)
	sh.mix.leave(sp)
}

// endForwarded ends a forwarded stream that was cut off mid-speech with a
// terminating frame of silence, so that clients stop showing the speaker
// as talking.
func (sh *Shaper) endForwarded(sp *speaker, out Emitter) {
	if !sp.forwarded {
		return
	}
	sp.forwarded = false
	units := uint64(max(sp.frameSamples/(sh.rate/100), 1)) // frames count in 10 ms units
	sh.out = voice.Audio{Frame: sp.lastFrame + units, Opus: sh.codecs.silence, Terminator: true}
	out.Speech(sp.session, &sh.out)
}

// retire forgets speakers who stopped, once the mix has used their audio.
func (sh *Shaper) retire(out Emitter) {
	for _, sp := range sh.order {
		if sh.active(sp) || sp.selected || sh.mix.holds(sp) {
			continue
		}
		sh.endForwarded(sp, out)
		sh.mu.Lock()
		if sp.held > 0 { // spoke again since this tick began
			sh.mu.Unlock()
			continue
		}
		delete(sh.speakers, sp.session)
		sh.mu.Unlock()
		if sp.dec != nil {
			sh.codecs.putDecoder(sp.dec, sh.rate)
			sp.dec = nil
		}
		sh.mu.Lock()
		sh.free = append(sh.free, sp) // only now may Accept reuse it
		sh.mu.Unlock()
	}
}

// setPriority refreshes who is a priority speaker.
func (sh *Shaper) setPriority() {
	for _, sp := range sh.order {
		sp.priority = sh.isPriority(sp.session)
	}
}
