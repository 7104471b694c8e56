package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plenum-voice/plenum/internal/audiotest"
)

// writeWAV writes pcm as a 48 kHz mono 16-bit WAV file, with a LIST chunk
// before the data as parecord writes one.
func writeWAV(t *testing.T, pcm []int16) string {
	t.Helper()
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(4 + 8 + 16 + 8 + 4 + 8 + 2*len(pcm)))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le([]uint16{1, 1})
	le([]uint32{audiotest.SampleRate, 2 * audiotest.SampleRate})
	le([]uint16{2, 16})
	b.WriteString("LIST")
	le(uint32(3))
	b.WriteString("abc\x00") // odd size, padded
	b.WriteString("data")
	le(uint32(2 * len(pcm)))
	le(pcm)
	name := filepath.Join(t.TempDir(), "t.wav")
	if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// signal is 4 s of a loud 238 Hz tone and a faint 523 Hz one, with a
// 100 ms gap (five silent frames) at 3 s when gap is set.
func signal(gap bool) []int16 {
	const n = 4 * audiotest.SampleRate
	loud, faint := audiotest.Tone(238, 0.5, 0, n), audiotest.Tone(523, 0.0005, 0, n)
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = loud[i] + faint[i]
		if gap && i >= 3*audiotest.SampleRate && i < 3*audiotest.SampleRate+audiotest.SampleRate/10 {
			pcm[i] = 0
		}
	}
	return pcm
}

func runArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(args, &out)
	return out.String(), err
}

func TestPresentAndAbsentTones(t *testing.T) {
	file := writeWAV(t, signal(false))
	out, err := runArgs(t, "-skip", "1s", "-present", "238", "-absent", "523,440", "-absent", "200", "-max-dropouts", "0", file)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"analysed 3.0 s from 1s, in 30 windows of 100ms",
		"  238.0 Hz  mean 0.50",
		"  523.0 Hz  mean 0.00", // the 238 Hz tone's leakage, 39 dB down
		"20 ms frames silent (RMS < 0.001): 0 of 150, longest run 0 ms",
		"verdict: ok (238 Hz heard at 0.50",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := runArgs(t, "-present", "523", "-absent", "238", file); err == nil {
		t.Error("a faint present tone under a loud absent one passed")
	}
	if _, err := runArgs(t, "-absent", "238", file); err == nil || !strings.Contains(err.Error(), "238 Hz is heard") {
		t.Errorf("a loud absent tone with nothing present: %v", err)
	}
	if _, err := runArgs(t, "-absent", "700", file); err != nil {
		t.Errorf("a missing absent tone failed: %v", err)
	}
}

func TestDropoutsAndQuietestWindow(t *testing.T) {
	file := writeWAV(t, signal(true))
	out, err := runArgs(t, "-skip", "0", "-present", "238", file)
	if err == nil || !strings.Contains(err.Error(), "238 Hz drops out") {
		t.Errorf("a 100 ms gap in a present tone: %v\n%s", err, out)
	}
	for _, want := range []string{
		"quietest window 0.0000 at 3.0 s",
		"20 ms frames silent (RMS < 0.001): 5 of 200, longest run 100 ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := runArgs(t, "-skip", "0", "-length", "2s", "-present", "238", "-max-dropouts", "0", file); err != nil {
		t.Errorf("the first 2 s have no gap: %v", err)
	}
	if _, err := runArgs(t, "-skip", "0", "-max-dropouts", "4", file); err == nil || !strings.Contains(err.Error(), "5 silent frames") {
		t.Errorf("-max-dropouts 4 with 5 silent frames: %v", err)
	}
	// A 400 ms window averages the gap away to a quarter.
	out, _ = runArgs(t, "-skip", "0", "-window", "400ms", file, "238")
	if !strings.Contains(out, "quietest window 0.37") {
		t.Errorf("400 ms windows:\n%s", out)
	}
}

func TestBadInput(t *testing.T) {
	file := writeWAV(t, signal(false))
	for _, args := range [][]string{
		{file, "abc"},
		{"-present", "x", file},
		{"-window", "10ms", file},
		{"-skip", "10s", file},
		{filepath.Join(t.TempDir(), "missing.wav")},
		{},
	} {
		if _, err := runArgs(t, args...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	notWAV := filepath.Join(t.TempDir(), "x.wav")
	os.WriteFile(notWAV, []byte("RIFF\x00\x00\x00\x00WAVEjunk"), 0o644)
	if _, err := runArgs(t, notWAV); err == nil || !strings.Contains(err.Error(), "no data chunk") {
		t.Errorf("a WAV file without data: %v", err)
	}
}
