package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/internal/audiotest"
)

// probeJS measures what the page receives, with an AnalyserNode of its
// own on the page's received stream: the strongest frequency (refined
// between FFT bins) and the levels at 1000 and 1500 Hz, in dB.
const probeJS = `(() => {
  const S = window.plenum;
  if (!S.remoteStream || !S.audioCtx) return null;
  if (!window.__probe || window.__probe.stream !== S.remoteStream) {
    const an = S.audioCtx.createAnalyser();
    an.fftSize = 8192;
    an.smoothingTimeConstant = 0.5;
    S.audioCtx.createMediaStreamSource(S.remoteStream).connect(an);
    window.__probe = { stream: S.remoteStream, an };
  }
  const an = window.__probe.an, d = new Float32Array(an.frequencyBinCount);
  an.getFloatFrequencyData(d);
  const db = (i) => Math.max(-200, d[i]);
  let bi = 2;
  for (let i = 3; i < d.length - 1; i++) if (d[i] > d[bi]) bi = i;
  const hz = S.audioCtx.sampleRate / an.fftSize;
  const a = db(bi - 1), b = db(bi), c = db(bi + 1);
  const shift = a - 2 * b + c === 0 ? 0 : 0.5 * (a - c) / (a - 2 * b + c);
  const at = (f) => Math.max(db(Math.round(f / hz) - 1), db(Math.round(f / hz)), db(Math.round(f / hz) + 1));
  return { peak: (bi + shift) * hz, peakDB: b, db1000: at(1000), db1500: at(1500), state: S.audioCtx.state };
})()`

type probe struct {
	Peak, PeakDB, DB1000, DB1500 float64
	State                        string
}

func (p probe) String() string {
	return fmt.Sprintf("peak %.1f Hz at %.0f dB (1000 Hz %.0f dB, 1500 Hz %.0f dB, %s)", p.Peak, p.PeakDB, p.DB1000, p.DB1500, p.State)
}

func measure(t testing.TB, tb tab) (probe, bool) {
	raw := tb.eval(t, probeJS)
	var p probe
	if string(raw) == "null" || json.Unmarshal(raw, &p) != nil {
		return p, false
	}
	return p, true
}

// hears waits until the page's strongest received frequency is freq
// (within 10 Hz) and loud, and returns the measurement.
func hears(t testing.TB, tb tab, freq float64, within time.Duration) probe {
	t.Helper()
	var last probe
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if p, ok := measure(t, tb); ok {
			last = p
			if math.Abs(p.Peak-freq) < 10 && p.PeakDB > -70 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the page never heard %.0f Hz; last: %v; WebRTC: %s", freq, last,
		tb.eval(t, `plenum.pc ? [plenum.pc.iceConnectionState, plenum.pc.connectionState, plenum.pc.signalingState, plenum.transmitting, plenum.marks] : [plenum.lostReasons, plenum.answer]`))
	return last
}

// speaker sends a continuous tone as a Mumble client until stopped.
func speaker(t testing.TB, u *mumbleUser, freq float64) (stop func()) {
	t.Helper()
	sp, err := audiotest.NewSpeaker(freq, 0.3, 20)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for frame := uint64(0); ; frame++ {
			select {
			case <-done:
				opus, _ := sp.Next()
				u.SendAudio(0, frame, opus, true, nil)
				return
			case <-tick.C:
			}
			opus, err := sp.Next()
			if err != nil {
				return
			}
			u.SendAudio(0, frame, opus, false, nil)
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// peakFrequency is the strongest frequency in pcm between 100 and 4000
// Hz, to 0.5 Hz: a scan of Goertzel filters, coarse then fine. Unlike
// zero crossings it is not thrown off by a missing frame's seam.
func peakFrequency(pcm []int16) float64 {
	best, bestLevel := 0.0, -1.0
	scan := func(from, to, step float64) {
		for f := from; f <= to; f += step {
			if l := audiotest.Level(pcm, f); l > bestLevel {
				best, bestLevel = f, l
			}
		}
	}
	scan(100, 4000, 10)
	scan(best-10, best+10, 0.5)
	return best
}

// heardFrom decodes what u received from session (the part after skip
// frames, at most a second) and returns its strongest frequency and how
// many frames there were.
func (u *mumbleUser) heardFrom(t testing.TB, session uint32, skip int) (float64, int) {
	t.Helper()
	u.mu.Lock()
	frames := append([][]byte(nil), u.heard[session]...)
	u.mu.Unlock()
	if len(frames) <= skip {
		return 0, len(frames)
	}
	pcm, err := audiotest.Decode(frames)
	if err != nil {
		t.Fatalf("decoding the browser's Opus: %v", err)
	}
	pcm = pcm[skip*960:]
	pcm = pcm[:min(len(pcm), audiotest.SampleRate)]
	return peakFrequency(pcm), len(frames)
}

// forget drops what u heard so far.
func (u *mumbleUser) forget() {
	u.mu.Lock()
	u.heard = map[uint32][][]byte{}
	u.mu.Unlock()
}

// sessionOf waits for the user called name and returns its session.
func (u *mumbleUser) sessionOf(t testing.TB, name string) uint32 {
	t.Helper()
	var s uint32
	u.waitFor(t, name, func(c *client.Client) bool {
		for id, x := range c.Users() {
			if x.GetName() == name {
				s = id
				return true
			}
		}
		return false
	})
	return s
}

// waitHeard waits until u has n frames from session.
func (u *mumbleUser) waitHeard(t testing.TB, session uint32, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		u.mu.Lock()
		got := len(u.heard[session])
		u.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the Mumble client got fewer than %d frames from the browser", n)
}

// browserAndMumble is the scenario both browsers run: a Mumble client in
// Plenary speaks 1500 Hz; the page joins Plenary from the link and its
// microphone's 1000 Hz tone (voice activation) reaches the Mumble client,
// which decodes it at 1000 Hz, while the page measures 1500 Hz in what
// it receives; it reports the time from opening the link to hearing. Then
// text both ways, and a hand raised from the page in the hall shows in
// the chair's queue.
func browserAndMumble(t *testing.T, e *env, tb tab, name string) {
	m := e.dial("mumble", "chair")
	m.join(t, "Plenary")
	speaker(t, m, 1500)

	start := time.Now()
	joinTab(t, tb, e.base, "Plenary", name)
	p := hears(t, tb, 1500, 20*time.Second)
	took := time.Since(start)
	t.Logf("%s: from opening the link to hearing the Mumble client's tone: %v (the name typed and Join clicked at once); the page hears %v; page marks (ms since navigation): %s",
		name, took.Round(time.Millisecond), p, tb.eval(t, `JSON.stringify(plenum.marks, (k, v) => typeof v == "number" ? Math.round(v) : v)`))

	web := m.sessionOf(t, name)
	m.waitHeard(t, web, 75) // 1.5 s of its voice
	f, n := m.heardFrom(t, web, 25)
	t.Logf("%s: the Mumble client decoded %d frames of the browser's voice at %.1f Hz", name, n, f)
	if math.Abs(f-1000) > 3 {
		t.Errorf("the Mumble client decoded the browser's tone at %.1f Hz, want 1000", f)
	}

	// Text both ways.
	tb.eval(t, `(() => { document.getElementById("chat-input").value = "hello from the web"; document.querySelector("#chat-form button[type=submit]").click(); return true; })()`)
	m.told(t, "hello from the web")
	plenary := m.channel(t, "Plenary")
	if err := m.SendText("hello from Mumble", nil, []uint32{plenary}, nil); err != nil {
		t.Fatal(err)
	}
	waitTab(t, tb, "the Mumble client's message", `document.getElementById("chat-log").innerText.includes("mumble: hello from Mumble")`)

	// The floor: both go to the hall; the page raises its hand.
	m.join(t, "Hall")
	tb.eval(t, `[...document.querySelectorAll("#tree .channel-name")].find(b => b.textContent == "Hall").click()`)
	waitTab(t, tb, "the hand button", `!document.getElementById("floor").hidden`)
	tb.click(t, "#hand")
	m.told(t, "Queue: 1. "+name+".")
	waitTab(t, tb, "the place in the queue", `document.getElementById("place").textContent.includes("1")`)
}

// reconnects cuts the page's WebSocket as a network change would and
// checks that the page comes back by itself: a new session of the same
// name in the channel it was in (the hall), hearing the Mumble client
// there again. Meanwhile a Mumble client holds the page's name for 2 s,
// as the page's old session would until the server noticed its dead
// connection: the page must keep trying, not give up at "name in use".
// It comes back as the same person: the identity its tab's rejoin key
// gives it (which Mumble clients see as its certificate hash) is the one
// it had.
func reconnects(t *testing.T, e *env, tb tab, name string) {
	m := e.dial("watcher")
	old := m.sessionOf(t, name)
	identity := m.Users()[old].GetHash()
	if len(identity) != 40 {
		t.Errorf("the page's session has identity %q, want its rejoin key's", identity)
	}
	hall := m.channel(t, "Hall")
	tb.eval(t, `(() => { plenum.ws.close(); return true; })()`)
	start := time.Now()
	m.waitFor(t, "the old session gone", func(c *client.Client) bool { _, ok := c.Users()[old]; return !ok })
	squatter, err := client.Dial(context.Background(), client.Config{Address: e.mumble, Username: name})
	if err != nil {
		t.Fatalf("taking the page's name: %v", err)
	}
	time.Sleep(2 * time.Second)
	squatter.Close()
	m.waitFor(t, name+" back in the hall", func(c *client.Client) bool {
		for s, u := range c.Users() {
			if u.GetName() == name && s != old && u.GetChannelId() == hall && u.GetHash() == identity {
				return true
			}
		}
		return false
	})
	p := hears(t, tb, 1500, 20*time.Second)
	t.Logf("%s: back in the hall %v after its WebSocket was cut (its name taken for 2 s of that), hearing %v; why it lost the connection: %s",
		name, time.Since(start).Round(time.Millisecond), p, tb.eval(t, `plenum.lostReasons`))
}
