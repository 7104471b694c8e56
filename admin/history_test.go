package admin

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// at is the i-th sample time after t0, 10 s apart.
func at(i int) time.Time { return t0.Add(time.Duration(i) * SampleEvery) }

// TestRecentKeepsTheLastHour: the ring holds the last recentCap samples
// in order, whatever number came before.
func TestRecentKeepsTheLastHour(t *testing.T) {
	h := NewHistory()
	if _, ok := h.Latest(); ok || len(h.Recent()) != 0 || len(h.Session()) != 0 {
		t.Fatal("a new history is not empty")
	}
	total := recentSamples*2 + 17
	for i := range total {
		h.Add(Sample{Time: at(i), Participants: i})
	}
	got := h.Recent()
	if len(got) != recentSamples {
		t.Fatalf("%d recent samples, want %d", len(got), recentSamples)
	}
	for k, s := range got {
		if want := total - recentSamples + k; s.Participants != want || !s.Time.Equal(at(want)) {
			t.Fatalf("recent[%d] is sample %d at %v, want sample %d", k, s.Participants, s.Time, want)
		}
	}
	if span := got[len(got)-1].Time.Sub(got[0].Time); span != time.Hour-SampleEvery {
		t.Errorf("the recent samples span %v", span)
	}
	if last, ok := h.Latest(); !ok || last.Participants != total-1 {
		t.Errorf("Latest is sample %d (%v), want %d", last.Participants, ok, total-1)
	}
}

// TestSessionIsDownsampledWithinItsCap: however long the session, it
// keeps at most its cap of points, each spanning the same number of
// samples (the last possibly fewer); counts keep their peak and rates
// their mean, and the whole session is covered to the last sample.
func TestSessionIsDownsampledWithinItsCap(t *testing.T) {
	h := newHistory(6, 8)
	const n = 100
	for i := range n {
		// A peak of participants and talkers at sample 41; a rate that
		// grows by one per sample.
		p := 10
		if i == 41 {
			p = 500
		}
		h.Add(Sample{Time: at(i), Participants: p, Talking: p / 10, VoiceIn: float64(i), CPU: 0.5})
		if got := len(h.Session()); got > 8 {
			t.Fatalf("after %d samples the session has %d points, over its cap of 8", i+1, got)
		}
	}
	// 100 samples: 8 points fill at 1, 2, 4, 8 samples a point and are
	// halved each time; at 16 a point, 6 whole points and one of 4.
	got := h.Session()
	if h.perPoint != 16 || len(got) != 7 {
		t.Fatalf("%d points of %d samples, want 7 of 16", len(got), h.perPoint)
	}
	for k, s := range got {
		first, last := 16*k, min(16*k+15, n-1)
		if !s.Time.Equal(at(last)) {
			t.Errorf("point %d ends at %v, want %v", k, s.Time, at(last))
		}
		if want := float64(first+last) / 2; s.VoiceIn != want {
			t.Errorf("point %d: voice in %v, want the mean %v", k, s.VoiceIn, want)
		}
		wantPeak := 10
		if first <= 41 && 41 <= last {
			wantPeak = 500
		}
		if s.Participants != wantPeak || s.Talking != wantPeak/10 || s.CPU != 0.5 {
			t.Errorf("point %d: participants %d, talking %d, cpu %v; want %d, %d, 0.5", k, s.Participants, s.Talking, s.CPU, wantPeak, wantPeak/10)
		}
	}
}

// fakeTotals is what a fake server has done by a moment.
type fakeTotals struct{ t Totals }

func (f *fakeTotals) read() Totals { return f.t }

// TestSamplerOnAFakeClock: ticks once a second make a sample every 10 s
// with the rates over its interval, the most talking at any tick within
// it and the CPU as a share of a core; the first tick only sets the base.
func TestSamplerOnAFakeClock(t *testing.T) {
	h := NewHistory()
	sm := NewSampler(h)
	f := &fakeTotals{t: Totals{Participants: 3, VoiceIn: 1000, CPU: time.Second}}
	reads := 0
	totals := func() Totals { reads++; return f.read() }
	sm.Tick(t0, 2, totals)
	if reads != 1 || len(h.Recent()) != 0 {
		t.Fatalf("the first tick read totals %d times and added %d samples; want 1 and 0", reads, len(h.Recent()))
	}
	// Ten seconds: 50 packets a second in, 2000 copies out, 5 dropped in
	// all, half a core; three talking at once at 4 s.
	talking := []int{1, 2, 3, 1, 0, 0, 1, 0, 0, 2}
	for s := 1; s <= 10; s++ {
		if s == 10 {
			f.t = Totals{Participants: 4, Bad: 1, VoiceIn: 1500, VoiceOut: 20000, VoiceDropped: 5, CPU: 6 * time.Second, MemBytes: 1 << 20}
		}
		sm.Tick(t0.Add(time.Duration(s)*time.Second), talking[s-1], totals)
	}
	if reads != 2 {
		t.Errorf("totals read %d times in 10 ticks, want 2 (the base and the sample)", reads)
	}
	got := h.Recent()
	if len(got) != 1 {
		t.Fatalf("%d samples after 10 s, want 1", len(got))
	}
	want := Sample{Time: t0.Add(10 * time.Second), Participants: 4, Talking: 3, Bad: 1,
		VoiceIn: 50, VoiceOut: 2000, VoiceDropped: 0.5, CPU: 0.5, MemBytes: 1 << 20}
	if got[0] != want {
		t.Errorf("the sample:\n got %+v\nwant %+v", got[0], want)
	}
	// A late tick (the machine was busy) makes a longer interval, not a
	// wrong rate; a counter that went back gives no rate.
	f.t.VoiceIn, f.t.VoiceOut = 1500+150, 100
	sm.Tick(t0.Add(25*time.Second), 0, totals)
	if s, _ := h.Latest(); s.VoiceIn != 10 || s.VoiceOut != 0 || s.Talking != 0 {
		t.Errorf("after 15 s with 150 packets in and the out counter reset: %+v", s)
	}
}
