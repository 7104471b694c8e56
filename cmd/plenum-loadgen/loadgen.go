package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/voice"
)

// Options describe one run.
type Options struct {
	// Addr is the server's host:port, or several separated by commas (the
	// nodes of a cluster): client i logs in to the (i mod count)th, so
	// the first K, the speakers, are spread over the nodes too.
	Addr      string
	N, K      int
	Duration  time.Duration // speaking time
	Mode      string        // "udp", "tunnel" or "storm"
	ServerPID int           // 0: no server statistics
	// OtherPIDs are a cluster's other nodes: the report's server CPU and
	// memory are the sums over ServerPID and these.
	OtherPIDs  []int
	MetricsURL string // Plenum's /metrics, for the time voice spends in the server; "" for none
	NamePrefix string
	Payload    int // bytes of "Opus" per packet
	// Opus sends real Opus (opuspayload.go), for a server that decodes
	// speech. Loudest says the channel forwards only the N loudest
	// (max_speakers = N): each listener is expected to hear N streams, not
	// all K. Mixed says it mixes: each client is expected to receive one
	// mixed packet per 20 ms from a sender that is none of the speakers.
	Opus    bool
	Loudest int
	Mixed   bool

	// -mode web (web.go): N browsers at WebURL and Mumble Mumble clients;
	// WebSpeakers of the K speakers are browsers, the rest Mumble clients;
	// Timed browsers decode their track and time the bursts' onsets.
	WebURL      string
	Mumble      int
	WebSpeakers int
	Timed       int

	DialConcurrency int           // simultaneous logins while connecting
	StormWindow     time.Duration // rejoins are spread over this window
	Drain           time.Duration // wait after the last packet before counting
	PingEvery       time.Duration // TCP ping sampling interval per client
	SyncTimeout     time.Duration

	Logf func(format string, a ...any)
}

func (o *Options) defaults() {
	if o.Mode == "" {
		o.Mode = "udp"
	}
	if o.Payload == 0 {
		o.Payload = defaultPayload
	}
	if o.DialConcurrency == 0 {
		o.DialConcurrency = 32
	}
	if o.StormWindow == 0 {
		o.StormWindow = 3 * time.Second
	}
	if o.Drain == 0 {
		o.Drain = 2 * time.Second
	}
	if o.PingEvery == 0 {
		o.PingEvery = time.Second
	}
	if o.SyncTimeout == 0 {
		o.SyncTimeout = 120 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

const (
	frameInterval = 20 * time.Millisecond
	lateAfter     = 5 * time.Millisecond
	pingTimeout   = 5 * time.Second
)

// frameNumber is the Mumble frame number of a speaker's seq-th packet:
// clients count 10 ms units, so a 20 ms packet advances it by two. Mumble
// 1.5's jitter buffer plays packets numbered one apart choppily and 20 dB
// quieter (1.3 does not mind), so the generator numbers them as a real
// client does.
func frameNumber(seq uint64) uint64 { return 2 * seq }

// gen is the state of one run shared by all simulated users.
type gen struct {
	opt   Options
	start time.Time // the shared clock: payload send times are relative to it

	// speakerSession[i] is speaker i's session, set before anyone speaks;
	// listeners check a packet's sender against it.
	speakerSession []uint32

	loops [][][]byte // with Opus: each speaker's padded frames

	latency *Hist // added one-way latency, 10 µs buckets up to 10 s (8 MB)
	ping    *Hist // TCP ping round trips, 100 µs buckets up to 10 s

	pingFail atomic.Uint64
}

// user is one simulated client. Its counters are written only by its own
// receive goroutines (UDP and TCP), so they rarely share a cache line with
// another user's.
type user struct {
	g    *gen
	name string
	addr string // the server (or the cluster's node) it logs in to
	c    *client.Client

	received   atomic.Uint64
	viaTCP     atomic.Uint64
	bad        atomic.Uint64
	outOfOrder atomic.Uint64
	cut        atomic.Uint64   // terminators of streams a loudest-N channel cut off
	mixed      atomic.Uint64   // packets of a mixed stream (sender not a speaker)
	mixedGaps  atomic.Uint64   // frames missing between consecutive mixed packets
	mixedLast  atomic.Uint64   // frame number of the last mixed packet + 1
	lastSeq    []atomic.Uint64 // per speaker: last sequence + 1 (0: none yet)
	_          [64]byte
}

// onAudio is every listener's receive callback: O(1), no allocation.
func (u *user) onAudio(p *client.AudioPacket) {
	g := u.g
	payload := p.Opus
	if g.loops != nil {
		payload = opusTrailer(p.Opus)
		switch {
		case payload == nil && g.opt.Mixed && !g.isSpeaker(p.Sender):
			u.onMixed(p)
			return
		case payload == nil && g.opt.Loudest > 0 && p.Terminator && g.isSpeaker(p.Sender):
			u.cut.Add(1) // the server's end of a stream it stopped forwarding
			return
		}
	}
	idx, seq, sent, ok := decodePayload(payload)
	if !ok || int(idx) >= len(g.speakerSession) || g.speakerSession[idx] != p.Sender || p.Frame != frameNumber(seq) {
		u.bad.Add(1)
		return
	}
	g.latency.Add(p.Received.Sub(g.start) - sent)
	u.received.Add(1)
	if !p.ViaUDP {
		u.viaTCP.Add(1)
	}
	last := &u.lastSeq[idx]
	if prev := last.Load(); seq+1 <= prev {
		u.outOfOrder.Add(1)
	} else {
		last.Store(seq + 1)
	}
}

func (g *gen) isSpeaker(session uint32) bool {
	for _, s := range g.speakerSession {
		if s == session {
			return true
		}
	}
	return false
}

// onMixed counts a packet of a mixed stream: they carry no send time (the
// server encoded them), so only their number and the gaps in their frame
// numbers (10 ms units, 2 a packet) are checked.
func (u *user) onMixed(p *client.AudioPacket) {
	u.mixed.Add(1)
	if last := u.mixedLast.Load(); last > 0 && p.Frame > last+1 {
		u.mixedGaps.Add((p.Frame - last - 1) / 2)
	}
	u.mixedLast.Store(p.Frame + 1)
}

func (g *gen) config(u *user) client.Config {
	return client.Config{
		Address:     u.addr,
		Username:    u.name,
		DisableUDP:  g.opt.Mode == "tunnel",
		OnAudio:     u.onAudio,
		BorrowAudio: true,
	}
}

// dial logs u in, retrying for a while: during a storm the server may
// still hold the old session of the same name.
func (g *gen) dial(ctx context.Context, u *user, retries *atomic.Uint64) error {
	var err error
	for attempt := 0; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		u.c, err = client.Dial(dctx, g.config(u))
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || attempt >= 20 {
			return fmt.Errorf("%s: %w", u.name, err)
		}
		if retries != nil {
			retries.Add(1)
		}
		select {
		case <-time.After(time.Duration(100+rand.IntN(200)) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// connectAll logs every user in, at most DialConcurrency at a time.
func (g *gen) connectAll(ctx context.Context, users []*user) error {
	sem := make(chan struct{}, g.opt.DialConcurrency)
	errs := make(chan error, len(users))
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- g.dial(ctx, u, nil)
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(errs chan error) []error {
	var out []error
	for err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// waitSynced waits until every user has ServerSync (Dial saw to that) and
// knows exactly n users.
func (g *gen) waitSynced(ctx context.Context, users []*user, n int) error {
	ctx, cancel := context.WithTimeout(ctx, g.opt.SyncTimeout)
	defer cancel()
	if g.opt.Mixed {
		n++ // the channel's virtual user, whose voice is the mix
	}
	for _, u := range users {
		err := u.c.Wait(ctx, func(c *client.Client) bool { return c.NumUsers() == n })
		if err != nil {
			return fmt.Errorf("%s knows %d of %d users: %w", u.name, u.c.NumUsers(), n, err)
		}
	}
	return nil
}

func closeAll(users []*user) {
	var wg sync.WaitGroup
	for _, u := range users {
		if u.c != nil {
			wg.Go(func() { u.c.Close() })
		}
	}
	wg.Wait()
}

// Run performs one run and returns its report. Every client it connects is
// closed before it returns.
func Run(ctx context.Context, opt Options) (*Report, error) {
	opt.defaults()
	switch {
	case opt.N < 1:
		return nil, errors.New("need at least one client")
	case opt.Mode != "storm" && (opt.K < 1 || opt.K > opt.N):
		return nil, fmt.Errorf("speakers must be between 1 and %d", opt.N)
	case opt.Mode != "udp" && opt.Mode != "tunnel" && opt.Mode != "storm":
		return nil, fmt.Errorf("unknown mode %q", opt.Mode)
	case opt.Payload < payloadHeader || opt.Payload > 1000:
		return nil, fmt.Errorf("payload must be %d..1000 bytes", payloadHeader)
	case (opt.Loudest > 0 || opt.Mixed) && !opt.Opus:
		return nil, errors.New("a shaped channel (-loudest, -mixed) decodes speech: it needs -opus")
	}
	addrs := strings.Split(opt.Addr, ",")
	var ports []int
	for _, a := range addrs {
		_, portStr, err := net.SplitHostPort(a)
		if err != nil {
			return nil, err
		}
		port, _ := strconv.Atoi(portStr)
		ports = append(ports, port)
	}
	if opt.Mode == "storm" {
		opt.K = 0
	}
	g := &gen{
		opt:            opt,
		start:          time.Now(),
		speakerSession: make([]uint32, opt.K),
		latency:        NewHist(10*time.Microsecond, 10*time.Second),
		ping:           NewHist(100*time.Microsecond, 10*time.Second),
	}
	if opt.Opus {
		var err error
		if g.loops, err = opusLoops(opt.K, opt.Payload); err != nil {
			return nil, err
		}
	}
	var server procs
	if opt.ServerPID > 0 {
		server = procsOf(append([]int{opt.ServerPID}, opt.OtherPIDs...))
	}
	r := &Report{Mode: opt.Mode, Clients: opt.N, Speakers: opt.K, ServerCPUSec: -1, ServerCPUUsPkt: -1,
		ServerDelayP50Ms: -1, ServerDelayP99Ms: -1}

	users := make([]*user, opt.N)
	for i := range users {
		users[i] = &user{g: g, name: fmt.Sprintf("%s%04d", opt.NamePrefix, i), addr: addrs[i%len(addrs)],
			lastSeq: make([]atomic.Uint64, opt.K)}
	}
	defer func() { closeAll(users) }()

	opt.Logf("connecting %d clients to %s (%s)", opt.N, opt.Addr, opt.Mode)
	t0 := time.Now()
	if err := g.connectAll(ctx, users); err != nil {
		return nil, err
	}
	if err := g.waitSynced(ctx, users, opt.N); err != nil {
		return nil, err
	}
	r.SyncSec = time.Since(t0).Seconds()
	r.ServerVersion = control.VersionString(users[0].c.ServerVersion())
	r.VoiceFormat = map[voice.Format]string{voice.Legacy: "legacy", voice.Protobuf: "protobuf"}[users[0].c.VoiceFormat()]
	opt.Logf("all %d clients synced after %.2f s", opt.N, r.SyncSec)

	if opt.Mode == "udp" {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		for _, u := range users {
			if u.c.WaitUDP(wctx) != nil {
				r.NotUDP++
			}
		}
		cancel()
	}

	cpu0, _ := server.cpu()
	_, sys0, _ := server.cpuTimes()
	delay0 := g.serverDelay(ctx, opt.MetricsURL)
	self0 := selfCPU()
	srvDrops0, cliDrops0 := udpDrops(ports...)
	w0 := time.Now()

	if opt.Mode == "storm" {
		if err := g.storm(ctx, users, r); err != nil {
			return nil, err
		}
	} else {
		for i := range g.speakerSession {
			g.speakerSession[i] = users[i].c.Session()
		}
		pctx, stopPing := context.WithCancel(ctx)
		var pwg sync.WaitGroup
		for _, u := range users {
			pwg.Go(func() { g.pinger(pctx, u.c) })
		}
		opt.Logf("%d speakers talking for %v", opt.K, opt.Duration)
		sent, errs, late := g.speak(ctx, users[:opt.K])
		time.Sleep(opt.Drain)
		stopPing()
		pwg.Wait()
		r.Seconds = opt.Duration.Seconds()
		r.Sent, r.SendErrors, r.LateSends = sent, errs, late
		r.Expected = sent * uint64(opt.N-1)
		for _, u := range users {
			r.Received += u.received.Load()
			r.ViaTCP += u.viaTCP.Load()
			r.Bad += u.bad.Load()
			r.OutOfOrder += u.outOfOrder.Load()
			r.Mixed += u.mixed.Load()
			r.MixedGaps += u.mixedGaps.Load()
			r.Cut += u.cut.Load()
			if u.mixed.Load() == 0 {
				r.MixedMissing++
			}
		}
		g.shapedExpectations(r)
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		r.LatencyP50Ms = ms(g.latency.Quantile(0.50))
		r.LatencyP99Ms = ms(g.latency.Quantile(0.99))
		r.LatencyMaxMs = ms(g.latency.Max())
	}
	window := time.Since(w0)
	for _, u := range users {
		r.ClientDecryptFailures += u.c.DecryptFailures()
		r.ClientCryptLost += uint64(u.c.CryptStats().Lost)
	}
	srvDrops1, cliDrops1 := udpDrops(ports...)
	r.ServerSockDrops, r.ClientSockDrops = srvDrops1-srvDrops0, cliDrops1-cliDrops0
	if cpu1, err := server.cpu(); err == nil && cpu0 >= 0 {
		r.ServerCPUSec = (cpu1 - cpu0).Seconds()
		if _, sys1, err := server.cpuTimes(); err == nil {
			r.ServerSysCPUSec = (sys1 - sys0).Seconds()
		}
	}
	if server != nil {
		r.ServerPeakRSSKB, r.ServerRSSKB, _ = server.mem()
	}
	if delay1 := g.serverDelay(ctx, opt.MetricsURL); delay1 != nil {
		r.ServerDelayP50Ms = 1000 * bucketQuantile(delay0, delay1, 0.50)
		r.ServerDelayP99Ms = 1000 * bucketQuantile(delay0, delay1, 0.99)
	}
	r.GenCPUSec = (selfCPU() - self0).Seconds()
	r.GenCPUPct = 100 * r.GenCPUSec / window.Seconds()
	r.GenGOMAXPROCS = gomaxprocs()
	r.PingSamples = g.ping.Count()
	r.PingFailures = g.pingFail.Load()
	r.PingP50Ms = float64(g.ping.Quantile(0.50)) / 1e6
	r.PingP99Ms = float64(g.ping.Quantile(0.99)) / 1e6
	r.finish()
	return r, nil
}

// pinger samples c's TCP ping every PingEvery, starting at a random
// offset so that the clients' pings spread out. A ping that fails or
// times out counts as pingTimeout.
func (g *gen) pinger(ctx context.Context, c *client.Client) {
	t := time.NewTimer(rand.N(g.opt.PingEvery))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		d, err := c.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			g.pingFail.Add(1)
			d = pingTimeout
		}
		g.ping.Add(d)
		t.Reset(g.opt.PingEvery)
	}
}

// pace calls send(i, seq, ts) for the seq-th packet of each of k
// speakers, every frameInterval for d from 10 ms after now (ts and the
// slots are relative to start), all from one goroutine and one 1 ms
// ticker: each speaker has its own slot phase, spread evenly over the
// frame as independent talkers would be, and every tick sends whatever is
// due. It returns how many sends came more than lateAfter after their
// slot. Nothing here allocates per packet.
func pace(ctx context.Context, start time.Time, d time.Duration, k int, send func(i int, seq uint64, ts time.Duration)) (late uint64) {
	type slot struct {
		seq uint64
		due time.Duration // relative to start
	}
	base := time.Since(start) + 10*time.Millisecond
	end := base + d
	slots := make([]slot, k)
	for i := range slots {
		slots[i].due = base + time.Duration(i)*frameInterval/time.Duration(k)
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Since(start)
		if now >= end {
			return
		}
		for i := range slots {
			s := &slots[i]
			for s.due <= now && s.due < end {
				ts := time.Since(start)
				if ts-s.due > lateAfter {
					late++
				}
				send(i, s.seq, ts)
				s.seq++
				s.due += frameInterval
			}
		}
	}
}

// speak has every speaker send its packets as pace schedules them.
func (g *gen) speak(ctx context.Context, users []*user) (sent, errs, late uint64) {
	bufs := make([][]byte, len(users))
	clients := make([]*client.Client, len(users)) // as they were when speaking began
	for i := range bufs {
		clients[i] = users[i].c
		bufs[i] = make([]byte, g.opt.Payload)
		if g.loops != nil {
			bufs[i] = make([]byte, 0, 2*g.opt.Payload)
		}
	}
	late = pace(ctx, g.start, g.opt.Duration, len(users), func(i int, seq uint64, ts time.Duration) {
		buf := bufs[i]
		if g.loops != nil {
			// A copy of the frame, its padding (the trailer) rewritten.
			buf = append(buf[:0], g.loops[i][seq%opusLoopFrames]...)
			encodePayload(buf[len(buf)-payloadHeader:], uint32(i), seq, ts)
		} else {
			encodePayload(buf, uint32(i), seq, ts)
		}
		bufs[i] = buf
		if err := clients[i].SendAudio(0, frameNumber(seq), buf, false, nil); err != nil {
			errs++
		} else {
			sent++
		}
	})
	return sent, errs, late
}

// storm drops every client at once and has them all rejoin, spread over
// StormWindow, then waits until every new connection has ServerSync and
// knows all N users. It measures TCP ping too, on the rejoined clients,
// until they are all synced.
func (g *gen) storm(ctx context.Context, users []*user, r *Report) error {
	g.opt.Logf("storm: dropping %d clients, rejoining within %v", len(users), g.opt.StormWindow)
	var retries atomic.Uint64
	t0 := time.Now()
	closeAll(users)
	for _, u := range users {
		u.c = nil
	}
	errs := make(chan error, len(users))
	var wg sync.WaitGroup
	last := t0.Add(time.Duration(len(users)-1) * g.opt.StormWindow / time.Duration(len(users)))
	for i, u := range users {
		at := t0.Add(time.Duration(i) * g.opt.StormWindow / time.Duration(len(users)))
		wg.Go(func() {
			time.Sleep(time.Until(at))
			errs <- g.dial(ctx, u, &retries)
		})
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(collect(errs)...); err != nil {
		return err
	}
	if err := g.waitSynced(ctx, users, len(users)); err != nil {
		return err
	}
	r.ResyncSec = time.Since(t0).Seconds()
	r.ResyncLastSec = time.Since(last).Seconds()
	r.RejoinRetries = retries.Load()
	g.opt.Logf("storm: all resynced after %.2f s", r.ResyncSec)
	// A short ping sample on the settled server.
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var pwg sync.WaitGroup
	for _, u := range users {
		pwg.Go(func() { g.pinger(pctx, u.c) })
	}
	pwg.Wait()
	return nil
}

// shapedExpectations replaces all-to-all expectations for a shaped
// channel. Loudest-N: at any moment N streams reach everyone but their own
// speaker, which adds up to N × (clients − 1) copies of a speaker's share
// of what was sent, whoever the N are. Mixed: a mixed stream numbers its
// frames without gaps, so what is missing between the packets a client
// received is what it lost (and a client that received none is counted
// apart).
func (g *gen) shapedExpectations(r *Report) {
	opt := g.opt
	switch {
	case opt.Mixed:
		r.Shaping = "mix"
		r.Expected = r.Mixed + r.MixedGaps
		r.Received = r.Mixed
	case opt.Loudest > 0 && opt.Loudest < opt.K:
		r.Shaping = fmt.Sprintf("loudest %d", opt.Loudest)
		r.Expected = r.Sent * uint64(opt.Loudest) * uint64(opt.N-1) / uint64(opt.K)
	}
}
