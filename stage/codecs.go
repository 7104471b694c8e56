package stage

import (
	"fmt"

	"github.com/hraban/opus"
)

// Mumble's audio: Opus at 48 kHz, mono. The stage works in ticks of 20 ms.
const (
	sampleRate   = 48000
	tickSamples  = sampleRate / 50        // one tick of audio
	maxFrameSamp = 60 * sampleRate / 1000 // the longest frame Mumble sends
	maxOpusBytes = 1275                   // the largest Opus frame (RFC 6716)
	// mixBitrate is what a mixed stream costs each listener: a voice at
	// Mumble's default quality, constant bit rate as Mumble's own.
	mixBitrate = 40000
	// MixLookahead is the mix encoders' delay in samples at 48 kHz:
	// CELT-only Opus (the restricted low-delay application) looks 2.5 ms
	// ahead. A recording's pre-skip.
	MixLookahead = sampleRate * 25 / 10000
)

// CodecPool keeps Opus decoders and encoders for the stages, so that a
// speaker starting to talk takes a warm codec instead of allocating one.
// It belongs to the tick goroutine: only Tick takes and returns codecs,
// so it needs no lock, and every Shaper ticked by one Clock may share it.
type CodecPool struct {
	decoders []*opus.Decoder // at 48 kHz, for the mix
	meters   []*opus.Decoder // at loudnessRate, for loudness alone
	encoders []*opus.Encoder
	// silence is one 20 ms frame of silence as Opus: what a cut stream
	// ends with, and what resets a returned decoder.
	silence []byte
	scratch []int16
}

// NewCodecPool returns an empty pool, or an error when libopus cannot
// make an encoder.
func NewCodecPool() (*CodecPool, error) {
	p := &CodecPool{scratch: make([]int16, maxFrameSamp)}
	enc, err := p.encoder()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, maxOpusBytes)
	n, err := enc.Encode(make([]int16, tickSamples), buf)
	if err != nil {
		return nil, fmt.Errorf("encode silence: %w", err)
	}
	p.silence = buf[:n]
	p.putEncoder(enc)
	return p, nil
}

// loudnessRate is what a stage that only measures loudness decodes at:
// speech's loudness is in its lower frequencies, and libopus decodes a
// third of the samples for a good part less CPU.
const loudnessRate = 16000

// decoder returns a decoder at rate (sampleRate or loudnessRate) in the
// state of a fresh one, as far as anything audible goes.
func (p *CodecPool) decoder(rate int) (*opus.Decoder, error) {
	pool := p.pool(rate)
	if n := len(*pool); n > 0 {
		d := (*pool)[n-1]
		*pool = (*pool)[:n-1]
		return d, nil
	}
	return opus.NewDecoder(rate, 1)
}

func (p *CodecPool) pool(rate int) *[]*opus.Decoder {
	if rate == loudnessRate {
		return &p.meters
	}
	return &p.decoders
}

// putDecoder takes back a decoder of rate. hraban/opus offers no reset
// for decoders, so it decodes two frames of silence: that flushes the
// overlap and the prediction state a previous speaker left, so the next
// speaker's first frame does not carry their tail.
func (p *CodecPool) putDecoder(d *opus.Decoder, rate int) {
	for range 2 {
		d.Decode(p.silence, p.scratch)
	}
	pool := p.pool(rate)
	*pool = append(*pool, d)
}

// encoder returns a reset encoder for a mixed stream: 40 kbit/s constant
// bit rate as Mumble sends, but CELT only (the restricted low-delay
// application): a mix of several voices is not what SILK's speech model
// is for, and CELT encodes one in a quarter of the time (BenchmarkStageTick:
// 1.7 against 8.7 ms a tick for 8 mixed of 32 speakers) with 2.5 ms of
// look-ahead instead of 6.5.
func (p *CodecPool) encoder() (*opus.Encoder, error) {
	if n := len(p.encoders); n > 0 {
		e := p.encoders[n-1]
		p.encoders = p.encoders[:n-1]
		return e, e.Reset()
	}
	e, err := opus.NewEncoder(sampleRate, 1, opus.AppRestrictedLowdelay)
	if err != nil {
		return nil, err
	}
	if err := e.SetVBR(false); err != nil {
		return nil, err
	}
	if err := e.SetBitrate(mixBitrate); err != nil {
		return nil, err
	}
	return e, nil
}

// Silence is one 20 ms frame of silence as Opus, what a talk burst's
// terminator may carry. It never changes; any goroutine may read it.
func (p *CodecPool) Silence() []byte { return p.silence }

func (p *CodecPool) putEncoder(e *opus.Encoder) {
	p.encoders = append(p.encoders, e)
}
