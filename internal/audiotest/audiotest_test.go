package audiotest

import (
	"math"
	"testing"
)

func TestLevelFindsTheToneAndNotOthers(t *testing.T) {
	pcm := Tone(440, 0.5, 0, SampleRate/2)
	for i, v := range Tone(1000, 0.1, 0, SampleRate/2) {
		pcm[i] += v
	}
	if got := Level(pcm, 440); math.Abs(got-0.5) > 0.02 {
		t.Errorf("440 Hz measured %.3f, want 0.5", got)
	}
	if got := Level(pcm, 1000); math.Abs(got-0.1) > 0.02 {
		t.Errorf("1000 Hz measured %.3f, want 0.1", got)
	}
	if got := Level(pcm, 700); got > 0.01 {
		t.Errorf("700 Hz, absent, measured %.3f", got)
	}
}

func TestOpusRoundTripKeepsTheTone(t *testing.T) {
	for _, ms := range []int{10, 20, 40, 60} {
		sp, err := NewSpeaker(600, 0.3, ms)
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewListener()
		if err != nil {
			t.Fatal(err)
		}
		frames := 960 / ms // 960 ms: a whole number of frames of every length
		for range frames {
			pkt, err := sp.Next()
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Add(pkt); err != nil {
				t.Fatal(err)
			}
		}
		if want := frames * sp.Samples(); len(l.PCM) != want {
			t.Fatalf("%d ms frames: decoded %d samples, want %d", ms, len(l.PCM), want)
		}
		tail := l.PCM[SampleRate/4:] // past the codec's start-up
		if got := Level(tail, 600); got < 0.2 || got > 0.4 {
			t.Errorf("%d ms frames: 600 Hz at %.3f after Opus, want about 0.3", ms, got)
		}
		if got := Level(tail, 900); got > 0.02 {
			t.Errorf("%d ms frames: 900 Hz, absent, at %.3f", ms, got)
		}
	}
	if _, err := NewSpeaker(600, 0.3, 30); err == nil {
		t.Error("a 30 ms frame length was accepted")
	}
}
