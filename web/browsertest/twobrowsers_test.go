package browsertest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
)

// TestChromiumTwoBrowsersDoNotHearThemselves: two tabs of Chromium in
// one channel with a Mumble client speaking 1500 Hz. Tab A talks (its
// microphone's 1000 Hz), tab B is muted. B hears A's 1000 Hz; A hears
// the Mumble client but not its own voice.
func TestChromiumTwoBrowsersDoNotHearThemselves(t *testing.T) {
	e := startServer(t, hallConfig(t))
	m := e.dial("mumble")
	m.join(t, "Plenary")
	speaker(t, m, 1500)

	a := chromeTab{sharedChromium(t)}
	b := chromeTab{sharedChromium(t)}
	joinTab(t, b, e.base, "Plenary", "bee")
	b.click(t, "#mute")
	m.waitFor(t, "bee muted", func(c *client.Client) bool {
		for _, u := range c.Users() {
			if u.GetName() == "bee" && u.GetSelfMute() {
				return true
			}
		}
		return false
	})
	joinTab(t, a, e.base, "Plenary", "ay")
	hears(t, a, 1500, 20*time.Second)
	m.waitHeard(t, m.sessionOf(t, "ay"), 50) // A talks
	pb := hearsBoth(t, b)
	pa := settle(t, a)
	t.Logf("A (talking) hears %v; B (muted) hears %v", pa, pb)
	if pa.DB1000 > pa.DB1500-30 {
		t.Errorf("A hears its own 1000 Hz at %.0f dB beside the Mumble client's 1500 Hz at %.0f dB", pa.DB1000, pa.DB1500)
	}
}

// hearsBoth waits until the page receives both 1000 and 1500 Hz loudly.
func hearsBoth(t testing.TB, tb tab) probe {
	t.Helper()
	var last probe
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if p, ok := measure(t, tb); ok {
			last = p
			if p.DB1000 > -70 && p.DB1500 > -70 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the page never heard both tones; last: %v", last)
	return last
}

// settle measures the page after a second more of listening.
func settle(t testing.TB, tb tab) probe {
	t.Helper()
	time.Sleep(time.Second)
	p, ok := measure(t, tb)
	if !ok {
		t.Fatal("the page has no received stream")
	}
	return p
}

// levelsJS gives the page's received levels (dB) at the frequencies of
// the array it is called with, from the probe of probeJS.
const levelsJS = `((freqs) => {
  const p = window.__probe;
  if (!p) return null;
  const d = new Float32Array(p.an.frequencyBinCount);
  p.an.getFloatFrequencyData(d);
  const hz = window.plenum.audioCtx.sampleRate / p.an.fftSize;
  return freqs.map((f) => { const i = Math.round(f / hz); return Math.max(-200, d[i - 1], d[i], d[i + 1]); });
})`

// levelsAt waits until the page has its probe and returns its levels at
// freqs, averaged over a second.
func levelsAt(t testing.TB, tb tab, freqs ...float64) []float64 {
	t.Helper()
	js, _ := json.Marshal(freqs)
	sum := make([]float64, len(freqs))
	for range 10 {
		var got []float64
		if err := json.Unmarshal(tb.eval(t, levelsJS+"("+string(js)+")"), &got); err != nil || len(got) != len(freqs) {
			t.Fatalf("levels: %v %v", got, err)
		}
		for i, v := range got {
			sum[i] += v / 10
		}
		time.Sleep(100 * time.Millisecond)
	}
	return sum
}

// TestChromiumAndFirefoxDoNotHearThemselves: Chromium (its microphone
// 700 Hz) and Firefox (its fake stream, 1000 Hz) talk at once in one
// channel; each hears the other and not itself.
func TestChromiumAndFirefoxDoNotHearThemselves(t *testing.T) {
	fox := firefox(t)
	chrome := chromeTab{chromium(t, 700, "en-US")}
	e := startServerAnnouncing(t, hallConfig(t), externalAddr(t))
	m := e.dial("mumble")
	m.join(t, "Plenary")
	joinTab(t, chrome, e.base, "Plenary", "chrome")
	joinTab(t, fox, e.base, "Plenary", "fox")
	m.waitHeard(t, m.sessionOf(t, "chrome"), 25)
	m.waitHeard(t, m.sessionOf(t, "fox"), 25)
	hears(t, chrome, 1000, 20*time.Second)
	hears(t, fox, 700, 20*time.Second)
	c := levelsAt(t, chrome, 700, 1000)
	f := levelsAt(t, fox, 700, 1000)
	t.Logf("Chromium hears 700 Hz (its own) at %.0f dB, 1000 Hz (Firefox) at %.0f dB; Firefox hears 700 Hz (Chromium) at %.0f dB, 1000 Hz (its own) at %.0f dB", c[0], c[1], f[0], f[1])
	if c[0] > c[1]-30 {
		t.Errorf("Chromium hears its own 700 Hz at %.0f dB beside Firefox's 1000 Hz at %.0f dB", c[0], c[1])
	}
	if f[1] > f[0]-30 {
		t.Errorf("Firefox hears its own 1000 Hz at %.0f dB beside Chromium's 700 Hz at %.0f dB", f[1], f[0])
	}
}
