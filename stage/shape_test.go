package stage

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/internal/audiotest"
	"github.com/plenum-voice/plenum/proto/voice"
)

// countingEmitter stands in for the router: it counts what a stage emits
// and asks the stage's pick for every listener, as the router would.
type countingEmitter struct {
	listeners []uint32
	speech    int
	picked    int
}

func (e *countingEmitter) Speech(sender uint32, a *voice.Audio) { e.speech++ }

func (e *countingEmitter) SpeechEach(sender uint32, pick func(uint32) *voice.Audio) {
	for _, l := range e.listeners {
		if pick(l) != nil {
			e.picked++
		}
	}
}

// newTestShaper is the stage of a channel whose virtual user is 1000,
// with a pool of its own and no priority speakers.
func newTestShaper(tb testing.TB, cfg Shape) *Shaper {
	tb.Helper()
	codecs, err := NewCodecPool()
	if err != nil {
		tb.Fatal(err)
	}
	return NewShaper(cfg, 1000, codecs, func(uint32) bool { return false })
}

// stageBench is a shaper with n speakers, each with half a second of real Opus
// at its own loudness, and 120 listeners.
type stageBench struct {
	sh      *Shaper
	out     *countingEmitter
	packets [][][]byte // per speaker, 25 frames of 20 ms, sent in a loop
	frame   int
}

func newStageBench(tb testing.TB, speakers int, cfg Shape) *stageBench {
	tb.Helper()
	b := &stageBench{sh: newTestShaper(tb, cfg), out: &countingEmitter{}}
	for l := range 120 {
		b.out.listeners = append(b.out.listeners, uint32(l+1))
	}
	for i := range speakers {
		amp := 0.02 + 0.5*float64(i)/float64(speakers) // spread over about 28 dB
		sp, err := audiotest.NewSpeaker(300+float64(i)*37, amp, 20)
		if err != nil {
			tb.Fatal(err)
		}
		var frames [][]byte
		for range 25 {
			pkt, err := sp.Next()
			if err != nil {
				tb.Fatal(err)
			}
			frames = append(frames, pkt)
		}
		b.packets = append(b.packets, frames)
	}
	return b
}

// tick delivers one frame from every speaker and runs one tick.
func (b *stageBench) tick(now time.Time) {
	var a voice.Audio
	for i, frames := range b.packets {
		a = voice.Audio{Frame: uint64(b.frame * 2), Opus: frames[b.frame%len(frames)]}
		b.sh.Accept(uint32(i+1), &a)
	}
	b.frame++
	b.sh.Tick(now, b.out)
}

func shapes() []struct {
	name string
	cfg  Shape
} {
	return []struct {
		name string
		cfg  Shape
	}{
		{"loudest8", Shape{MaxSpeakers: 8, MixAbove: -1}},
		{"mix", Shape{MixAbove: 0}},
		{"mix-loudest8", Shape{MaxSpeakers: 8, MixAbove: 0}},
	}
}

// TestShaperTickAllocatesNothing pins the stage's steady state: with
// speakers talking, a tick of loudest-N or of mixing allocates nothing.
func TestShaperTickAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; run without -race")
	}
	for _, shape := range shapes() {
		t.Run(shape.name, func(t *testing.T) {
			b := newStageBench(t, 24, shape.cfg)
			now := time.Now()
			for range 60 { // speakers selected, codecs taken, buffers grown
				b.tick(now)
			}
			emitted := b.out.speech + b.out.picked
			if allocs := testing.AllocsPerRun(50, func() { b.tick(now) }); allocs != 0 {
				t.Fatalf("a tick allocated %.1f times, want 0", allocs)
			}
			if b.out.speech+b.out.picked == emitted {
				t.Fatal("the stage emitted nothing: the test measured an idle stage")
			}
		})
	}
}

// TestMixingSelectsAndReleases checks the stage's bookkeeping over whole
// bursts: loudest-N sends N speakers' packets per tick, mixing sends every
// listener one packet per tick, and once everyone stopped the codecs are
// back in the pool and the stage goes idle.
func TestMixingSelectsAndReleases(t *testing.T) {
	for _, shape := range shapes() {
		t.Run(shape.name, func(t *testing.T) {
			b := newStageBench(t, 24, shape.cfg)
			now := time.Now()
			for range 60 {
				b.tick(now)
			}
			wantStreams := map[string]int{"loudest8": 0, "mix": min(24, maxMixed), "mix-loudest8": 8}[shape.name]
			if n := len(b.sh.mix.streams); n != wantStreams {
				t.Errorf("%d personal mix streams, want %d", n, wantStreams)
			}
			b.out.speech, b.out.picked = 0, 0
			b.tick(now)
			switch shape.cfg.MixAbove {
			case -1:
				if b.out.speech != 8 {
					t.Errorf("loudest-8 sent %d packets in a tick, want 8", b.out.speech)
				}
			default:
				if b.out.speech != 0 || b.out.picked != 120 {
					t.Errorf("a mixing tick sent %d direct packets and %d mixed, want 0 and 120", b.out.speech, b.out.picked)
				}
			}
			busy := true
			for i := 0; busy && i < 200; i++ {
				busy = b.sh.Tick(now, b.out)
			}
			if busy {
				t.Fatal("the stage stayed busy 4 s after everyone stopped")
			}
			if n := len(b.sh.codecs.decoders) + len(b.sh.codecs.meters); n != 24 {
				t.Errorf("%d decoders back in the pool, want 24", n)
			}
			if len(b.sh.mix.streams) != 0 || b.sh.mix.enc != nil {
				t.Errorf("the mix kept %d personal streams and its encoder", len(b.sh.mix.streams))
			}
		})
	}
}

// BenchmarkStageTick measures the CPU of one 20 ms tick of a shaped channel
// with 8, 32 and 100 people talking at once (120 listeners), for
// loudest-8, mixing everyone, and mixing the loudest 8. A tick must stay
// well under 20 ms of one core.
func BenchmarkStageTick(b *testing.B) {
	for _, shape := range shapes() {
		for _, speakers := range []int{8, 32, 100} {
			b.Run(fmt.Sprintf("%s/speakers=%d", shape.name, speakers), func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				sb := newStageBench(b, speakers, shape.cfg)
				now := time.Now()
				for range 100 {
					sb.tick(now)
				}
				b.ReportAllocs()
				b.ResetTimer()
				cpu := threadCPU()
				for range b.N {
					sb.tick(now)
				}
				// CPU time, not wall time: the tick runs on one goroutine,
				// and a busy machine stretches wall time but not this.
				perTick := float64(threadCPU()-cpu) / float64(b.N)
				b.ReportMetric(perTick/1e3, "cpu-µs/tick")
				b.ReportMetric(perTick/1e3/float64(speakers), "cpu-µs/speaker")
				b.ReportMetric(perTick/20e6*100, "%core")
			})
		}
	}
}

// threadCPU is the CPU time, in nanoseconds, of the calling thread. The
// benchmark locks itself to its thread so that this is the tick's time.
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// recordingEmitter keeps, for one listener, every packet a stage sends
// them.
type recordingEmitter struct {
	listener uint32
	got      [][]byte
}

func (e *recordingEmitter) Speech(sender uint32, a *voice.Audio) {
	if sender != e.listener {
		e.got = append(e.got, bytes.Clone(a.Opus))
	}
}

func (e *recordingEmitter) SpeechEach(sender uint32, pick func(uint32) *voice.Audio) {
	if a := pick(e.listener); a != nil {
		e.got = append(e.got, bytes.Clone(a.Opus))
	}
}

// switchRoughness runs a mixed channel where B talks throughout and A
// joins in for a second, and returns what A hears, decoded: B's tone
// alone from start to end, across A's switch to their own mix-minus
// stream and back. It reports the roughness (the RMS of the signal's
// second difference, which a pure 660 Hz tone keeps tiny and a click
// makes large) of the worst 5 ms around each switch, relative to the
// median 5 ms of the steady tone.
func switchRoughness(t *testing.T, hangover, warm int) (join, leave float64) {
	t.Helper()
	sh := newTestShaper(t, Shape{MixAbove: 0})
	sh.mix.hangover, sh.mix.warm = hangover, warm
	a, err := audiotest.NewSpeaker(440, 0.2, 20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := audiotest.NewSpeaker(660, 0.2, 20)
	if err != nil {
		t.Fatal(err)
	}
	out := &recordingEmitter{listener: 1}
	now := time.Now()
	for tick := range 150 {
		pkt, _ := b.Next()
		sh.Accept(2, &voice.Audio{Frame: uint64(tick * 2), Opus: pkt})
		if tick >= 50 && tick < 100 {
			pkt, _ := a.Next()
			sh.Accept(1, &voice.Audio{Frame: uint64(tick * 2), Opus: pkt, Terminator: tick == 99})
		}
		sh.Tick(now, out)
	}
	l, err := audiotest.NewListener()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range out.got {
		if err := l.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	pcm := l.PCM
	if lvl := audiotest.Level(pcm[len(pcm)/4:], 440); lvl > 0.01 {
		t.Fatalf("A hears their own tone at %.3f", lvl)
	}
	const win = 240 // 5 ms
	var rough []float64
	for i := 0; i+win <= len(pcm); i += win {
		var sum float64
		for j := i + 2; j < i+win; j++ {
			d := float64(pcm[j]) - 2*float64(pcm[j-1]) + float64(pcm[j-2])
			sum += d * d
		}
		rough = append(rough, math.Sqrt(sum/win))
	}
	sorted := slices.Clone(rough)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	worst := func(fromTick, toTick int) float64 {
		w := 0.0
		for i := fromTick * 4; i < toTick*4 && i < len(rough); i++ { // 4 windows a tick
			w = max(w, rough[i])
		}
		return w / median
	}
	// A's voice reaches the mix two ticks after their first packet (the
	// jitter buffer) and leaves it when their buffer runs dry; the
	// switches happen within these spans, shifted by the stream's start.
	first := 150 - len(out.got)
	return worst(50-first, 60-first), worst(98-first, 110-first)
}

// TestSwitchingStreamsIsClean shows on decoded audio that a listener who
// starts and stops talking in a mixed channel, and so moves to their own
// mix-minus stream and back, hears no click: the audio around both
// switches is as smooth as the steady tone. Without the warm-up and the
// hangover the same switches are rough.
func TestSwitchingStreamsIsClean(t *testing.T) {
	join, leave := switchRoughness(t, personalHangover, warmTicks)
	rawJoin, rawLeave := switchRoughness(t, 1, 0)
	t.Logf("roughness around the switch, relative to the steady tone: join %.2f, leave %.2f (without warm-up and hangover: %.2f, %.2f)", join, leave, rawJoin, rawLeave)
	if join > 2 || leave > 2 {
		t.Errorf("switching streams is audible: %.2f and %.2f times the steady roughness", join, leave)
	}
	if rawJoin < 2*join && rawLeave < 2*leave {
		t.Errorf("without warm-up and hangover the switches are as smooth (%.2f, %.2f): the test does not see clicks", rawJoin, rawLeave)
	}
}

// TestStageDelay measures, in ticks, how long a shaped channel holds
// speech beyond the wait for the next tick (0 to 20 ms, 10 on average):
// loudest-N forwards a packet on the first tick after it arrives, and the
// mix plays a speaker's first frame one tick later, once the jitter
// buffer holds a frame and a tick.
func TestStageDelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Shape
		want int
	}{
		{"loudest-N", Shape{MaxSpeakers: 2, MixAbove: -1}, 0},
		{"mix", Shape{MixAbove: 0}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := newTestShaper(t, tc.cfg)
			sp, err := audiotest.NewSpeaker(500, 0.3, 20)
			if err != nil {
				t.Fatal(err)
			}
			out := &recordingEmitter{listener: 2}
			l, err := audiotest.NewListener()
			if err != nil {
				t.Fatal(err)
			}
			for tick := range 10 {
				pkt, _ := sp.Next()
				sh.Accept(1, &voice.Audio{Frame: uint64(2 * tick), Opus: pkt})
				sh.Tick(time.Now(), out)
				for _, p := range out.got {
					l.Add(p)
				}
				out.got = out.got[:0]
				if audiotest.RMS(l.PCM) > 0.01 {
					t.Logf("the first packet is heard %d ticks after the tick it arrived for", tick)
					if tick != tc.want {
						t.Errorf("the stage held the first speech %d ticks, want %d", tick, tc.want)
					}
					return
				}
			}
			t.Fatal("no audible output in 10 ticks")
		})
	}
}

// TestMixingEveryFrameLength: speakers sending 10, 40 or 60 ms frames are
// mixed into one continuous stream of 20 ms frames with their tones in
// it: the jitter buffer turns uneven arrivals (a 60 ms frame every third
// tick) into one tick of audio every tick.
func TestMixingEveryFrameLength(t *testing.T) {
	for _, ms := range []int{10, 40, 60} {
		t.Run(fmt.Sprintf("%dms", ms), func(t *testing.T) {
			sh := newTestShaper(t, Shape{MixAbove: 0})
			a, _ := audiotest.NewSpeaker(500, 0.2, ms)
			b, _ := audiotest.NewSpeaker(700, 0.2, 20)
			out := &recordingEmitter{listener: 3}
			sent := 0 // 10 ms units of speaker a's audio sent so far
			for tick := range 100 {
				for sent < 2*(tick+1) { // a's frames as they fall due
					pkt, _ := a.Next()
					sh.Accept(1, &voice.Audio{Frame: uint64(sent), Opus: pkt})
					sent += ms / 10
				}
				pkt, _ := b.Next()
				sh.Accept(2, &voice.Audio{Frame: uint64(2 * tick), Opus: pkt})
				sh.Tick(time.Now(), out)
			}
			if len(out.got) < 97 {
				t.Fatalf("%d mixed frames in 100 ticks", len(out.got))
			}
			l, _ := audiotest.NewListener()
			for _, p := range out.got {
				l.Add(p)
			}
			if got := len(l.PCM); got != len(out.got)*tickSamples {
				t.Fatalf("the mix is not 20 ms frames: %d samples in %d frames", got, len(out.got))
			}
			tail := l.PCM[len(l.PCM)/4:]
			la, lb := audiotest.Level(tail, 500), audiotest.Level(tail, 700)
			t.Logf("%d ms frames: %d mixed frames, 500 Hz at %.3f, 700 Hz at %.3f", ms, len(out.got), la, lb)
			if la < 0.15 || lb < 0.15 {
				t.Errorf("tones in the mix at %.3f and %.3f, sent at 0.2", la, lb)
			}
			silent := 0
			for i := len(l.PCM) / 4; i+tickSamples <= len(l.PCM); i += tickSamples {
				if audiotest.RMS(l.PCM[i:i+tickSamples]) < 0.05 {
					silent++
				}
			}
			if silent > 0 {
				t.Errorf("%d ticks of the mix nearly silent: the jitter buffer ran dry", silent)
			}
		})
	}
}

// senderCounter counts the packets a stage forwards, per sender.
type senderCounter map[uint32]int

func (c senderCounter) Speech(sender uint32, a *voice.Audio)         { c[sender]++ }
func (c senderCounter) SpeechEach(uint32, func(uint32) *voice.Audio) {}

// TestPrioritySpeakerIsAlwaysHeard: with room for one, the loudest
// speaker is heard and a quiet one is not, unless isPriority says the
// quiet one is a priority speaker: then both are.
func TestPrioritySpeakerIsAlwaysHeard(t *testing.T) {
	for _, priority := range []bool{false, true} {
		t.Run(fmt.Sprintf("priority=%v", priority), func(t *testing.T) {
			codecs, err := NewCodecPool()
			if err != nil {
				t.Fatal(err)
			}
			const loud, quiet = 1, 2
			sh := NewShaper(Shape{MaxSpeakers: 1, MixAbove: -1}, 0, codecs,
				func(session uint32) bool { return priority && session == quiet })
			loudSp, _ := audiotest.NewSpeaker(800, 0.5, 20)
			quietSp, _ := audiotest.NewSpeaker(400, 0.02, 20)
			out := senderCounter{}
			for tick := range 60 {
				if tick == 40 {
					clear(out) // selection has settled
				}
				pkt, _ := loudSp.Next()
				sh.Accept(loud, &voice.Audio{Frame: uint64(2 * tick), Opus: pkt})
				pkt, _ = quietSp.Next()
				sh.Accept(quiet, &voice.Audio{Frame: uint64(2 * tick), Opus: pkt})
				sh.Tick(time.Now(), out)
			}
			wantQuiet := 0
			if priority {
				wantQuiet = 20
			}
			if out[loud] != 20 || out[quiet] != wantQuiet {
				t.Errorf("in 20 ticks: %d packets of the loud speaker, %d of the quiet one; want 20 and %d", out[loud], out[quiet], wantQuiet)
			}
		})
	}
}

// sinkCounter is a RecordSink that counts what it is given.
type sinkCounter struct {
	packets, badLength int
}

func (s *sinkCounter) Write(packet []byte, samples int) {
	s.packets++
	if samples != tickSamples || len(packet) == 0 {
		s.badLength++
	}
}

// TestRecordingKeepsTime: a recording shaper writes one 20 ms packet of
// the mix to its sink every tick, through speech and the silence after
// it, and stays busy so that the clock keeps ticking it.
func TestRecordingKeepsTime(t *testing.T) {
	sh := newTestShaper(t, Shape{MixAbove: -1, Record: true})
	rec := &sinkCounter{}
	sh.RecordTo(rec)
	sp, _ := audiotest.NewSpeaker(500, 0.3, 20)
	out := &countingEmitter{}
	now := time.Now()
	for tick := range 100 {
		if tick < 30 {
			pkt, _ := sp.Next()
			sh.Accept(1, &voice.Audio{Frame: uint64(2 * tick), Opus: pkt, Terminator: tick == 29})
		}
		if !sh.Tick(now, out) {
			t.Fatalf("a recording shaper went idle at tick %d", tick)
		}
	}
	if rec.packets != 100 || rec.badLength != 0 {
		t.Errorf("the sink got %d packets (%d not 20 ms) in 100 ticks, want 100", rec.packets, rec.badLength)
	}
	sh.Stop()
	if sh.Tick(now, out) || rec.packets != 100 {
		t.Errorf("a stopped shaper stayed busy or recorded (%d packets)", rec.packets)
	}
}
