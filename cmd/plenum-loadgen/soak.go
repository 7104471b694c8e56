package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/voice"
)

// The soak: N clients on one server for a long time, with everything a
// plenary does to it (people leaving and coming back, speakers taking
// turns, text, moving between rooms, an admin editing ACLs), to show that
// the server's memory and goroutines stay flat and that every packet,
// message and counter adds up.
//
// Accounting under churn works with windows of send time: a listener in
// the hall opens a window a guard after the server confirmed it is there,
// and closes it a guard before it leaves, so whatever was sent inside a
// window must have reached it, whatever the server's timing. Every packet
// and text carries its send time; a listener counts what falls in its
// window, and the expected count is what was sent in its windows.

// SoakOptions describe one soak.
type SoakOptions struct {
	Addr       string
	N, K       int           // clients, speaking slots
	Duration   time.Duration // activity time, warm-up included
	Warmup     time.Duration // excluded from the trends
	ServerPID  int
	MetricsURL string // the server's Prometheus endpoint, "" if none
	NamePrefix string
	Payload    int

	Hall, ACLChannel, ACLGroup string
	Rooms                      []string
	AdminUser, AdminPassword   string // no password: no ACL edits

	ChurnPerSec, MovesPerSec, TextsPerSec float64
	FreshShare, GhostShare                float64 // of the churn; the rest rejoins as the same user
	AwayMin, AwayMax                      time.Duration
	StayMin, StayMax                      time.Duration
	RotateEvery, ACLEvery, SampleEvery    time.Duration
	Guard, Drain                          time.Duration

	DialConcurrency int
	SyncTimeout     time.Duration
	Limits          Limits

	Logf func(format string, a ...any)
}

// Limits are the thresholds of the pass/fail checks.
type Limits struct {
	MaxLossPct        float64 // voice loss
	MaxRSSSlopeMB     float64 // server RSS trend, MB per 10 min
	MaxGoroutineSlope float64 // server goroutine trend, per 10 min
	IdleGoroutines    int     // goroutines the server may keep beyond its idle count once everyone left
}

// DefaultSoak is a 30-minute soak of 300 clients.
func DefaultSoak() SoakOptions {
	return SoakOptions{
		Addr: "127.0.0.1:64738", N: 300, K: 4, Duration: 30 * time.Minute, NamePrefix: "soak-",
		Payload: defaultPayload, Hall: "Hall", Rooms: []string{"Room 1", "Room 2", "Room 3", "Room 4"},
		ACLChannel: "Room 1", ACLGroup: "all", AdminUser: "SuperUser",
		ChurnPerSec: 2, MovesPerSec: 1, TextsPerSec: 1, FreshShare: 0.4, GhostShare: 0.1,
		AwayMin: 200 * time.Millisecond, AwayMax: 2 * time.Second,
		StayMin: 2 * time.Second, StayMax: 10 * time.Second,
		RotateEvery: 30 * time.Second, ACLEvery: 10 * time.Second, SampleEvery: 5 * time.Second,
		Guard: time.Second, Drain: 2 * time.Second,
		DialConcurrency: 32, SyncTimeout: 120 * time.Second,
		Limits: Limits{MaxLossPct: 0.1, MaxRSSSlopeMB: 2, MaxGoroutineSlope: 20, IdleGoroutines: 5},
	}
}

func (o *SoakOptions) validate() error {
	switch {
	case o.N < 2:
		return errors.New("soak needs at least two clients")
	case o.Duration <= 0:
		return errors.New("the soak needs a duration")
	case o.K < 0 || o.K >= o.N:
		return fmt.Errorf("speakers must be between 0 and %d", o.N-1)
	case o.Payload < payloadHeader || o.Payload > 1000:
		return fmt.Errorf("payload must be %d..1000 bytes", payloadHeader)
	case len(o.Rooms) == 0 && o.MovesPerSec > 0:
		return errors.New("moves need at least one room")
	case o.AwayMax < o.AwayMin || o.StayMax < o.StayMin || o.AwayMin < 0 || o.StayMin < 0:
		return errors.New("away and stay ranges must be min <= max")
	case o.FreshShare+o.GhostShare > 1:
		return errors.New("fresh and ghost shares add up to more than 1")
	case o.RotateEvery <= 0 || o.SampleEvery <= 0 || o.ACLEvery <= 0 || o.Guard <= 0:
		return errors.New("intervals must be positive")
	}
	if o.Warmup == 0 {
		o.Warmup = min(time.Minute, o.Duration/4)
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return nil
}

// soak is the state of one run.
type soak struct {
	opt   SoakOptions
	start time.Time // the clock of send times

	users []*soakUser
	admin *soakAdmin
	mu    sync.Mutex // users' states

	activeAt         time.Duration // when the activities began
	hall, aclChannel uint32
	rooms            []uint32

	// life ends on an interrupt or when the server is gone: everything
	// stops. (The activities' own deadline only ends new activity.)
	life  context.Context
	abort context.CancelCauseFunc

	recvBySec            []atomic.Uint64 // voice received in windows, by second of send time
	latency, textLatency *Hist
	ping                 *Hist        // the admin's TCP pings
	maxTickGap           atomic.Int64 // the speaker loop's longest wait for its 1 ms tick: the generator's stalls

	incMu     sync.Mutex
	incidents []string // the first few oddities, with their timing

	// Owned by the speaker loop until it returns.
	sent             []time.Duration // send time of every packet, in order
	sendErrors, late uint64
	sentCount        atomic.Uint64 // len(sent), for progress messages

	textMu sync.Mutex
	texts  []textSent

	dials, tcpRefused, retries, leaves, moves, skipped atomic.Uint64
	aclEdits, aclConfirmed                             atomic.Uint64

	countMu sync.Mutex
	rejoins map[string]uint64
	errs    map[string]*ErrorKind

	samples []sample // owned by the sampler until it returns
}

// ErrorKind counts one kind of error and keeps its first message.
type ErrorKind struct {
	Count uint64 `json:"count"`
	First string `json:"first"`
}

func (g *soak) now() time.Duration { return time.Since(g.start) }

// errorf records an error of a kind; errors fail the soak.
func (g *soak) errorf(kind, format string, a ...any) {
	g.countMu.Lock()
	defer g.countMu.Unlock()
	e := g.errs[kind]
	if e == nil {
		e = &ErrorKind{First: fmt.Sprintf(format, a...)}
		g.errs[kind] = e
		g.opt.Logf("error %s: %s", kind, e.First)
	}
	e.Count++
}

// incident keeps the first few descriptions of oddities (which also count
// elsewhere), for the report.
func (g *soak) incident(format string, a ...any) {
	g.incMu.Lock()
	defer g.incMu.Unlock()
	if len(g.incidents) < 12 {
		g.incidents = append(g.incidents, fmt.Sprintf("%.3f s: ", g.now().Seconds())+fmt.Sprintf(format, a...))
	}
}

func (g *soak) countRejoin(kind string) {
	g.countMu.Lock()
	g.rejoins[kind]++
	g.countMu.Unlock()
}

// countDial counts a login attempt; one that never reached the server is
// not a connection the server can count.
func (g *soak) countDial(err error) {
	g.dials.Add(1)
	if err != nil && isTCPRefusal(err) {
		g.tcpRefused.Add(1)
	}
}

// RunSoak performs one soak and returns its report; err is for runs that
// could not start (no server, login refused). Every client it connects is
// closed before it returns.
func RunSoak(ctx context.Context, opt SoakOptions) (*SoakReport, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	life, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	g := &soak{opt: opt, start: time.Now(), life: life, abort: abort,
		latency: NewHist(10*time.Microsecond, 10*time.Second), textLatency: NewHist(100*time.Microsecond, 30*time.Second),
		ping:    NewHist(100*time.Microsecond, 30*time.Second),
		rejoins: map[string]uint64{}, errs: map[string]*ErrorKind{},
		recvBySec: make([]atomic.Uint64, int((opt.SyncTimeout+opt.Duration)/time.Second)+60)}
	r := &SoakReport{Addr: opt.Addr, Clients: opt.N, Speakers: opt.K, Planned: opt.Duration, Warmup: opt.Warmup,
		HavePID: opt.ServerPID > 0, HaveMetrics: opt.MetricsURL != "", HaveAdmin: opt.AdminPassword != "", ACLChannel: opt.ACLChannel, ACLGroup: opt.ACLGroup}
	pid := ""
	if opt.ServerPID > 0 {
		pid = strconv.Itoa(opt.ServerPID)
	}
	sc := newScraper(opt.MetricsURL)

	// The server before anyone connects: its idle goroutines and counters.
	idle, m0, err := observe(ctx, pid, sc, 0)
	if err != nil {
		return nil, fmt.Errorf("before the soak: %w", err)
	}
	r.IdleGoroutinesBefore = idle.Goroutines
	defer g.closeAll()
	if err := g.connect(ctx, r); err != nil {
		return nil, err
	}
	_, m1, _ := observe(ctx, pid, sc, 0)
	srvDrops0, _ := udpDrops(g.port())

	g.activities(ctx, pid, sc)
	r.Interrupted = ctx.Err() != nil
	if cause := context.Cause(life); cause != nil && !errors.Is(cause, context.Canceled) {
		r.Aborted = cause.Error()
	}
	g.settle()
	end, m2, err := observe(context.WithoutCancel(ctx), pid, sc, g.now())
	if err != nil {
		g.errorf("final_sample", "%v", err)
	}
	r.ServerAlive = pid == "" || end.Threads >= 0
	r.Connected = g.connected()
	r.ServerUsers = end.Users
	r.serverCounters(m0, m1, m2)
	srvDrops1, genDrops1 := udpDrops(g.port())
	// The clients' sockets carried no voice before the activities; closed
	// ones took their counts along.
	r.ServerSockDrops, r.GenSockDrops = srvDrops1-srvDrops0, genDrops1

	// Everyone leaves; the server must get back to its idle goroutines.
	g.closeAll()
	r.IdleGoroutinesAfter = g.idleAfter(context.WithoutCancel(ctx), pid, sc)
	sc.close()

	g.fill(r)
	r.evaluate(opt.Limits)
	return r, nil
}

// port is the server's port, which its UDP socket and the clients' share.
func (g *soak) port() int {
	_, p, _ := net.SplitHostPort(g.opt.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// connect logs the admin and the N users in, waits until everyone knows
// everyone and has UDP, and opens the users' windows.
func (g *soak) connect(ctx context.Context, r *SoakReport) error {
	o := g.opt
	t0 := time.Now()
	users := 0
	if o.AdminPassword != "" {
		a, err := g.dialAdmin(ctx)
		if err != nil {
			return err
		}
		g.admin = a
		users++
	}
	g.users = make([]*soakUser, o.N)
	for i := range g.users {
		cert, err := newCert()
		if err != nil {
			return err
		}
		g.users[i] = &soakUser{g: g, idx: i, name: fmt.Sprintf("%s%04d", o.NamePrefix, i), cert: cert,
			lastSeq: make([]atomic.Uint64, o.N), state: stBusy}
	}
	users += o.N
	o.Logf("soak: connecting %d clients to %s", o.N, o.Addr)
	if err := g.dialAll(ctx); err != nil {
		return err
	}
	if err := g.resolveChannels(); err != nil {
		return err
	}
	if err := g.waitSynced(ctx, users); err != nil {
		return err
	}
	r.SyncSec = time.Since(t0).Seconds()
	c := g.users[0].c
	r.ServerVersion = control.VersionString(c.ServerVersion())
	r.VoiceFormat = map[voice.Format]string{voice.Legacy: "legacy", voice.Protobuf: "protobuf"}[c.VoiceFormat()]
	for _, u := range g.users {
		u.arrive(u.c, "join")
		u.state = stIdle
	}
	o.Logf("soak: %d clients in the hall after %.1f s", o.N, r.SyncSec)
	return nil
}

// dialAll logs every user in, DialConcurrency at a time.
func (g *soak) dialAll(ctx context.Context) error {
	sem := make(chan struct{}, max(1, g.opt.DialConcurrency))
	errs := make(chan error, len(g.users))
	var wg sync.WaitGroup
	for _, u := range g.users {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := u.dial(ctx)
			u.c = c
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

// resolveChannels finds the soak's channels by name.
func (g *soak) resolveChannels() error {
	ids := map[string][]uint32{}
	for id, ch := range g.users[0].c.Channels() {
		ids[ch.GetName()] = append(ids[ch.GetName()], id)
	}
	find := func(name string) (uint32, error) {
		switch found := ids[name]; len(found) {
		case 0:
			return 0, fmt.Errorf("no channel named %q on the server", name)
		case 1:
			return found[0], nil
		}
		return 0, fmt.Errorf("more than one channel named %q", name)
	}
	var err error
	if g.hall, err = find(g.opt.Hall); err != nil {
		return err
	}
	for _, name := range g.opt.Rooms {
		id, err := find(name)
		if err != nil {
			return err
		}
		if id == g.hall {
			return fmt.Errorf("room %q is the hall", name)
		}
		g.rooms = append(g.rooms, id)
	}
	if g.admin != nil {
		if g.aclChannel, err = find(g.opt.ACLChannel); err != nil {
			return err
		}
	}
	return nil
}

// waitSynced waits until every user knows n users.
func (g *soak) waitSynced(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, g.opt.SyncTimeout)
	defer cancel()
	for _, u := range g.users {
		if err := u.c.Wait(ctx, func(c *client.Client) bool { return c.NumUsers() == n }); err != nil {
			return fmt.Errorf("%s knows %d of %d users: %w", u.name, u.c.NumUsers(), n, err)
		}
	}
	return nil
}

// activities runs speech, churn, moves, text, ACL edits and sampling for
// the duration (or until the run is aborted), then waits for all of them.
func (g *soak) activities(ctx context.Context, pid string, sc *scraper) {
	o := g.opt
	g.activeAt = g.now()
	actx, stop := context.WithTimeout(g.life, o.Duration)
	defer stop()
	o.Logf("soak: %v of activity (%d speakers, churn %.1f/s, moves %.1f/s, text %.1f/s)",
		o.Duration, o.K, o.ChurnPerSec, o.MovesPerSec, o.TextsPerSec)
	var wg sync.WaitGroup
	if o.K > 0 {
		wg.Go(func() { g.speak(actx) })
	}
	wg.Go(func() { g.direct(actx) })
	if g.admin != nil {
		wg.Go(func() { g.admin.editACLs(actx) })
		wg.Go(func() { g.admin.watchPing(actx) })
	}
	wg.Go(func() { g.sample(actx, pid, sc) })
	wg.Wait()
}

// sample observes the server every SampleEvery until ctx ends; a server
// process that is gone aborts the soak.
func (g *soak) sample(ctx context.Context, pid string, sc *scraper) {
	t := time.NewTicker(g.opt.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		smp, _, err := observe(ctx, pid, sc, g.now()-g.activeAt)
		if ctx.Err() != nil {
			return // the scrape may have been cut short
		}
		if err != nil {
			g.errorf("sample", "%v", err)
		}
		if pid != "" && smp.Threads < 0 {
			g.abort(errors.New("the server process is gone"))
			return
		}
		g.samples = append(g.samples, smp)
		if len(g.samples)%12 == 0 {
			g.opt.Logf("soak: %v: server RSS %d kB, %d threads, %d goroutines, %d users; %d packets sent",
				smp.At.Round(time.Second), smp.RSSKB, smp.Threads, smp.Goroutines, smp.Users, g.sentCount.Load())
		}
	}
}

// settle waits for the last packets, retires users whose connection died
// and closes every window: the accounting is complete.
func (g *soak) settle() {
	time.Sleep(g.opt.Drain)
	g.reapDead()
	now := g.now()
	for _, u := range g.users {
		u.closeWindow(now, "end")
	}
}

// connected counts the clients the server should have now.
func (g *soak) connected() int {
	n := 0
	for _, u := range g.users {
		if u.alive() {
			n++
		}
	}
	if g.admin != nil && g.admin.c != nil {
		select {
		case <-g.admin.c.Done():
			g.errorf("admin_disconnected", "%v", g.admin.c.Err())
		default:
			n++
		}
	}
	return n
}

// closeAll closes every client concurrently.
func (g *soak) closeAll() {
	var wg sync.WaitGroup
	for _, u := range g.users {
		if u != nil && u.c != nil {
			wg.Go(func() { u.c.Close() })
		}
	}
	if g.admin != nil {
		wg.Go(func() { g.admin.c.Close() })
	}
	wg.Wait()
}

// idleAfter waits (up to 10 s) for the server to report no users and then
// returns its goroutine count, or -1 without metrics.
func (g *soak) idleAfter(ctx context.Context, pid string, sc *scraper) int64 {
	if sc == nil {
		return -1
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		smp, _, err := observe(ctx, pid, sc, g.now())
		if err == nil && smp.Users == 0 || time.Now().After(deadline) {
			// The last connections' goroutines may need a moment more.
			time.Sleep(500 * time.Millisecond)
			smp, _, _ = observe(ctx, pid, sc, g.now())
			return smp.Goroutines
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fill copies the run's counts into the report.
func (g *soak) fill(r *SoakReport) {
	r.Elapsed = g.now()
	r.Joins = uint64(g.opt.N)
	r.Rejoins = g.rejoins
	r.Leaves = g.leaves.Load()
	r.Dials, r.DialRetries, r.SkippedActions = g.dials.Load(), g.retries.Load(), g.skipped.Load()
	r.Moves = g.moves.Load()
	r.ACLEdits, r.ACLConfirmed = g.aclEdits.Load(), g.aclConfirmed.Load()
	r.Errors = g.errs
	r.Sent, r.SendErrors, r.LateSends = uint64(len(g.sent)), g.sendErrors, g.late
	sort.Slice(g.texts, func(i, j int) bool { return g.texts[i].at < g.texts[j].at })
	r.TextsSent = uint64(len(g.texts))
	for _, u := range g.users {
		r.Expected += expectedVoice(g.sent, u.spans)
		r.Received += u.received.Load()
		r.Outside += u.outside.Load()
		r.Misrouted += u.misrouted.Load()
		r.Duplicates += u.dup.Load()
		r.Bad += u.bad.Load()
		r.ReceivedAll += u.all.Load()
		r.TextsExpected += expectedText(g.texts, u.spans, u.idx)
		r.TextsReceived += u.textIn.Load()
		r.TextsOutside += u.textOutside.Load()
		r.TextsMisrouted += u.textMisrouted.Load()
	}
	r.Shortfalls = g.shortfalls(8)
	r.LossRuns = g.lossRuns(5)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs = ms(g.latency.Quantile(0.5)), ms(g.latency.Quantile(0.99)), ms(g.latency.Max())
	r.TextLatencyP99Ms, r.TextLatencyMaxMs = ms(g.textLatency.Quantile(0.99)), ms(g.textLatency.Max())
	r.GenMaxStallMs = ms(time.Duration(g.maxTickGap.Load()))
	r.PingP99Ms, r.PingMaxMs = ms(g.ping.Quantile(0.99)), ms(g.ping.Max())
	r.Incidents = g.incidents
	r.Samples = g.samples
	r.summariseSamples()
}

// shortfalls describes the hall windows that received least of what they
// should have, at most n of them, worst first: where loss happened.
func (g *soak) shortfalls(n int) []string {
	type short struct {
		who          string
		idx          int
		s            span
		voice, text  uint64 // expected
		missing, got uint64
	}
	var all []short
	for _, u := range g.users {
		for _, s := range u.spans {
			ev, et := uint64(countIn(g.sent, s)), expectedText(g.texts, []span{s}, u.idx)
			gv, gt := s.tally.voice.Load(), s.tally.text.Load()
			if gv < ev || gt < et {
				all = append(all, short{who: u.name, idx: u.idx, s: s, voice: ev, text: et, missing: ev - min(gv, ev) + et - min(gt, et)})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].missing > all[j].missing })
	var out []string
	for _, x := range all[:min(n, len(all))] {
		out = append(out, fmt.Sprintf("user %d (%s) in the hall %.2f–%.2f s (%s → %s): voice %d of %d, text %d of %d",
			x.idx, x.who, x.s.start.Seconds(), x.s.end.Seconds(), x.s.tally.opened, x.s.tally.closed,
			x.s.tally.voice.Load(), x.voice, x.s.tally.text.Load(), x.text))
	}
	if len(all) > n {
		out = append(out, fmt.Sprintf("... and %d more windows", len(all)-n))
	}
	return out
}

// lossRuns describes when voice went missing, at most n stretches, worst
// first.
func (g *soak) lossRuns(n int) []string {
	recv := make([]uint64, len(g.recvBySec))
	for i := range recv {
		recv[i] = g.recvBySec[i].Load()
	}
	windows := make([][]span, len(g.users))
	for i, u := range g.users {
		windows[i] = u.spans
	}
	active := g.activeAt.Seconds()
	var out []string
	runs := lossRuns(g.sent, windows, recv)
	for _, run := range runs[:min(n, len(runs))] {
		out = append(out, fmt.Sprintf("sent %.0f–%.0f s into the activities: %d of %d lost",
			float64(run.from)-active, float64(run.to+1)-active, run.expected-run.received, run.expected))
	}
	if len(runs) > n {
		out = append(out, fmt.Sprintf("... and %d more stretches", len(runs)-n))
	}
	return out
}

// summariseSamples turns the samples after the warm-up into series.
func (r *SoakReport) summariseSamples() {
	var ts []time.Duration
	var rss, threads, gor, genGor, genRSS []float64
	for _, s := range r.Samples {
		if s.At < r.Warmup {
			continue
		}
		ts = append(ts, s.At)
		rss = append(rss, float64(s.RSSKB)/1024)
		threads = append(threads, float64(s.Threads))
		gor = append(gor, float64(s.Goroutines))
		genGor = append(genGor, float64(s.GenGoroutines))
		genRSS = append(genRSS, float64(s.GenRSSKB)/1024)
	}
	measured := func(vs []float64) bool { return len(vs) > 0 && slices.Min(vs) >= 0 }
	if measured(rss) {
		r.ServerRSSMB = summarise(ts, rss)
	}
	if measured(threads) {
		r.ServerThreads = summarise(ts, threads)
	}
	if measured(gor) {
		r.ServerGoroutines = summarise(ts, gor)
	}
	r.GenGoroutines = summarise(ts, genGor)
	r.GenRSSMB = summarise(ts, genRSS)
	r.ServerCores, r.GenCores, r.OtherCores = cpuSplit(r.Samples)
}

// cpuSplit is how many cores the server, the generator and everything
// else on the machine used between samples: mean and maximum. Other
// processes competing for the cores explain stalls the server is not to
// blame for.
func cpuSplit(samples []sample) (server, gen, other Usage) {
	var n float64
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		dt := (b.At - a.At).Seconds()
		if dt <= 0 || a.ServerCPU < 0 || a.MachineBusy < 0 || b.ServerCPU < 0 || b.MachineBusy < 0 {
			continue
		}
		s, g := (b.ServerCPU-a.ServerCPU).Seconds()/dt, (b.GenCPU-a.GenCPU).Seconds()/dt
		o := max(0, (b.MachineBusy-a.MachineBusy).Seconds()/dt-s-g)
		server.add(s)
		gen.add(g)
		other.add(o)
		n++
	}
	server.finish(n)
	gen.finish(n)
	other.finish(n)
	return server, gen, other
}
