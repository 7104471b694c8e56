package stage

import (
	"github.com/hraban/opus"
	"github.com/plenum-voice/plenum/proto/voice"
)

// jitterBuffer holds a speaker's decoded audio between arrival and the
// tick that mixes it. Packets arrive unevenly (and 40 or 60 ms frames
// bring two or three ticks of audio at once); the mix takes exactly one
// tick every tick. A speaker starts playing once one frame and lead
// samples more are buffered: a channel's stage waits a tick more, which
// absorbs a tick of arrival jitter from the start.
type jitterBuffer struct {
	ring    []int16
	r, n    int // read position and samples held
	playing bool
	conceal int // ticks filled by loss concealment in a row
	last    int // samples in the last packet: the frame length
	lead    int // samples held beyond one frame before playing starts
	frame   []int16
}

// jitterCapacity is the most audio a speaker may have waiting: more means
// they sent faster than real time, and the oldest is dropped.
const jitterCapacity = 12 * tickSamples

func (j *jitterBuffer) init() {
	j.ring = make([]int16, jitterCapacity)
	j.frame = make([]int16, tickSamples)
	j.lead = tickSamples
}

func (j *jitterBuffer) reset() {
	j.r, j.n, j.playing, j.conceal, j.last = 0, 0, false, 0, 0
}

// trim drops all but what playing would start with: one frame and the lead.
func (j *jitterBuffer) trim() {
	j.playing, j.conceal = false, 0
	if keep := j.last + j.lead; j.n > keep {
		j.r = (j.r + j.n - keep) % len(j.ring)
		j.n = keep
	}
}

// startResidue is what a buffer holds after the tick that started it
// playing: the frame and the lead, less the tick played.
func (j *jitterBuffer) startResidue() int {
	return max(j.last+j.lead-tickSamples, 0)
}

func (j *jitterBuffer) push(pcm []int16) {
	j.last = len(pcm)
	for _, v := range pcm {
		if j.n == len(j.ring) {
			j.r = (j.r + 1) % len(j.ring)
			j.n--
		}
		j.ring[(j.r+j.n)%len(j.ring)] = v
		j.n++
	}
}

// next fills j.frame with the speaker's next tick of audio and reports
// whether there was any: buffered audio, or up to maxConceal ticks of loss
// concealment from the decoder when the buffer ran dry mid-speech.
func (j *jitterBuffer) next(dec *opus.Decoder) bool {
	if !j.playing {
		if j.n < j.last+j.lead || j.n == 0 {
			return false
		}
		j.playing = true
	}
	if j.n >= tickSamples {
		for i := range j.frame {
			j.frame[i] = j.ring[j.r]
			j.r = (j.r + 1) % len(j.ring)
		}
		j.n -= tickSamples
		j.conceal = 0
		return true
	}
	if j.conceal < maxConceal && dec != nil && j.n == 0 {
		if dec.DecodePLC(j.frame) == nil {
			j.conceal++
			return true
		}
	}
	j.playing = false
	return false
}

// mixer makes the mixed streams of a shaped channel: one full mix that
// every listener gets, and for each speaker in the mix a mix without their
// own voice (mix-minus), so nobody hears themselves delayed. Encoders are
// shared that way: one for the full mix, one per mixed speaker, never one
// per listener.
type mixer struct {
	sh      *Shaper
	sum     []int32
	full    []int16
	history [warmTicks][]int16 // the last ticks of the full mix, oldest first
	enc     *opus.Encoder
	packet  [maxOpusBytes]byte
	audio   voice.Audio // the full mix of this tick
	streams []*personal
	spare   []*personal
	frame   uint64 // the mix stream's frame number, in 10 ms units as Mumble counts
	sending bool   // listeners got mix frames since the last terminator
	pick    func(listener uint32) *voice.Audio
	rec     RecordSink
	// What makes a switch between streams inaudible (personalHangover,
	// warmTicks); fields so a test can show what happens without.
	hangover, warm int
}

// personal is one mixed speaker's own stream.
type personal struct {
	session  uint32
	sp       *speaker
	enc      *opus.Encoder
	pcm      []int16
	packet   [maxOpusBytes]byte
	audio    voice.Audio
	hangover int  // ticks left before switching back to the full mix
	inMix    bool // their voice is in this tick's mix
}

// RecordSink takes the encoded full mix of every tick while a Shaper
// records: an Opus packet of samples at 48 kHz. It is called from the tick
// goroutine and must not block on the disk.
type RecordSink interface {
	Write(packet []byte, samples int)
}

func (m *mixer) init(sh *Shaper) {
	m.sh = sh
	m.sum = make([]int32, tickSamples)
	m.full = make([]int16, tickSamples)
	for i := range m.history {
		m.history[i] = make([]int16, tickSamples)
	}
	m.pick = m.pickFor
	m.hangover, m.warm = personalHangover, warmTicks
}

func (m *mixer) busy() bool { return m.sending || len(m.streams) > 0 }

// holds reports whether the mix still needs sp: audio of theirs waits to
// be mixed, or their own stream is winding down.
func (m *mixer) holds(sp *speaker) bool {
	return sp.jb.playing || m.stream(sp.session) != nil
}

// leave takes sp out of the mix at once (they were cut by loudest-N).
func (m *mixer) leave(sp *speaker) {
	sp.jb.reset()
}

func (m *mixer) stream(session uint32) *personal {
	for _, p := range m.streams {
		if p.session == session {
			return p
		}
	}
	return nil
}

// tick mixes one tick of the selected speakers, encodes the streams and,
// when the channel is mixing, sends them.
func (m *mixer) tick(out Emitter) {
	sh := m.sh
	clear(m.sum)
	voices := 0
	for _, p := range m.streams {
		p.inMix = false
	}
	for _, sp := range sh.order {
		if !sp.selected || !sp.jb.next(sp.dec) {
			continue
		}
		voices++
		for i, v := range sp.jb.frame {
			m.sum[i] += int32(v)
		}
		if sh.mixing {
			m.join(sp).inMix = true
		}
	}
	idle := voices == 0 && len(m.streams) == 0
	if idle {
		m.endStream(out)
		if !sh.cfg.Record {
			m.release()
			return
		}
	}
	for i, v := range m.sum {
		m.full[i] = clip16(v)
	}
	if !m.encodeFull() {
		return
	}
	if m.rec != nil && sh.cfg.Record {
		m.rec.Write(m.audio.Opus, tickSamples) // a recording keeps time through silence
	}
	if sh.mixing && !idle {
		m.encodePersonal()
		out.SpeechEach(sh.virtual, m.pick)
		m.sending = true
		m.dropFinished()
	}
	m.remember()
	m.frame += 2
}

func clip16(v int32) int16 {
	return int16(min(max(v, -32768), 32767))
}

func (m *mixer) encodeFull() bool {
	if m.enc == nil {
		e, err := m.sh.codecs.encoder()
		if err != nil {
			return false
		}
		m.enc = e
	}
	n, err := m.enc.Encode(m.full, m.packet[:])
	if err != nil {
		return false
	}
	m.audio = voice.Audio{Frame: m.frame, Opus: m.packet[:n]}
	return true
}

// join returns the personal stream of a speaker whose voice enters the
// mix, starting one if needed. A new encoder first encodes the last ticks
// of the full mix, which until now was exactly what this speaker heard, so
// their decoder sees one continuous stream across the switch.
func (m *mixer) join(sp *speaker) *personal {
	session := sp.session
	if p := m.stream(session); p != nil {
		p.hangover = m.hangover
		return p
	}
	var p *personal
	if n := len(m.spare); n > 0 {
		p = m.spare[n-1]
		m.spare = m.spare[:n-1]
	} else {
		p = &personal{pcm: make([]int16, tickSamples)}
	}
	e, err := m.sh.codecs.encoder()
	if err != nil {
		return p // not kept: they hear the full mix, their own voice in it
	}
	p.session, p.sp, p.enc, p.hangover = session, sp, e, m.hangover
	for _, h := range m.history[len(m.history)-m.warm:] {
		e.Encode(h, p.packet[:])
	}
	m.streams = append(m.streams, p)
	return p
}

// encodePersonal encodes each personal stream: the full mix minus the
// speaker's own voice, or, during the hangover, the full mix itself.
func (m *mixer) encodePersonal() {
	for _, p := range m.streams {
		copy(p.pcm, m.full)
		if p.inMix {
			for i, v := range p.sp.jb.frame {
				p.pcm[i] = clip16(m.sum[i] - int32(v))
			}
		} else {
			p.hangover--
		}
		n, err := p.enc.Encode(p.pcm, p.packet[:])
		if err != nil {
			p.audio = m.audio
			continue
		}
		p.audio = voice.Audio{Frame: m.frame, Opus: p.packet[:n]}
	}
}

// pickFor chooses the packet a listener gets: their own stream if they
// have one, else the full mix.
func (m *mixer) pickFor(listener uint32) *voice.Audio {
	if p := m.stream(listener); p != nil {
		return &p.audio
	}
	return &m.audio
}

// dropFinished ends the personal streams whose hangover ran out; from the
// next tick those speakers get the full mix.
func (m *mixer) dropFinished() {
	kept := m.streams[:0]
	for _, p := range m.streams {
		if p.hangover > 0 {
			kept = append(kept, p)
			continue
		}
		m.sh.codecs.putEncoder(p.enc)
		p.enc, p.sp = nil, nil
		m.spare = append(m.spare, p)
	}
	clear(m.streams[len(kept):])
	m.streams = kept
}

// remember keeps the full mix of this tick for warming new encoders.
func (m *mixer) remember() {
	oldest := m.history[0]
	copy(m.history[:], m.history[1:])
	copy(oldest, m.full)
	m.history[len(m.history)-1] = oldest
}

// endStream closes the mix stream with a terminating frame of silence, so
// that clients stop showing the mix as talking, and ends every personal
// stream.
func (m *mixer) endStream(out Emitter) {
	if m.sending {
		m.audio = voice.Audio{Frame: m.frame, Opus: m.sh.codecs.silence, Terminator: true}
		for _, p := range m.streams {
			p.audio = m.audio
		}
		out.SpeechEach(m.sh.virtual, m.pick)
		m.frame += 2
		m.sending = false
	}
	for _, p := range m.streams {
		p.hangover = 0
	}
	m.dropFinished()
}

// release returns the full mix's encoder and forgets its history: the
// next mix starts from silence.
func (m *mixer) release() {
	if m.enc != nil {
		m.sh.codecs.putEncoder(m.enc)
		m.enc = nil
	}
	for _, h := range m.history {
		clear(h)
	}
}
