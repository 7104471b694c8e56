package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/cluster"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/audiotest"
	"github.com/plenum-voice/plenum/server"
)

func TestHistQuantiles(t *testing.T) {
	h := NewHist(10*time.Microsecond, time.Second)
	if h.Quantile(0.5) != 0 || h.Max() != 0 {
		t.Fatal("empty histogram not zero")
	}
	// 1..100 ms in 1 ms steps: p50 is 50 ms, p99 99 ms, each reported as
	// the upper edge of its 10 µs bucket.
	for i := 100; i >= 1; i-- {
		h.Add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50*time.Millisecond + 10*time.Microsecond}, {0.99, 99*time.Millisecond + 10*time.Microsecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond + 10*time.Microsecond}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if h.Count() != 100 || h.Max() != 100*time.Millisecond {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
	// Beyond the range: overflow bucket, reported by the exact maximum.
	h.Add(3 * time.Second)
	h.Add(-time.Second) // clamps to 0
	if got := h.Quantile(1); got != 3*time.Second {
		t.Errorf("p100 with overflow %v", got)
	}
	if got := h.Quantile(0.001); got != 10*time.Microsecond {
		t.Errorf("lowest quantile %v, want the 0 bucket's edge", got)
	}
}

func TestHistAddAllocs(t *testing.T) {
	h := NewHist(10*time.Microsecond, time.Second)
	if n := testing.AllocsPerRun(1000, func() { h.Add(1234 * time.Microsecond) }); n != 0 {
		t.Errorf("Add allocates %v", n)
	}
}

func TestPayload(t *testing.T) {
	b := make([]byte, defaultPayload)
	encodePayload(b, 7, 123456, 987654321*time.Nanosecond)
	sp, seq, sent, ok := decodePayload(b)
	if !ok || sp != 7 || seq != 123456 || sent != 987654321 {
		t.Fatalf("decoded %d %d %v %v", sp, seq, sent, ok)
	}
	for _, bad := range [][]byte{b[:payloadHeader-1], nil} {
		if _, _, _, ok := decodePayload(bad); ok {
			t.Errorf("short payload %d accepted", len(bad))
		}
	}
	for _, i := range []int{0, 30, defaultPayload - 1} {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, _, _, ok := decodePayload(c); ok {
			t.Errorf("corruption at byte %d not detected", i)
		}
	}
	if n := testing.AllocsPerRun(100, func() { encodePayload(b, 1, 2, 3) }); n != 0 {
		t.Errorf("encodePayload allocates %v", n)
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses; utime 250, stime 50 ticks.
	line := "1234 (my (odd) server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 100 1000 200\n"
	d, err := parseStatCPU([]byte(line))
	if err != nil || d != 3*time.Second {
		t.Errorf("got %v, %v; want 3s", d, err)
	}
	if u, s, err := parseStatTimes([]byte(line)); err != nil || u != 2500*time.Millisecond || s != 500*time.Millisecond {
		t.Errorf("user %v, system %v, %v; want 2.5s and 0.5s", u, s, err)
	}
	if _, err := parseStatCPU([]byte("garbage")); err == nil {
		t.Error("garbage accepted")
	}
	if d, err := procCPU("self"); err != nil || d < 0 {
		t.Errorf("procCPU(self) = %v, %v", d, err)
	}
	if hwm, rss, err := procMemKB("self"); err != nil || hwm == 0 || rss == 0 {
		t.Errorf("procMemKB(self) = %d, %d, %v", hwm, rss, err)
	}
}

func TestParseUDPDrops(t *testing.T) {
	// Port 64738 is FCE2. The server socket, two clients connected to it
	// and an unrelated socket.
	table := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  1: 0100007F:FCE2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 5
  2: 0100007F:9C40 0100007F:FCE2 01 00000000:00000000 00:00000000 00000000     0        0 2 2 0000000000000000 7
  3: 0100007F:9C41 0100007F:FCE2 01 00000000:00000000 00:00000000 00000000     0        0 3 2 0000000000000000 1
  4: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4 2 0000000000000000 100
`
	s, c := parseUDPDrops([]byte(table), 64738)
	if s != 5 || c != 8 {
		t.Errorf("server %d clients %d, want 5 and 8", s, c)
	}
}

func TestReportFormatting(t *testing.T) {
	p := &Report{Scenario: "N=50 K=1", Server: "plenum", Mode: "udp", Clients: 50, Speakers: 1, Seconds: 20,
		Sent: 1000, Expected: 49000, Received: 48510, LatencyP50Ms: 0.3, LatencyP99Ms: 1.2, LatencyMaxMs: 4,
		ServerCPUSec: 0.49, ServerPeakRSSKB: 20480, SyncSec: 0.1, PingP99Ms: 1, GenCPUPct: 10, GenGOMAXPROCS: 1}
	m := *p
	m.Server, m.ServerCPUSec, m.ServerPeakRSSKB, m.LatencyP99Ms = "murmur", 0.98, 40960, 2.4
	p.ServerSysCPUSec, m.ServerSysCPUSec = 0.39, 0.58 // user space: 0.10 s and 0.40 s
	p.finish()
	m.finish()
	if p.LossPct < 0.99 || p.LossPct > 1.01 {
		t.Errorf("loss %v %%, want 1", p.LossPct)
	}
	if want := 0.49e6 / 48510; p.ServerCPUUsPkt != want {
		t.Errorf("µs/pkt %v, want %v", p.ServerCPUUsPkt, want)
	}
	if p.GeneratorLimited {
		t.Error("a generator at 10 % flagged as the limit")
	}
	var text strings.Builder
	if err := p.WriteText(&text); err != nil || !strings.Contains(text.String(), "loss            1.000 %") {
		t.Errorf("text report:\n%s", text.String())
	}
	var tb strings.Builder
	WriteTable(&tb, []*Report{&m, p}) // Plenum goes first whatever the order
	lines := strings.Split(strings.TrimSpace(tb.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("table:\n%s", tb.String())
	}
	if !strings.HasPrefix(lines[2], "| N=50 K=1 | plenum | 1.00 |") || !strings.Contains(lines[3], "| murmur | 1.00 |") {
		t.Errorf("rows:\n%s", tb.String())
	}
	if !strings.Contains(lines[4], "*plenum / murmur*") || !strings.Contains(lines[4], "| 1.00× / 0.50× / 1.00× |") ||
		!strings.Contains(lines[4], "| 0.50× | 0.50× (0.25×) | 0.50× |") { // latency, then CPU s, µs/pkt (user space) and RSS
		t.Errorf("ratio row: %s", lines[4])
	}
}

// TestRunAgainstPlenum runs the generator for 2 s, N=5, K=1, against an
// in-process Plenum server in each mode.
func TestRunAgainstPlenum(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server")
	}
	srv := serve(t, conf.Default(), "127.0.0.1:0")
	for _, mode := range []string{"udp", "tunnel", "storm"} {
		t.Run(mode, func(t *testing.T) {
			r, err := Run(t.Context(), Options{Addr: srv.Addr().String(), N: 5, K: 1, Duration: 2 * time.Second,
				Mode: mode, ServerPID: os.Getpid(), NamePrefix: mode + "-", Drain: 500 * time.Millisecond,
				StormWindow: 500 * time.Millisecond, MetricsURL: "http://" + srv.AdminAddr().String() + "/metrics"})
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			r.WriteText(&text)
			t.Logf("\n%s", text.String())
			if r.ServerCPUSec < 0 || r.ServerPeakRSSKB == 0 || r.SyncSec <= 0 {
				t.Errorf("server statistics missing: %+v", r)
			}
			if mode == "storm" {
				if r.ResyncSec <= 0 {
					t.Errorf("no resync time: %+v", r)
				}
				return
			}
			// 2 s at 50 packets/s, give or take the ticker's last slot.
			if r.Sent < 95 || r.Sent > 100 || r.Expected != 4*r.Sent {
				t.Errorf("sent %d expected %d", r.Sent, r.Expected)
			}
			// Loopback at this rate loses nothing; all must pass the checks.
			if r.Received != r.Expected || r.Bad != 0 || r.OutOfOrder != 0 {
				t.Errorf("received %d of %d, bad %d, out of order %d", r.Received, r.Expected, r.Bad, r.OutOfOrder)
			}
			if (mode == "tunnel") != (r.ViaTCP == r.Received) {
				t.Errorf("%s: %d of %d via TCP", mode, r.ViaTCP, r.Received)
			}
			if r.LatencyP50Ms <= 0 || r.LatencyMaxMs < r.LatencyP99Ms || r.PingSamples == 0 {
				t.Errorf("latency/ping not measured: %+v", r)
			}
			// The server's own histogram covers UDP voice only.
			if udp := mode == "udp"; udp != (r.ServerDelayP99Ms > 0) || r.ServerDelayP50Ms > r.ServerDelayP99Ms {
				t.Errorf("%s: time in server p50 %v p99 %v ms", mode, r.ServerDelayP50Ms, r.ServerDelayP99Ms)
			}
		})
	}
}

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	before := []bucket{{0.001, 10}, {0.005, 10}, {0.01, 10}, {inf, 10}}
	after := []bucket{{0.001, 60}, {0.005, 105}, {0.01, 109}, {inf, 110}}
	// Between the scrapes: 50 at most 1 ms, 45 up to 5 ms, 4 up to 10 ms,
	// 1 above (reported as the largest bound).
	for _, c := range []struct{ q, want float64 }{{0.5, 0.001}, {0.51, 0.005}, {0.95, 0.005}, {0.99, 0.01}, {1, 0.01}} {
		if got := bucketQuantile(before, after, c.q); got != c.want {
			t.Errorf("q %v: %v, want %v", c.q, got, c.want)
		}
	}
	if got := bucketQuantile(after, after, 0.5); got != -1 {
		t.Errorf("no observations: %v, want -1", got)
	}
}

// TestPaddedOpusDecodesAsTheOriginal: the generator's header rides in Opus
// padding, which a decoder ignores: the padded packet decodes to exactly
// the original's samples, and the header comes back out intact.
func TestPaddedOpusDecodesAsTheOriginal(t *testing.T) {
	sp, err := audiotest.NewSpeaker(440, 0.3, 20)
	if err != nil {
		t.Fatal(err)
	}
	plain, padded := mustListener(t), mustListener(t)
	for seq := range uint64(20) {
		pkt, err := sp.Next()
		if err != nil {
			t.Fatal(err)
		}
		trailer := make([]byte, payloadHeader)
		encodePayload(trailer, 7, seq, time.Duration(seq)*time.Millisecond)
		p, err := padOpus(pkt, trailer)
		if err != nil {
			t.Fatal(err)
		}
		if err := plain.Add(pkt); err != nil {
			t.Fatal(err)
		}
		if err := padded.Add(p); err != nil {
			t.Fatalf("the padded packet does not decode: %v", err)
		}
		idx, gotSeq, sent, ok := decodePayload(opusTrailer(p))
		if !ok || idx != 7 || gotSeq != seq || sent != time.Duration(seq)*time.Millisecond {
			t.Fatalf("trailer came back as %d %d %v %v", idx, gotSeq, sent, ok)
		}
	}
	if !slices.Equal(plain.PCM, padded.PCM) {
		t.Fatal("the padded packets decode to other samples than the originals")
	}
	if opusTrailer([]byte{0x78, 1, 2, 3}) != nil {
		t.Fatal("a code 0 packet was taken for a padded one")
	}
	if _, err := padOpus([]byte{0x79, 1, 2}, nil); err == nil {
		t.Fatal("a code 1 packet (two frames) was taken for one frame")
	}
}

func mustListener(t *testing.T) *audiotest.Listener {
	t.Helper()
	l, err := audiotest.NewListener()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestOpusLoopsAreCBRNearThePayload: every speaker's frames have about the
// requested size, as Mumble's constant bit rate would.
func TestOpusLoopsAreCBRNearThePayload(t *testing.T) {
	loops, err := opusLoops(3, defaultPayload)
	if err != nil {
		t.Fatal(err)
	}
	for i, loop := range loops {
		for _, p := range loop {
			// libopus fills a constant bit rate partly with padding of
			// its own, which the rewrite replaces with the trailer.
			if len(p) < defaultPayload-10 || len(p) > defaultPayload+3 {
				t.Fatalf("speaker %d: a %d-byte packet, want about %d", i, len(p), defaultPayload)
			}
		}
	}
}

// TestRunAgainstShapedChannels: with real Opus the generator measures a
// loudest-N channel (every listener hears N streams, nothing lost) and a
// mixing one (every client one mixed packet per 20 ms), and plain
// forwarding of -opus payloads still checks out packet by packet.
func TestRunAgainstShapedChannels(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server")
	}
	for _, tc := range []struct {
		name  string
		shape func(*conf.Channel)
		opt   Options
	}{
		{"forward", func(*conf.Channel) {}, Options{}},
		{"loudest", func(ch *conf.Channel) { ch.MaxSpeakers = 2 }, Options{Loudest: 2}},
		{"mixed", func(ch *conf.Channel) { ch.Mix = true }, Options{Mixed: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := conf.Default()
			cfg.Channels = []conf.Channel{{Name: "Hall"}}
			tc.shape(&cfg.Channels[0])
			cfg.Server.DefaultChannel = "Hall"
			srv := serve(t, cfg, server.NoAdmin)
			opt := tc.opt
			opt.Addr, opt.N, opt.K, opt.Duration, opt.Opus = srv.Addr().String(), 6, 4, 2*time.Second, true
			opt.Drain, opt.NamePrefix = 500*time.Millisecond, tc.name+"-"
			r, err := Run(t.Context(), opt)
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			r.WriteText(&text)
			t.Logf("\n%s", text.String())
			if r.Bad != 0 || r.SendErrors != 0 {
				t.Errorf("bad %d, send errors %d", r.Bad, r.SendErrors)
			}
			switch tc.name {
			case "forward":
				if r.Received != r.Expected || r.Expected != 5*r.Sent {
					t.Errorf("received %d of %d", r.Received, r.Expected)
				}
			case "loudest":
				// Two streams reach the five others of each speaker: 2/4 of
				// all-to-all. A speaker cut at the start adds a few.
				if r.Expected != r.Sent*2*5/4 || r.LossPct > 1 || r.LossPct < -3 || r.Mixed != 0 {
					t.Errorf("loudest 2: received %d of %d (%.2f %%), mixed %d", r.Received, r.Expected, r.LossPct, r.Mixed)
				}
			case "mixed":
				// Each of the 6 clients gets the mix for the 2 s.
				if r.Mixed < 6*95 || r.MixedGaps != 0 || r.MixedMissing != 0 {
					t.Errorf("mix: %d mixed packets, %d gaps, %d clients without", r.Mixed, r.MixedGaps, r.MixedMissing)
				}
			}
		})
	}
}

// serve runs a Plenum server on cfg on a free loopback port until the
// test ends.
func serve(t *testing.T, cfg *conf.Config, adminListen string) *server.Server {
	t.Helper()
	return serveWith(t, server.Options{Config: cfg, AdminListen: adminListen})
}

// serveWith runs a server on loopback with opt, without browsers, its
// data in a temp dir and warnings on stderr.
func serveWith(t *testing.T, opt server.Options) *server.Server {
	t.Helper()
	opt.Listen, opt.WebListen, opt.DataDir = "127.0.0.1:0", server.NoWeb, t.TempDir()
	opt.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

// TestRunWebAgainstPlenum: a small -mode web run, 6 browsers and 3
// Mumble clients with 2 speakers of each kind: every browser gets the
// mix, the timed ones time burst onsets, the Mumble clients get every
// speaker's packets intact and timed. How much arrives and how late is
// the benchmark's business (scripts/bench-web.sh): under the race
// detector on a busy machine the mix clock falls behind.
func TestRunWebAgainstPlenum(t *testing.T) {
	cfg := conf.Default()
	cfg.Server.Bandwidth = 1 << 30
	cfg.Server.WebUDPPort, cfg.Server.WebTCPPort = 0, 0
	srv, err := server.New(server.Options{Config: cfg, Listen: "127.0.0.1:0", WebListen: "127.0.0.1:0", AdminListen: server.NoAdmin, DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	r, err := RunWeb(context.Background(), Options{Addr: srv.Addr().String(), WebURL: "ws://" + srv.WebAddr().String() + "/ws",
		N: 6, Mumble: 3, K: 4, WebSpeakers: 2, Timed: 4, Duration: 3 * time.Second, Drain: 500 * time.Millisecond, NamePrefix: "t-"})
	if err != nil {
		t.Fatal(err)
	}
	r.WriteText(os.Stdout)
	if r.WebReceived == 0 || r.WebExpected < r.WebReceived || r.MixedMissing != 0 {
		t.Errorf("browsers got %d of %d mixed packets (%d without any)", r.WebReceived, r.WebExpected, r.MixedMissing)
	}
	if r.Received == 0 || r.Bad != 0 {
		t.Errorf("Mumble clients got %d of %d packets (%d bad)", r.Received, r.Expected, r.Bad)
	}
	if r.WebOnsets == 0 || r.OnsetOutliers != 0 || r.WebLatencyP50Ms <= 0 {
		t.Errorf("%d burst onsets timed (%d unattributed), p50 %.1f ms", r.WebOnsets, r.OnsetOutliers, r.WebLatencyP50Ms)
	}
	if r.LatencyP50Ms <= 0 {
		t.Errorf("Mumble clients' latency p50 %.2f ms", r.LatencyP50Ms)
	}
}

// TestRunAgainstACluster: with two nodes of a cluster in -addr, the
// clients alternate between them (each node sees the other's three as
// remote users), and every packet of the two speakers, one per node,
// reaches every listener on both nodes.
func TestRunAgainstACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	ns, err := cluster.StartEmbedded(cluster.EmbeddedOptions{Name: "loadgen-nats", Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	var nodes [2]*server.Server
	for i := range nodes {
		node, err := cluster.Dial(t.Context(), cluster.Options{Cluster: "loadgen", NodeName: fmt.Sprint("n", i), URLs: []string{ns.ClientURL()},
			Logger: slog.New(slog.DiscardHandler), StateFile: filepath.Join(t.TempDir(), "cluster-state.json")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(node.Close)
		nodes[i] = serveWith(t, server.Options{Config: conf.Default(), AdminListen: server.NoAdmin, Cluster: node})
	}
	var remote [2]atomic.Int64 // the most remote users each node saw
	ctx, stop := context.WithCancel(t.Context())
	var watch sync.WaitGroup
	watch.Go(func() {
		for ctx.Err() == nil {
			for i, n := range nodes {
				if r := int64(len(n.RemoteSessions())); r > remote[i].Load() {
					remote[i].Store(r)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	r, err := Run(t.Context(), Options{Addr: nodes[0].Addr().String() + "," + nodes[1].Addr().String(), N: 6, K: 2,
		Duration: 2 * time.Second, Drain: 500 * time.Millisecond, ServerPID: os.Getpid(), OtherPIDs: []int{os.Getpid()}})
	stop()
	watch.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if remote[0].Load() != 3 || remote[1].Load() != 3 {
		t.Errorf("remote users seen by the nodes: %d and %d, want 3 and 3", remote[0].Load(), remote[1].Load())
	}
	if r.Sent < 190 || r.Received != r.Expected || r.Bad != 0 {
		t.Errorf("sent %d, received %d of %d, bad %d", r.Sent, r.Received, r.Expected, r.Bad)
	}
}
