package stage

import (
	"testing"

	"github.com/plenum-voice/plenum/proto/voice"
)

// recorder is a listener's output.
type recorder struct{ frames int }

func (r *recorder) WriteMix(opus []byte, tick uint64) { r.frames++ }

// TestListenerMixDecodesOnceAndSharesEncodes: one packet delivered to
// many listeners is decoded once; listeners hearing the same speakers
// share an encode; nobody hears their own voice; a listener removed
// gets nothing more.
func TestListenerMixDecodesOnceAndSharesEncodes(t *testing.T) {
	codecs, err := NewCodecPool()
	if err != nil {
		t.Fatal(err)
	}
	m := NewListenerMix(codecs)
	out := map[uint32]*recorder{}
	for s := uint32(1); s <= 6; s++ {
		out[s] = &recorder{}
		m.Add(s, out[s])
	}
	// Sessions 1 and 2 speak; every listener gets a copy of each packet
	// except the speaker itself (the router sends nobody their own voice;
	// the mix drops it anyway, which this checks too).
	enc, err := codecs.encoder()
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, tickSamples)
	for i := range pcm {
		pcm[i] = int16(1000 * (i % 48))
	}
	pkt := make([]byte, maxOpusBytes)
	n, _ := enc.Encode(pcm, pkt)
	ticks := 20
	for f := range ticks {
		for _, speaker := range []uint32{1, 2} {
			a := voice.Audio{Sender: speaker, Frame: uint64(2 * f), Opus: pkt[:n]}
			for l := uint32(1); l <= 6; l++ {
				m.Deliver(l, &a)
			}
		}
		m.Tick()
	}
	st := m.Stats()
	if st.Decodes != uint64(2*ticks) {
		t.Errorf("%d decodes, want %d (each packet once)", st.Decodes, 2*ticks)
	}
	if st.MostEncodes != 3 {
		t.Errorf("at most %d encodes a tick, want 3: {1,2} for four listeners, {2} for 1, {1} for 2", st.MostEncodes)
	}
	if st.Encodes > 3*st.Ticks {
		t.Errorf("%d encodes in %d ticks", st.Encodes, st.Ticks)
	}
	m.Remove(6, &recorder{}) // not its output: stays
	if m.Listeners() != 6 {
		t.Fatalf("Remove with another output removed the listener")
	}
	m.Remove(6, out[6])
	before := out[6].frames
	a := voice.Audio{Sender: 1, Frame: uint64(2 * ticks), Opus: pkt[:n]}
	if m.Deliver(6, &a) {
		t.Error("Deliver to a removed listener reported true")
	}
	m.Deliver(3, &a)
	m.Tick()
	if out[6].frames != before {
		t.Error("a removed listener got a frame")
	}
	if out[3].frames == 0 {
		t.Error("listener 3 got nothing")
	}
}

// TestListenerMixShortensAGrownJitterBuffer: after a burst of packets
// (a stalled sender catching up) the extra delay is cut back within a
// second instead of staying.
func TestListenerMixShortensAGrownJitterBuffer(t *testing.T) {
	m, send := oneSpeakerMix(t)
	for range 10 { // 200 ms at once
		send()
	}
	m.Tick()
	src := m.sources[0]
	if held := src.jb.n / tickSamples; held < 6 {
		t.Fatalf("the buffer holds %d ticks after the burst, want about 7 (the inbox keeps 8)", held)
	}
	for range 2 * shortenAfter {
		send()
		m.Tick()
	}
	if held := src.jb.n / tickSamples; held > maxHeldTicks+1 {
		t.Errorf("the buffer still holds %d ticks a second later", held)
	}
}

// TestListenerMixPlaysAtOnceAndKeepsAJitteredTick: a browser hears a
// speaker's first frame in the tick it arrives; a frame that comes a tick
// late costs one concealed tick and from then on the buffer holds that
// tick, which keepShort leaves alone.
func TestListenerMixPlaysAtOnceAndKeepsAJitteredTick(t *testing.T) {
	m, send := oneSpeakerMix(t)
	send()
	m.Tick()
	src := m.sources[0]
	if !src.have || src.jb.n != 0 {
		t.Fatalf("after the first frame's tick: playing %v with %d samples left, want it played at once", src.have, src.jb.n)
	}
	m.Tick() // the next frame is late: concealed
	if !src.have {
		t.Fatal("the late tick was not concealed")
	}
	send()
	send()
	m.Tick()
	if src.jb.n != tickSamples {
		t.Fatalf("after the late frame the buffer holds %d samples, want one tick (%d)", src.jb.n, tickSamples)
	}
	for range 2 * shortenAfter {
		send()
		m.Tick()
	}
	if src.jb.n != tickSamples {
		t.Errorf("a second later the buffer holds %d samples, want the jittered tick (%d) kept", src.jb.n, tickSamples)
	}
}

// oneSpeakerMix is a listener mix with listener 2, and send, which
// delivers the next 20 ms frame (silence) of speaker 1 to it.
func oneSpeakerMix(t *testing.T) (*ListenerMix, func()) {
	t.Helper()
	codecs, err := NewCodecPool()
	if err != nil {
		t.Fatal(err)
	}
	m := NewListenerMix(codecs)
	m.Add(2, &recorder{})
	frame := 0
	return m, func() {
		a := voice.Audio{Sender: 1, Frame: uint64(2 * frame), Opus: codecs.Silence()}
		m.Deliver(2, &a)
		frame++
	}
}
