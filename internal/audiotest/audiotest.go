// Package audiotest makes and checks real audio for tests: pure tones
// encoded as Opus the way a Mumble client sends them (48 kHz mono, 10 to
// 60 ms frames), and a Goertzel detector that tells which tones decoded
// audio contains and how loud they are.
package audiotest

import (
	"fmt"
	"math"

	"github.com/hraban/opus"
)

// SampleRate is Mumble's: Opus at 48 kHz, mono.
const SampleRate = 48000

// Tone returns n samples of a sine at freq Hz with peak amplitude amp
// (0..1 of full scale), starting at sample offset start so that
// consecutive calls continue one wave.
func Tone(freq, amp float64, start, n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		t := float64(start+i) / SampleRate
		pcm[i] = int16(amp * 32767 * math.Sin(2*math.Pi*freq*t))
	}
	return pcm
}

// Speaker encodes one continuous tone into Opus frames of a fixed length,
// as a client's encoder would: one encoder for the whole transmission.
type Speaker struct {
	Freq, Amp float64
	FrameMS   int // 10, 20, 40 or 60
	enc       *opus.Encoder
	pos       int
}

// NewSpeaker returns a speaker of a tone at freq Hz and amplitude amp
// sending frames of frameMS milliseconds.
func NewSpeaker(freq, amp float64, frameMS int) (*Speaker, error) {
	switch frameMS {
	case 10, 20, 40, 60:
	default:
		return nil, fmt.Errorf("audiotest: frame length %d ms is not one Mumble uses", frameMS)
	}
	enc, err := opus.NewEncoder(SampleRate, 1, opus.AppVoIP)
	if err != nil {
		return nil, err
	}
	// Mumble sends constant bit rate Opus (AudioInput.cpp turns VBR off).
	if err := enc.SetVBR(false); err != nil {
		return nil, err
	}
	if err := enc.SetBitrate(40000); err != nil {
		return nil, err
	}
	return &Speaker{Freq: freq, Amp: amp, FrameMS: frameMS, enc: enc}, nil
}

// Samples is the number of samples in one of the speaker's frames.
func (s *Speaker) Samples() int { return s.FrameMS * SampleRate / 1000 }

// Next encodes the next frame of the tone.
func (s *Speaker) Next() ([]byte, error) {
	n := s.Samples()
	pcm := Tone(s.Freq, s.Amp, s.pos, n)
	s.pos += n
	buf := make([]byte, 1500)
	m, err := s.enc.Encode(pcm, buf)
	if err != nil {
		return nil, err
	}
	return buf[:m], nil
}

// Listener decodes one received Opus stream into PCM.
type Listener struct {
	dec *opus.Decoder
	PCM []int16
}

// NewListener returns a decoder for one stream.
func NewListener() (*Listener, error) {
	dec, err := opus.NewDecoder(SampleRate, 1)
	if err != nil {
		return nil, err
	}
	return &Listener{dec: dec}, nil
}

// Add decodes one packet and appends its audio to PCM.
func (l *Listener) Add(packet []byte) error {
	buf := make([]int16, 60*SampleRate/1000*2)
	n, err := l.dec.Decode(packet, buf)
	if err != nil {
		return err
	}
	l.PCM = append(l.PCM, buf[:n]...)
	return nil
}

// Decode decodes packets as one stream, with one decoder, as a player
// would, and returns the audio.
func Decode(packets [][]byte) ([]int16, error) {
	l, err := NewListener()
	if err != nil {
		return nil, err
	}
	for i, p := range packets {
		if err := l.Add(p); err != nil {
			return nil, fmt.Errorf("packet %d of %d: %w", i+1, len(packets), err)
		}
	}
	return l.PCM, nil
}

// Level returns the amplitude (0..1 of full scale) of the component at
// freq Hz in pcm, by the Goertzel algorithm over the whole slice. A pure
// tone of amplitude a measures close to a when pcm holds many periods.
func Level(pcm []int16, freq float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / SampleRate
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range pcm {
		s0 := float64(v)/32768 + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(math.Max(power, 0)) / float64(len(pcm))
}

// RMS returns the root mean square of pcm relative to full scale.
func RMS(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var sum float64
	for _, v := range pcm {
		f := float64(v) / 32768
		sum += f * f
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

// SetBitrate changes the speaker's constant bit rate (bits per second);
// a 20 ms frame is then bps/400 bytes, its TOC byte included.
func (s *Speaker) SetBitrate(bps int) error { return s.enc.SetBitrate(bps) }

// Frequency estimates the frequency of the tone in pcm (Hz) from its
// rising zero crossings, interpolated between samples: for a clean tone
// it is accurate to well under 1 Hz over a second.
func Frequency(pcm []int16) float64 {
	first, last := -1.0, -1.0
	n := 0
	for i := 1; i < len(pcm); i++ {
		a, b := float64(pcm[i-1]), float64(pcm[i])
		if a < 0 && b >= 0 {
			at := float64(i-1) + -a/(b-a)
			if first < 0 {
				first = at
			} else {
				n++
			}
			last = at
		}
	}
	if n == 0 {
		return 0
	}
	return float64(n) * SampleRate / (last - first)
}
