// Command wavlevels measures tones in a WAV file (16-bit PCM, mono, 48 kHz,
// as parecord writes it): for each frequency given, its amplitude over the
// file after a skip, by the Goertzel algorithm; and in 100 ms windows how
// many are silent (dropouts) and how rough the worst one is compared with
// the median (a click stands out). It is what scripts/desktop-client-mix.sh
// uses to say what the real desktop client played.
//
//	wavlevels [-skip 2s] [-present 237] [-absent 523] FILE FREQ...
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/plenum-voice/plenum/internal/audiotest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wavlevels:", err)
		os.Exit(1)
	}
}

func run() error {
	skip := flag.Duration("skip", 2*time.Second, "leave out the start (the client's own start-up)")
	present := flag.Float64("present", 0, "fail unless this frequency is at least 10 times any -absent one")
	absent := flag.Float64("absent", 0, "a frequency that must not be heard")
	flag.Parse()
	if flag.NArg() < 1 {
		return errors.New("usage: wavlevels [-skip D] [-present HZ] [-absent HZ] FILE FREQ...")
	}
	pcm, err := readWAV(flag.Arg(0))
	if err != nil {
		return err
	}
	from := min(int(skip.Seconds()*audiotest.SampleRate), len(pcm))
	pcm = pcm[from:]
	fmt.Printf("analysed %.1f s (after %v)\n", float64(len(pcm))/audiotest.SampleRate, *skip)
	fmt.Printf("overall RMS %.4f of full scale\n", audiotest.RMS(pcm))
	levels := map[float64]float64{}
	for _, a := range flag.Args()[1:] {
		f, err := strconv.ParseFloat(a, 64)
		if err != nil {
			return err
		}
		levels[f] = level(pcm, f)
		fmt.Printf("%7.1f Hz  amplitude %.4f\n", f, levels[f])
	}
	silent, roughness := windows(pcm)
	fmt.Printf("100 ms windows silent (RMS < 0.001): %d of %d\n", silent, len(pcm)/(audiotest.SampleRate/10))
	fmt.Printf("worst 5 ms roughness: %.2f times the median\n", roughness)
	if *present > 0 && *absent > 0 {
		p, a := level(pcm, *present), level(pcm, *absent)
		if p < 10*a || p < 0.001 {
			return fmt.Errorf("%.0f Hz at %.4f is not clearly above %.0f Hz at %.4f", *present, p, *absent, a)
		}
		fmt.Printf("verdict: %.0f Hz heard (%.4f), %.0f Hz not (%.4f, %.0f dB below)\n", *present, p, *absent, a, 20*math.Log10(p/math.Max(a, 1e-9)))
	}
	return nil
}

// level is a tone's amplitude averaged over 100 ms windows: narrow enough
// to tell 200 from 237 Hz, wide enough that a client's playback running a
// little fast or slow (resampling, jitter buffer) does not hide a tone, as
// one Goertzel over many seconds would.
func level(pcm []int16, freq float64) float64 {
	const win = audiotest.SampleRate / 10
	var sum float64
	n := 0
	for i := 0; i+win <= len(pcm); i += win {
		sum += audiotest.Level(pcm[i:i+win], freq)
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// windows counts silent 100 ms windows and returns the roughness (RMS of
// the second difference) of the worst 5 ms window relative to the median.
func windows(pcm []int16) (silent int, worst float64) {
	const win = audiotest.SampleRate / 10
	for i := 0; i+win <= len(pcm); i += win {
		if audiotest.RMS(pcm[i:i+win]) < 0.001 {
			silent++
		}
	}
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
		return silent, 0
	}
	sorted := slices.Clone(rough)
	slices.Sort(sorted)
	median := max(sorted[len(sorted)/2], 1)
	return silent, sorted[len(sorted)-1] / median
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
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:]))
		p += 8
		if id == "data" {
			end := min(p+size, len(b)) // a recording cut short may claim more
			if size == 0 || size == -1 || uint32(size) == 0xffffffff {
				end = len(b)
			}
			pcm := make([]int16, (end-p)/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(b[p+2*i:]))
			}
			return pcm, nil
		}
		p += size + size%2
	}
	return nil, errors.New(name + ": no data chunk")
}
