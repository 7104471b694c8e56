package main

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/server"
	"github.com/plenum-voice/plenum/store"
)

func TestSlope(t *testing.T) {
	min := func(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }
	// 3 MB per minute is 30 per 10 minutes, whatever the offset.
	ts := []time.Duration{min(1), min(2), min(3), min(4)}
	if got := slopePer(ts, []float64{103, 106, 109, 112}, 10*time.Minute); math.Abs(got-30) > 1e-9 {
		t.Errorf("rising line: slope %v, want 30", got)
	}
	// A sawtooth: the least-squares line through it, Σdx·dy / Σdx² =
	// (1.5 − .5 − .5 + 1.5) / 5 = 0.4 per minute.
	if got := slopePer(ts, []float64{50, 52, 50, 52}, 10*time.Minute); math.Abs(got-4) > 1e-9 {
		t.Errorf("sawtooth: slope %v, want 4", got)
	}
	if got := slopePer(ts[:1], []float64{7}, time.Minute); got != 0 {
		t.Errorf("one sample: slope %v, want 0", got)
	}
	same := []time.Duration{min(1), min(1)}
	if got := slopePer(same, []float64{1, 2}, time.Minute); got != 0 {
		t.Errorf("no time between samples: slope %v, want 0", got)
	}

	s := summarise([]time.Duration{min(2), min(4), min(6), min(8)}, []float64{40, 38, 45, 41})
	if s.Samples != 4 || s.Start != 40 || s.End != 41 || s.Min != 38 || s.Max != 45 || s.Minutes != 6 {
		t.Errorf("summary %+v", s)
	}
	// dx = −3, −1, 1, 3 minutes; dy = −1, −3, 4, 0: Σdx·dy = 10, Σdx² = 20,
	// so 0.5 per minute.
	if math.Abs(s.SlopePer10m-5) > 1e-9 {
		t.Errorf("slope %v, want 5", s.SlopePer10m)
	}
}

func TestTrendCheck(t *testing.T) {
	flat := Series{Samples: 100, Minutes: 29, Start: 30, End: 30.4, SlopePer10m: 0.3}
	if c := trendCheck("rss", "MB", flat, 2); !c.OK || c.Skipped {
		t.Errorf("flat: %+v", c)
	}
	leak := flat
	leak.SlopePer10m = 2.5
	if c := trendCheck("rss", "MB", leak, 2); c.OK || c.Skipped {
		t.Errorf("leak: %+v", c)
	}
	short := leak
	short.Minutes = 1.5
	if c := trendCheck("rss", "MB", short, 2); !c.Skipped {
		t.Errorf("1.5 minutes judged: %+v", c)
	}
}

func TestCountIn(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	sent := ms(0, 20, 20, 40, 60, 80, 100)
	sp := func(a, b int) span {
		return span{start: time.Duration(a) * time.Millisecond, end: time.Duration(b) * time.Millisecond}
	}
	for _, c := range []struct {
		s    span
		want int
	}{
		{sp(0, 100), 7}, // both ends included
		{sp(20, 20), 2}, // a point: every packet sent then
		{sp(21, 59), 1}, // strictly inside
		{sp(101, 200), 0},
		{sp(60, 40), 0}, // an empty window (closed before it started)
		{sp(-50, 10), 1},
	} {
		if got := countIn(sent, c.s); got != c.want {
			t.Errorf("countIn(%v) = %d, want %d", c.s, got, c.want)
		}
	}
	// Voice: the sum over a listener's windows.
	if got := expectedVoice(sent, []span{sp(0, 20), sp(60, 100)}); got != 6 {
		t.Errorf("expectedVoice = %d, want 6", got)
	}
}

func TestExpectedText(t *testing.T) {
	s := func(v int) time.Duration { return time.Duration(v) * time.Second }
	texts := []textSent{{s(1), 3}, {s(2), 5}, {s(2), 7}, {s(4), 5}, {s(9), 1}}
	spans := []span{{start: s(0), end: s(2)}, {start: s(4), end: s(8)}}
	// User 5 is not sent its own two messages; user 7 misses its own too.
	for who, want := range map[int]uint64{5: 2, 7: 3, 1: 4} {
		if got := expectedText(texts, spans, who); got != want {
			t.Errorf("user %d: expected %d texts, want %d", who, got, want)
		}
	}
}

func TestReconcile(t *testing.T) {
	for _, c := range []struct {
		a, b, slack float64
		ok          bool
	}{
		{1000, 1000, 0, true},
		{1000, 998, 2, true},   // a little lost in flight
		{1000, 997, 2, false},  // more than allowed
		{1000, 1001, 5, false}, // b may never exceed a
	} {
		if got := reconcile("x", "a", c.a, "b", c.b, c.slack); got.OK != c.ok {
			t.Errorf("reconcile(%v, %v, slack %v) = %+v", c.a, c.b, c.slack, got)
		}
	}
}

func TestSoakReportChecks(t *testing.T) {
	good := func() *SoakReport {
		return &SoakReport{Clients: 300, Speakers: 4, HavePID: true, HaveMetrics: true, HaveAdmin: true, ServerAlive: true,
			Connected: 301, ServerUsers: 301, Sent: 100000, Expected: 29000000, Received: 29000000, ReceivedAll: 29500000,
			TextsSent: 1800, TextsExpected: 500000, TextsReceived: 500000, ACLEdits: 180, ACLConfirmed: 180, Leaves: 3600,
			ServerVoiceIn: 100000, ServerVoiceOut: 29500100, Dials: 3905, ServerConnsTotal: 3905,
			ServerRSSMB:          Series{Samples: 348, Minutes: 29, SlopePer10m: 0.4},
			ServerGoroutines:     Series{Samples: 348, Minutes: 29, SlopePer10m: -1},
			IdleGoroutinesBefore: 12, IdleGoroutinesAfter: 13}
	}
	lim := DefaultSoak().Limits
	r := good()
	r.evaluate(lim)
	if r.Failed != 0 {
		t.Fatalf("a good soak failed:\n%s", text(r))
	}
	for name, spoil := range map[string]func(r *SoakReport){
		"voice loss":                     func(r *SoakReport) { r.Received = r.Expected - r.Expected/500 },
		"voice integrity":                func(r *SoakReport) { r.Misrouted = 1 },
		"text":                           func(r *SoakReport) { r.TextsReceived-- },
		"text ":                          func(r *SoakReport) { r.TextsReceived, r.ServerLimited = r.TextsReceived-2, 1 },
		"ACL edits":                      func(r *SoakReport) { r.ACLConfirmed-- },
		"server RSS trend":               func(r *SoakReport) { r.ServerRSSMB.SlopePer10m = 3 },
		"server goroutine trend":         func(r *SoakReport) { r.ServerGoroutines.SlopePer10m = 25 },
		"goroutines after everyone left": func(r *SoakReport) { r.IdleGoroutinesAfter = 300 },
		"server users":                   func(r *SoakReport) { r.ServerUsers = 300 },
		"server voice received":          func(r *SoakReport) { r.ServerVoiceIn = 100001 },
		"server voice received ":         func(r *SoakReport) { r.ServerVoiceIn, r.ServerDropped = 90000, map[string]float64{shedLabel: 9000} },
		"server voice forwarded":         func(r *SoakReport) { r.ServerVoiceOut = 29000000 },
		"server connections":             func(r *SoakReport) { r.ServerConnsTotal = 3904 },
		"errors":                         func(r *SoakReport) { r.Errors = map[string]*ErrorKind{"kicked": {Count: 1}} },
		"run":                            func(r *SoakReport) { r.ServerAlive = false },
	} {
		r := good()
		spoil(r)
		r.evaluate(lim)
		var failed []string
		for _, c := range r.Checks {
			if !c.OK && !c.Skipped {
				failed = append(failed, c.Name)
			}
		}
		if len(failed) != 1 || failed[0] != strings.TrimSpace(name) {
			t.Errorf("spoiling %q failed %v", name, failed)
		}
	}

	// Voice the server shed is loss, but its books still balance.
	r = good()
	r.ServerVoiceIn, r.ServerDropped, r.ServerSockDrops = 98000, map[string]float64{shedLabel: 1990}, 10
	r.evaluate(lim)
	if c := r.Checks[slices.IndexFunc(r.Checks, func(c Check) bool { return c.Name == "server voice received" })]; !c.OK {
		t.Errorf("shed voice unbalances the books: %+v", c)
	}

	// A busy machine is noted, and does not fail the soak by itself.
	r = good()
	r.OtherCores, r.GenMaxStallMs = Usage{Mean: 0.9, Max: 1.6}, 20
	r.evaluate(lim)
	if r.Failed != 0 || len(r.Notes) != 1 || !strings.Contains(text(r), "NOTE: other processes used up to 1.60 cores") {
		t.Errorf("busy machine: %d failed, notes %q", r.Failed, r.Notes)
	}

	// Without metrics, the server-side checks are skipped, not failed.
	r = good()
	r.HaveMetrics, r.IdleGoroutinesBefore, r.IdleGoroutinesAfter, r.ServerGoroutines = false, -1, -1, Series{}
	r.evaluate(lim)
	out := text(r)
	if r.Failed != 0 || !strings.Contains(out, "skip  server counters") || !strings.Contains(out, "result: PASS") {
		t.Errorf("without metrics:\n%s", out)
	}
	// A text the server's rate limit dropped (and counted) is no loss.
	r = good()
	r.TextsReceived, r.ServerLimited = r.TextsReceived-1, 3
	r.evaluate(lim)
	if r.Failed != 0 {
		t.Errorf("a text dropped by the counted rate limit failed the soak:\n%s", text(r))
	}
}

func text(r *SoakReport) string {
	var b strings.Builder
	r.WriteText(&b)
	return b.String()
}

func TestParseMetrics(t *testing.T) {
	in := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 917
process_resident_memory_bytes 3.4603008e+07
plenum_voice_packets_forwarded_total{transport="tcp"} 12
plenum_voice_packets_forwarded_total{transport="udp"} 1.2345e+06
plenum_odd{reason="a \"}\" b",x="y"} 2 1700000000000
plenum_voice_dropped_total{reason="silenced"} 3
plenum_voice_dropped_total{reason="socket_backlog"} 40
`
	m, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		metGoroutines: 917, metRSS: 34603008, metVoiceOut: 1234512, "plenum_odd": 2,
	} {
		if got, ok := m.get(name); !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, ok, want)
		}
	}
	if _, ok := m.get(metUsers); ok {
		t.Error("a missing series is present")
	}
	if got := m.labelled(metDropped); len(got) != 2 || got[`reason="silenced"`] != 3 || got[`reason="socket_backlog"`] != 40 {
		t.Errorf("drops by reason: %v", got)
	}
	for _, bad := range []string{"name_only\n", "x{a=\"1\" 2\n", "x notanumber\n"} {
		if _, err := parseMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestTextBody(t *testing.T) {
	who, at, ok := parseText(textBody(42, 1234567*time.Microsecond))
	if !ok || who != 42 || at != 1234567*time.Microsecond {
		t.Errorf("round trip: %d %v %v", who, at, ok)
	}
	for _, bad := range []string{"", "hello", "soak-text 1", "soak-text x 5", "soak-text 1 y"} {
		if _, _, ok := parseText(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

// soakConfig is the scripts/soak configuration in small: a hall and two
// rooms. The flood protection is opened wide: 8 users share 2 round trips
// to a room (two moves each), 2 texts and 2 rejoins a second, about one
// message per user a second, which is Murmur's default limit (bursts of
// 5). A burst over it had a move dropped, silently as Murmur does, and
// the soak reported a move that failed (1 run in many; with bursts of 2,
// every run).
const soakConfig = `
[server]
default_channel = "Hall"
message_limit = 1000
message_burst = 1000

[[channel]]
name = "Hall"

[[channel]]
name = "Room 1"

[[channel]]
name = "Room 2"
`

// TestSoakAgainstPlenum runs a 4-second soak with every activity at a
// high rate against an in-process server, and expects every check to
// pass (the trends are too short to judge and skipped).
func TestSoakAgainstPlenum(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server")
	}
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "plenum.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPassword(store.SuperUserID, "soak-secret"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// The server writes the admin's ACL edits back to the file.
	file := filepath.Join(dir, "soak.toml")
	if err := os.WriteFile(file, []byte(soakConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Config: cfg, Listen: "127.0.0.1:0", WebListen: server.NoWeb, AdminListen: server.NoAdmin, DataDir: dir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	o := DefaultSoak()
	o.Addr, o.N, o.K, o.Duration, o.ServerPID = srv.Addr().String(), 8, 2, 4*time.Second, os.Getpid()
	o.Rooms, o.AdminPassword = []string{"Room 1", "Room 2"}, "soak-secret"
	o.ChurnPerSec, o.MovesPerSec, o.TextsPerSec = 2, 2, 2
	o.AwayMin, o.AwayMax, o.StayMin, o.StayMax = 50*time.Millisecond, 200*time.Millisecond, 300*time.Millisecond, time.Second
	o.RotateEvery, o.ACLEvery, o.SampleEvery = time.Second, 1500*time.Millisecond, 500*time.Millisecond
	o.Guard, o.Drain = 100*time.Millisecond, 500*time.Millisecond
	r, err := RunSoak(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	out := text(r)
	t.Logf("\n%s", out)
	if r.Failed != 0 {
		t.Errorf("%d checks failed", r.Failed)
	}
	if sum(r.Rejoins) == 0 || r.Moves == 0 || r.TextsExpected == 0 || r.ACLEdits == 0 || r.Expected == 0 {
		t.Errorf("an activity did not happen: rejoins %v, moves %d, texts expected %d, ACL edits %d, voice expected %d",
			r.Rejoins, r.Moves, r.TextsExpected, r.ACLEdits, r.Expected)
	}
	if r.ServerRSSMB.Samples == 0 || r.Connected != o.N+1 {
		t.Errorf("RSS samples %d, connected %d", r.ServerRSSMB.Samples, r.Connected)
	}
}

func TestLossRuns(t *testing.T) {
	// 10 packets a second for 6 s; two listeners in the hall throughout,
	// a third from 2 s on. Seconds 2 and 3 lose 5 packets at one listener,
	// second 5 loses 1.
	var sent []time.Duration
	for i := range 60 {
		sent = append(sent, time.Duration(i)*100*time.Millisecond)
	}
	all := []span{{start: 0, end: 6 * time.Second}}
	windows := [][]span{all, all, {{start: 2 * time.Second, end: 6 * time.Second}}}
	recv := []uint64{20, 20, 25, 25, 30, 29, 0}
	runs := lossRuns(sent, windows, recv)
	want := []lossRun{{from: 2, to: 3, expected: 60, received: 50}, {from: 5, to: 5, expected: 30, received: 29}}
	if !slices.Equal(runs, want) {
		t.Errorf("runs %+v, want %+v", runs, want)
	}
	if runs := lossRuns(sent, windows, []uint64{20, 20, 30, 30, 30, 30, 0}); len(runs) != 0 {
		t.Errorf("no loss, runs %+v", runs)
	}
}

func TestParseProcStat(t *testing.T) {
	stat := "cpu  1000 10 500 90000 300 20 70 100 0 0\ncpu0 500 5 250 45000 150 10 35 50 0 0\n"
	d, err := parseProcStat([]byte(stat))
	if want := time.Duration(1000+10+500+20+70+100) * 10 * time.Millisecond; err != nil || d != want {
		t.Errorf("busy %v, %v; want %v", d, err, want)
	}
	if _, err := parseProcStat([]byte("intr 1 2 3\n")); err == nil {
		t.Error("accepted a file without a cpu line")
	}
	if d, err := machineBusy(); err != nil || d <= 0 {
		t.Errorf("machineBusy() = %v, %v", d, err)
	}
}

func TestCPUSplit(t *testing.T) {
	s := func(at, server, gen, busy float64) sample {
		sec := func(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }
		return sample{At: sec(at), ServerCPU: sec(server), GenCPU: sec(gen), MachineBusy: sec(busy)}
	}
	// Over 10 s: the server uses 0.5 and then 0.7 cores, the generator 0.3,
	// and something else 0.2 and then 1.0.
	server, gen, other := cpuSplit([]sample{s(0, 0, 0, 0), s(5, 2.5, 1.5, 5), s(10, 6, 3, 15)})
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if !near(server.Mean, 0.6) || !near(server.Max, 0.7) || !near(gen.Mean, 0.3) ||
		!near(other.Mean, 0.6) || !near(other.Max, 1.0) {
		t.Errorf("server %+v, generator %+v, other %+v", server, gen, other)
	}
	if server, _, _ := cpuSplit([]sample{s(0, -1, 0, 0), s(5, -1, 1, 5)}); server.Mean != -1 {
		t.Errorf("without the server's CPU: %+v", server)
	}
}
