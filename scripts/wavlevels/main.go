// Command wavlevels measures tones in a WAV file (16-bit PCM, mono, 48 kHz,
// as parecord writes it). It is what the desktop-client scripts use to say
// what the real Mumble client played.
//
//	wavlevels [-skip D] [-length D] [-window D] [-present HZ]... [-absent HZ]...
//	          [-max-dropouts N] FILE [FREQ...]
//
// For every tone (the FREQ arguments and every -present and -absent one) it
// reports the amplitude averaged over windows of -window (Goertzel) and the
// quietest window, which shows a tone that was gone for a while. It counts
// the 20 ms frames (one Opus frame) that are silent, with the longest run
// of them, and how rough the worst 5 ms is against the median (a click
// stands out).
//
// The verdict (exit status 1 when it fails): every -present tone is heard
// (at least 0.001 of full scale), in every window (its quietest window at
// least a tenth of its mean), and 10 times louder than every -absent tone;
// with no -present tone, every -absent one is below 0.003 (nothing but
// noise). With -max-dropouts N, at most N frames may be silent.
package main

import (
	"cmp"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plenum-voice/plenum/internal/audiotest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wavlevels:", err)
		os.Exit(1)
	}
}

// Levels that decide the verdict, as fractions of full scale.
const (
	heardLevel  = 0.001 // a present tone is at least this loud
	quietLevel  = 0.003 // an absent tone, with nothing present, is below this
	silentFrame = 0.001 // a frame whose RMS is below this is a dropout
	frameLen    = audiotest.SampleRate / 50
)

type options struct {
	skip, length, window time.Duration
	present, absent      []float64
	maxDropouts          int
}

func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("wavlevels", flag.ContinueOnError)
	fs.SetOutput(w)
	var o options
	fs.DurationVar(&o.skip, "skip", 2*time.Second, "leave out the start (the client's own start-up)")
	fs.DurationVar(&o.length, "length", 0, "analyse only this long after -skip (0: to the end)")
	fs.DurationVar(&o.window, "window", 100*time.Millisecond, "window for tone levels: narrow enough to tell tones 38 Hz apart (>= 50ms)")
	fs.Func("present", "a tone that must be heard, in every window (`HZ`; repeat, or list with commas)", freqList(&o.present))
	fs.Func("absent", "a tone that must not be heard (`HZ`; repeat, or list with commas)", freqList(&o.absent))
	fs.IntVar(&o.maxDropouts, "max-dropouts", -1, "fail when more than `N` 20 ms frames are silent (-1: do not check)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return errors.New("usage: wavlevels [-skip D] [-length D] [-window D] [-present HZ]... [-absent HZ]... FILE [FREQ...]")
	}
	if o.window < 50*time.Millisecond {
		return fmt.Errorf("-window %v is too short to tell tones apart", o.window)
	}
	var extra []float64
	for _, a := range fs.Args()[1:] {
		f, err := strconv.ParseFloat(a, 64)
		if err != nil || f <= 0 {
			return fmt.Errorf("%q is not a frequency in Hz", a)
		}
		extra = append(extra, f)
	}
	pcm, err := readWAV(fs.Arg(0))
	if err != nil {
		return err
	}
	return analyse(w, clip(pcm, o.skip, o.length), o, extra)
}

// freqList parses a -present or -absent value into list.
func freqList(list *[]float64) func(string) error {
	return func(v string) error {
		for _, s := range strings.Split(v, ",") {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || f <= 0 {
				return fmt.Errorf("%q is not a frequency in Hz", s)
			}
			*list = append(*list, f)
		}
		return nil
	}
}

// clip returns the samples from skip on, at most length long (0: all).
func clip(pcm []int16, skip, length time.Duration) []int16 {
	pcm = pcm[min(samples(skip), len(pcm)):]
	if length > 0 {
		pcm = pcm[:min(samples(length), len(pcm))]
	}
	return pcm
}

func samples(d time.Duration) int { return int(d.Seconds() * audiotest.SampleRate) }

func seconds(n int) float64 { return float64(n) / audiotest.SampleRate }

// analyse prints the measurement of pcm and returns the verdict.
func analyse(w io.Writer, pcm []int16, o options, extra []float64) error {
	win := samples(o.window)
	fmt.Fprintf(w, "analysed %.1f s from %v, in %d windows of %v\n", seconds(len(pcm)), o.skip, len(pcm)/win, o.window)
	if len(pcm) < win {
		return errors.New("nothing to analyse: shorter than one window")
	}
	fmt.Fprintf(w, "overall RMS %.4f of full scale\n", audiotest.RMS(pcm))
	fmt.Fprintf(w, "frequency from zero crossings %.1f Hz (meaningful for one tone alone)\n", audiotest.Frequency(pcm))
	tones := map[float64]toneLevel{}
	freqs := slices.Concat(extra, o.present, o.absent)
	slices.Sort(freqs)
	for _, f := range slices.Compact(freqs) {
		tones[f] = measure(pcm, f, win)
		t := tones[f]
		fmt.Fprintf(w, "%7.1f Hz  mean %.4f  quietest window %.4f at %.1f s\n", f, t.mean, t.quietest, o.skip.Seconds()+seconds(t.quietestAt))
	}
	silent, longest, frames := dropouts(pcm)
	fmt.Fprintf(w, "20 ms frames silent (RMS < %g): %d of %d, longest run %d ms\n", silentFrame, silent, frames, longest*20)
	fmt.Fprintf(w, "worst 5 ms roughness: %.2f times the median\n", roughness(pcm))

	problems := verdict(tones, o.present, o.absent)
	if o.maxDropouts >= 0 && silent > o.maxDropouts {
		problems = append(problems, fmt.Sprintf("%d silent frames, more than %d", silent, o.maxDropouts))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	if len(o.present)+len(o.absent)+max(o.maxDropouts+1, 0) > 0 {
		fmt.Fprintf(w, "verdict: ok (%s)\n", describe(tones, o.present, o.absent))
	}
	return nil
}

// toneLevel is one tone's amplitude over the analysed stretch.
type toneLevel struct {
	mean, quietest float64
	quietestAt     int // sample where the quietest window starts
}

// measure averages a tone's amplitude over windows of win samples and
// finds the quietest. Windows rather than one Goertzel over many seconds:
// a client whose playback runs a little fast or slow (resampling, jitter
// buffer) would smear the tone out of one long filter's narrow band.
func measure(pcm []int16, freq float64, win int) toneLevel {
	t := toneLevel{quietest: math.Inf(1)}
	n := 0
	for i := 0; i+win <= len(pcm); i += win {
		l := audiotest.Level(pcm[i:i+win], freq)
		t.mean += l
		if l < t.quietest {
			t.quietest, t.quietestAt = l, i
		}
		n++
	}
	t.mean /= float64(n)
	return t
}

// dropouts counts the silent 20 ms frames and the longest run of them.
func dropouts(pcm []int16) (silent, longest, frames int) {
	run := 0
	for i := 0; i+frameLen <= len(pcm); i += frameLen {
		frames++
		if audiotest.RMS(pcm[i:i+frameLen]) >= silentFrame {
			run = 0
			continue
		}
		silent++
		run++
		longest = max(longest, run)
	}
	return silent, longest, frames
}

// roughness is the RMS of the second difference of the worst 5 ms
// relative to the median 5 ms: a click or a cut waveform stands out.
func roughness(pcm []int16) float64 {
	const small = audiotest.SampleRate / 200
	var rough []float64
	for i := 2; i+small <= len(pcm); i += small {
		var sum float64
		for j := i; j < i+small; j++ {
			d := float64(pcm[j]) - 2*float64(pcm[j-1]) + float64(pcm[j-2])
			sum += d * d
		}
		rough = append(rough, math.Sqrt(sum/small))
	}
	if len(rough) == 0 {
		return 0
	}
	slices.Sort(rough)
	return rough[len(rough)-1] / max(rough[len(rough)/2], 1)
}

// verdict lists what contradicts -present and -absent.
func verdict(tones map[float64]toneLevel, present, absent []float64) []string {
	var problems []string
	for _, p := range present {
		t := tones[p]
		switch {
		case t.mean < heardLevel:
			problems = append(problems, fmt.Sprintf("%g Hz is not heard (%.4f)", p, t.mean))
		case t.quietest < t.mean/10:
			problems = append(problems, fmt.Sprintf("%g Hz drops out (quietest window %.4f, mean %.4f)", p, t.quietest, t.mean))
		}
		for _, a := range absent {
			if t.mean < 10*tones[a].mean {
				problems = append(problems, fmt.Sprintf("%g Hz at %.4f is not clearly above %g Hz at %.4f", p, t.mean, a, tones[a].mean))
			}
		}
	}
	if len(present) == 0 {
		for _, a := range absent {
			if tones[a].mean >= quietLevel {
				problems = append(problems, fmt.Sprintf("%g Hz is heard (%.4f)", a, tones[a].mean))
			}
		}
	}
	return problems
}

// describe says what passed: the quietest present tone against the
// loudest absent one.
func describe(tones map[float64]toneLevel, present, absent []float64) string {
	var parts []string
	for _, p := range present {
		parts = append(parts, fmt.Sprintf("%g Hz heard at %.4f", p, tones[p].mean))
	}
	for _, a := range absent {
		s := fmt.Sprintf("%g Hz not at %.4f", a, tones[a].mean)
		if len(present) > 0 {
			quietest := slices.MinFunc(present, func(x, y float64) int { return cmp.Compare(tones[x].mean, tones[y].mean) })
			s += fmt.Sprintf(", %.0f dB below %g Hz", 20*math.Log10(tones[quietest].mean/max(tones[a].mean, 1e-9)), quietest)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "dropouts within the limit"
	}
	return strings.Join(parts, "; ")
}

// readWAV reads the samples of a 16-bit mono WAV file, finding its data
// chunk (parecord writes a header of its own size).
func readWAV(name string) ([]int16, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errors.New(name + ": not a WAV file")
	}
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), binary.LittleEndian.Uint32(b[p+4:])
		p += 8
		if id == "data" {
			end := len(b) // a recording cut short may claim more, or 0 or -1
			if size != 0 && size != 0xffffffff && int64(p)+int64(size) < int64(len(b)) {
				end = p + int(size)
			}
			pcm := make([]int16, (end-p)/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(b[p+2*i:]))
			}
			return pcm, nil
		}
		p += int(size) + int(size%2)
	}
	return nil, errors.New(name + ": no data chunk")
}
