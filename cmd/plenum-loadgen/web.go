package main

// -mode web: browsers (internal/webpeer, each with its own ICE, DTLS and
// SRTP) and Mumble clients in one channel, some of each speaking.
//
// Every speaker sends real Opus, 20 ms frames from a pre-encoded loop of
// one second: a 100 ms tone burst, then silence, the speakers' bursts
// spread over the second so that they never overlap. The generator's
// header (send time, speaker, sequence) travels in each frame's padding
// (opuspayload.go), so a Mumble listener, which gets each speaker's
// packets as they were sent (the server does not transcode), times every
// packet exactly as in the other modes.
//
// A browser hears one mixed stream the server encoded: the header is
// gone. Every browser counts the RTP packets of its track and the gaps
// in their timestamps (loss); a sample of them (-timed) also decodes the
// track and times each burst's onset: added latency is when the onset
// arrives (the mixed frame's arrival plus the onset's offset in it)
// minus the time its speaker sent the burst's first frame, the mix tick
// and the server's jitter buffer included. Onsets are attributed to the
// latest burst sent before them; the bursts are 240 ms apart with four
// speakers, so latencies up to that are measured correctly.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hraban/opus"
	"github.com/pion/rtp"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/internal/audiotest"
	"github.com/plenum-voice/plenum/internal/webpeer"
)

// webLoopFrames is one second of 20 ms frames; burstFrames of them carry
// the tone.
const (
	webLoopFrames = 50
	burstFrames   = 5
	onsetLevel    = 3000 // a sample beyond this (the bursts peak at 9830) is a burst's onset
)

// webGen is the state of a -mode web run.
type webGen struct {
	opt      Options
	start    time.Time
	loops    [][][]byte      // per speaker: padded frames of its loop
	refOnset []time.Duration // per speaker: the onset's offset in its own decoded burst

	speakerSession []atomic.Uint32 // by speaker index, set before anyone speaks (atomic: listeners read it from their goroutines)

	burstMu    sync.RWMutex
	burstStart []time.Duration // when every burst's onset was sent, in order: its first frame's send time plus the speaker's decoded onset

	direct *Hist // Mumble listeners: added latency of each packet
	onset  *Hist // timed browsers: added latency of each burst onset

	windowFrom, windowTo atomic.Int64 // the counted window, ns since start
	sentInWindow         []uint64     // per speaker, packets sent in the window (speakWeb's)
}

// webUser is one simulated browser.
type webUser struct {
	g     *webGen
	name  string
	p     *webpeer.Peer
	timed bool

	mu       sync.Mutex // the track's reader is one goroutine; the report reads after it
	count    uint64
	firstTS  uint32
	lastTS   uint32
	spanned  uint64 // ticks between the first and the last packet counted
	seen     bool
	dec      *opus.Decoder
	pcm      []int16
	loud     bool
	outliers uint64
}

func (u *webUser) onRTP(p *rtp.Packet, at time.Time) {
	g := u.g
	since := at.Sub(g.start)
	if int64(since) < g.windowFrom.Load() || int64(since) > g.windowTo.Load() {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.seen {
		u.firstTS, u.seen = p.Timestamp, true
	}
	u.lastTS = p.Timestamp
	u.count++
	u.spanned = uint64((u.lastTS-u.firstTS)/960) + 1
	if !u.timed {
		return
	}
	n, err := u.dec.Decode(p.Payload, u.pcm)
	if err != nil {
		return
	}
	onset := onsetIn(u.pcm[:n])
	if onset >= 0 && !u.loud {
		// The onset sample plays onset samples into the frame: that is
		// when it arrives, as a forwarded packet's first sample does at
		// the packet's arrival.
		at := since + time.Duration(onset)*time.Second/audiotest.SampleRate
		if sent, ok := g.lastBurstBefore(at); ok {
			g.onset.Add(at - sent)
		} else {
			u.outliers++
		}
	}
	u.loud = onset >= 0
}

// lastBurstBefore is the send time of the latest burst that began before
// t.
func (g *webGen) lastBurstBefore(t time.Duration) (time.Duration, bool) {
	g.burstMu.RLock()
	defer g.burstMu.RUnlock()
	for i := len(g.burstStart) - 1; i >= 0; i-- {
		if g.burstStart[i] <= t {
			return g.burstStart[i], true
		}
	}
	return 0, false
}

// mumbleListener is a Mumble client of the run.
type mumbleListener struct {
	g        *webGen
	c        *client.Client
	received atomic.Uint64
	bad      atomic.Uint64
}

func (m *mumbleListener) onAudio(p *client.AudioPacket) {
	g := m.g
	trailer := opusTrailer(p.Opus)
	if trailer == nil && p.Terminator {
		return // the server ends a browser's burst with a frame of its own
	}
	idx, _, sent, ok := decodePayload(trailer)
	if !ok || int(idx) >= len(g.speakerSession) || g.speakerSession[idx].Load() != p.Sender {
		m.bad.Add(1)
		return
	}
	// Counted by send time: exactly the packets speakWeb counted as sent
	// in the window.
	if int64(sent) < g.windowFrom.Load() || int64(sent) > g.windowTo.Load() {
		return
	}
	g.direct.Add(p.Received.Sub(g.start) - sent)
	m.received.Add(1)
}

// webLoops pre-encodes each speaker's loop: a burst of its tone, then
// silence, padded for the generator's header. It also returns where a
// burst's onset lies when the speaker's own frames are decoded (the
// encoder's look-ahead delays it by some milliseconds): that much of a
// mixed onset's delay a forwarded packet has as well, so it is not
// counted as added.
func webLoops(speakers int) ([][][]byte, []time.Duration, error) {
	loops := make([][][]byte, speakers)
	ref := make([]time.Duration, speakers)
	for i := range loops {
		enc, err := opus.NewEncoder(audiotest.SampleRate, 1, opus.AppVoIP)
		if err != nil {
			return nil, nil, err
		}
		enc.SetVBR(false)
		enc.SetBitrate(40000)
		freq := 400 + 200*float64(i%8)
		buf := make([]byte, 1500)
		for f := range webLoopFrames {
			pcm := make([]int16, 960)
			if f < burstFrames {
				pcm = audiotest.Tone(freq, 0.3, f*960, 960)
			}
			n, err := enc.Encode(pcm, buf)
			if err != nil {
				return nil, nil, err
			}
			padded, err := padOpus(buf[:n], make([]byte, payloadHeader))
			if err != nil {
				return nil, nil, err
			}
			loops[i] = append(loops[i], padded)
		}
		if ref[i], err = decodedOnset(loops[i]); err != nil {
			return nil, nil, err
		}
	}
	return loops, ref, nil
}

// decodedOnset decodes a loop from its silence into its burst and returns
// the onset's offset from the burst's first frame.
func decodedOnset(loop [][]byte) (time.Duration, error) {
	dec, err := opus.NewDecoder(audiotest.SampleRate, 1)
	if err != nil {
		return 0, err
	}
	pcm := make([]int16, 5760)
	order := append(append([][]byte(nil), loop[burstFrames:]...), loop[:burstFrames]...)
	at := 0
	for f, frame := range order {
		n, err := dec.Decode(frame, pcm)
		if err != nil {
			return 0, err
		}
		if f >= len(loop)-burstFrames {
			if i := onsetIn(pcm[:n]); i >= 0 {
				return time.Duration(at+i) * time.Second / audiotest.SampleRate, nil
			}
			at += n
		}
	}
	return 0, errors.New("the burst decodes as silence")
}

// onsetIn returns the index of the first sample beyond onsetLevel, or -1.
func onsetIn(pcm []int16) int {
	for i, v := range pcm {
		if v > onsetLevel || v < -onsetLevel {
			return i
		}
	}
	return -1
}

// RunWeb performs a -mode web run.
func RunWeb(ctx context.Context, opt Options) (*Report, error) {
	opt.defaults()
	webSpeakers := opt.WebSpeakers
	mumbleSpeakers := opt.K - webSpeakers
	switch {
	case opt.WebURL == "":
		return nil, errors.New("-mode web needs -web-url (ws://host:8443/ws)")
	case opt.N < webSpeakers || webSpeakers < 0:
		return nil, fmt.Errorf("-web-speakers must be between 0 and -n (%d)", opt.N)
	case opt.Mumble < mumbleSpeakers || mumbleSpeakers < 0:
		return nil, fmt.Errorf("%d Mumble speakers need -mumble %d at least", mumbleSpeakers, mumbleSpeakers)
	}
	loops, ref, err := webLoops(opt.K)
	if err != nil {
		return nil, err
	}
	g := &webGen{opt: opt, start: time.Now(), loops: loops, refOnset: ref, speakerSession: make([]atomic.Uint32, opt.K), sentInWindow: make([]uint64, opt.K),
		direct: NewHist(10*time.Microsecond, 10*time.Second), onset: NewHist(10*time.Microsecond, 10*time.Second)}
	g.windowFrom.Store(math.MaxInt64)
	var server procs
	if opt.ServerPID > 0 {
		server = procsOf([]int{opt.ServerPID})
	}
	r := &Report{Mode: "web", Clients: opt.N + opt.Mumble, Speakers: opt.K, ServerCPUSec: -1, ServerCPUUsPkt: -1,
		ServerDelayP50Ms: -1, ServerDelayP99Ms: -1, WebClients: opt.N, MumbleClients: opt.Mumble}

	browsers := make([]*webUser, opt.N)
	for i := range browsers {
		browsers[i] = &webUser{g: g, name: fmt.Sprintf("%sw%04d", opt.NamePrefix, i), timed: i >= webSpeakers && i < webSpeakers+opt.Timed}
		if browsers[i].timed {
			if browsers[i].dec, err = opus.NewDecoder(audiotest.SampleRate, 1); err != nil {
				return nil, err
			}
			browsers[i].pcm = make([]int16, 5760)
		}
	}
	mumbles := make([]*mumbleListener, opt.Mumble)
	for i := range mumbles {
		mumbles[i] = &mumbleListener{g: g}
	}
	defer func() {
		var wg sync.WaitGroup
		for _, b := range browsers {
			if b.p != nil {
				wg.Go(func() { b.p.Close() })
			}
		}
		for _, m := range mumbles {
			if m.c != nil {
				wg.Go(func() { m.c.Close() })
			}
		}
		wg.Wait()
	}()

	opt.Logf("connecting %d browsers to %s and %d Mumble clients to %s", opt.N, opt.WebURL, opt.Mumble, opt.Addr)
	t0 := time.Now()
	if err := connectWeb(ctx, opt, browsers, mumbles); err != nil {
		return nil, err
	}
	total := opt.N + opt.Mumble
	sctx, cancel := context.WithTimeout(ctx, opt.SyncTimeout)
	defer cancel()
	for _, b := range browsers {
		if err := b.p.Wait(sctx, func(c *client.Client) bool { return c.NumUsers() == total }); err != nil {
			return nil, fmt.Errorf("%s knows %d of %d users: %w", b.name, b.p.NumUsers(), total, err)
		}
	}
	for _, m := range mumbles {
		if err := m.c.Wait(sctx, func(c *client.Client) bool { return c.NumUsers() == total }); err != nil {
			return nil, fmt.Errorf("a Mumble client knows %d of %d users: %w", m.c.NumUsers(), total, err)
		}
	}
	r.SyncSec = time.Since(t0).Seconds()
	opt.Logf("all %d users connected (browsers with WebRTC up) and synced after %.2f s", total, r.SyncSec)
	if len(mumbles) > 0 {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		for _, m := range mumbles {
			if m.c.WaitUDP(wctx) != nil {
				r.NotUDP++
			}
		}
		cancel()
	}

	// Speakers: the first web speakers browsers, then Mumble clients.
	var send []func(frame []byte, seq uint64) error
	for i := range webSpeakers {
		p := browsers[i].p
		g.speakerSession[i].Store(p.Session())
		send = append(send, func(frame []byte, _ uint64) error { return p.SendOpus(frame, 960) })
	}
	for i := range mumbleSpeakers {
		c := mumbles[i].c
		g.speakerSession[webSpeakers+i].Store(c.Session())
		send = append(send, func(frame []byte, seq uint64) error { return c.SendAudio(0, frameNumber(seq), frame, false, nil) })
	}

	cpu0, _ := server.cpu()
	_, sys0, _ := server.cpuTimes()
	self0 := selfCPU()
	drops0 := udpRcvbufErrors()
	w0 := time.Now()
	// Count from a second in, when every stream is flowing, to the end.
	g.windowFrom.Store(int64(time.Since(g.start) + time.Second))
	g.windowTo.Store(int64(time.Since(g.start) + opt.Duration))
	opt.Logf("%d speakers (%d browsers, %d Mumble) talking for %v", opt.K, webSpeakers, mumbleSpeakers, opt.Duration)
	sent, errs, late := g.speakWeb(ctx, send)
	time.Sleep(opt.Drain)
	window := time.Since(w0)
	r.MachineUDPDrops = udpRcvbufErrors() - drops0
	r.Seconds = opt.Duration.Seconds()
	r.Sent, r.SendErrors, r.LateSends = sent, errs, late

	// Browsers: a mixed frame every tick while anyone speaks.
	for _, b := range browsers {
		b.mu.Lock()
		r.WebReceived += b.count
		r.WebExpected += b.spanned
		if b.count == 0 {
			r.MixedMissing++
		}
		r.OnsetOutliers += b.outliers
		b.mu.Unlock()
	}
	// Mumble listeners: every speaker's packets but their own.
	for i, m := range mumbles {
		for sp, n := range g.sentInWindow {
			if sp != webSpeakers+i { // Mumble client i is speaker webSpeakers+i if it speaks
				r.Expected += n
			}
		}
		r.Received += m.received.Load()
		r.Bad += m.bad.Load()
	}
	if r.WebExpected > 0 {
		r.WebLossPct = 100 * (1 - float64(r.WebReceived)/float64(r.WebExpected))
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs = ms(g.direct.Quantile(0.5)), ms(g.direct.Quantile(0.99)), ms(g.direct.Max())
	r.WebLatencyP50Ms, r.WebLatencyP99Ms, r.WebLatencyMaxMs = ms(g.onset.Quantile(0.5)), ms(g.onset.Quantile(0.99)), ms(g.onset.Max())
	r.WebOnsets = g.onset.Count()
	if cpu1, err := server.cpu(); err == nil && cpu0 >= 0 {
		r.ServerCPUSec = (cpu1 - cpu0).Seconds()
		if _, sys1, err := server.cpuTimes(); err == nil {
			r.ServerSysCPUSec = (sys1 - sys0).Seconds()
		}
		r.ServerCPUPct = 100 * r.ServerCPUSec / window.Seconds()
		r.ServerCPUPerListenerPct = r.ServerCPUPct / float64(total)
	}
	if server != nil {
		r.ServerPeakRSSKB, r.ServerRSSKB, _ = server.mem()
	}
	r.GenCPUSec = (selfCPU() - self0).Seconds()
	r.GenCPUPct = 100 * r.GenCPUSec / window.Seconds()
	r.GenGOMAXPROCS = gomaxprocs()
	r.finish()
	return r, nil
}

// connectWeb connects the Mumble clients and then the browsers, at most
// DialConcurrency at a time.
func connectWeb(ctx context.Context, opt Options, browsers []*webUser, mumbles []*mumbleListener) error {
	sem := make(chan struct{}, opt.DialConcurrency)
	errs := make(chan error, len(browsers)+len(mumbles))
	var wg sync.WaitGroup
	for i, m := range mumbles {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			c, err := client.Dial(dctx, client.Config{Address: opt.Addr, Username: fmt.Sprintf("%sm%04d", opt.NamePrefix, i),
				OnAudio: m.onAudio, BorrowAudio: true})
			m.c = c
			errs <- err
		})
	}
	for _, b := range browsers {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			p, err := webpeer.Dial(dctx, webpeer.Config{URL: opt.WebURL, Username: b.name, OnRTP: b.onRTP})
			b.p = p
			if err != nil {
				err = fmt.Errorf("%s: %w", b.name, err)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

// speakWeb drives every speaker from one goroutine, each in its own
// 20 ms phase, as speak does, recording when each burst began.
func (g *webGen) speakWeb(ctx context.Context, send []func([]byte, uint64) error) (sent, errs, late uint64) {
	k := len(send)
	bufs := make([][]byte, k)
	for i := range bufs {
		bufs[i] = make([]byte, 0, 1500)
	}
	late = pace(ctx, g.start, g.opt.Duration, k, func(i int, seq uint64, ts time.Duration) {
		// Speaker i's bursts are offset by i/k of the loop, so no two
		// overlap.
		f := (seq + uint64(webLoopFrames-i*webLoopFrames/k)) % webLoopFrames
		buf := append(bufs[i][:0], g.loops[i][f]...)
		bufs[i] = buf
		encodePayload(buf[len(buf)-payloadHeader:], uint32(i), seq, ts)
		if f == 0 {
			g.burstMu.Lock()
			g.burstStart = append(g.burstStart, ts+g.refOnset[i])
			g.burstMu.Unlock()
		}
		if err := send[i](buf, seq); err != nil {
			errs++
			return
		}
		sent++
		if int64(ts) >= g.windowFrom.Load() && int64(ts) <= g.windowTo.Load() {
			g.sentInWindow[i]++
		}
	})
	return sent, errs, late
}
