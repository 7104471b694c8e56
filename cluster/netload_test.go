//go:build linux

package cluster_test

// The cluster under load in the network lab (netns_test.go): N users on
// each of the three nodes, speakers spread over the nodes, counting every
// packet at every listener. It runs only when PLENUM_CLUSTER_LOAD names
// N (scripts/cluster-load.sh runs it with 300); the numbers go to the
// test log and, by hand, to docs/BENCHMARKS.md.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
)

// loadStats counts what every listener receives, without allocating per
// packet: per speaker the frames heard, and a histogram of latencies in
// 50 µs steps.
type loadStats struct {
	sent     [4][]atomic.Int64 // send time of each frame, unix ns, by speaker
	speakers [4]atomic.Uint32  // the speakers' sessions
	received [4]atomic.Int64
	buckets  [20000]atomic.Int64 // 0..1 s in 50 µs steps, the last one open
}

func (s *loadStats) observe(p *client.AudioPacket) {
	for i := range s.speakers {
		if s.speakers[i].Load() != p.Sender || p.Frame >= uint64(len(s.sent[i])) {
			continue
		}
		s.received[i].Add(1)
		if t0 := s.sent[i][p.Frame].Load(); t0 != 0 {
			d := p.Received.UnixNano() - t0
			b := min(max(d/50_000, 0), int64(len(s.buckets)-1))
			s.buckets[b].Add(1)
		}
	}
}

func (s *loadStats) percentile(p float64) time.Duration {
	var total int64
	for i := range s.buckets {
		total += s.buckets[i].Load()
	}
	want, seen := int64(float64(total)*p), int64(0)
	for i := range s.buckets {
		seen += s.buckets[i].Load()
		if seen > want {
			return time.Duration(i+1) * 50 * time.Microsecond
		}
	}
	return 0
}

func (s *loadStats) reset() {
	for i := range s.received {
		s.received[i].Store(0)
	}
	for i := range s.buckets {
		s.buckets[i].Store(0)
	}
}

// cpuOf is the user and system CPU time of process pid so far.
func cpuOf(t testing.TB, pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100
}

func TestNetworkLoad(t *testing.T) {
	perNode, _ := strconv.Atoi(os.Getenv("PLENUM_CLUSTER_LOAD"))
	if perNode <= 0 {
		t.Skip("set PLENUM_CLUSTER_LOAD to the users per node (scripts/cluster-load.sh)")
	}
	l := newNetLab(t)
	for i := range l.ns {
		l.startNATS(i)
	}
	l.waitJetStream()
	for i := range l.ns {
		l.startPlenum(i)
	}
	const frames = 500 // 10 s of speech at 20 ms
	stats := &loadStats{}
	for i := range stats.sent {
		stats.sent[i] = make([]atomic.Int64, frames)
	}
	total := 3 * perNode
	users := make([]*client.Client, total)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var failed atomic.Int32
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, client.Config{Address: l.addr(i % 3), Username: fmt.Sprintf("u%04d", i),
				BorrowAudio: true, OnAudio: stats.observe})
			if err != nil {
				failed.Add(1)
				t.Error(err)
				return
			}
			users[i] = c
			c.WaitUDP(ctx)
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	defer func() {
		for _, c := range users {
			c.Close()
		}
	}()
	waitUntil(t, 60*time.Second, "everyone in every tree", func() bool {
		return len(users[0].Users()) == total && len(users[1].Users()) == total && len(users[2].Users()) == total
	})

	// Speakers: users 0 and 3 on node A, 1 on B, 2 on C.
	speakerIdx := [4]int{0, 3, 1, 2}
	for k, i := range speakerIdx {
		stats.speakers[k].Store(users[i].Session())
	}
	speakPhase := func(which []int) (window time.Duration) {
		stats.reset()
		for k := range stats.sent {
			for f := range stats.sent[k] {
				stats.sent[k][f].Store(0)
			}
		}
		start := time.Now()
		var sw sync.WaitGroup
		for _, k := range which {
			sw.Add(1)
			go func() {
				defer sw.Done()
				c := users[speakerIdx[k]]
				payload := make([]byte, 100)
				next := time.Now().Add(time.Duration(k) * 5 * time.Millisecond)
				time.Sleep(time.Until(next))
				for f := range frames {
					stats.sent[k][f].Store(time.Now().UnixNano())
					c.SendAudio(0, uint64(f), payload, f == frames-1, nil)
					next = next.Add(20 * time.Millisecond)
					time.Sleep(time.Until(next))
				}
			}()
		}
		if len(which) == 0 {
			time.Sleep(frames * 20 * time.Millisecond) // as long as speech
		}
		sw.Wait()
		time.Sleep(2 * time.Second)
		return time.Since(start)
	}
	report := func(name string, which []int, cpu [3]time.Duration, window time.Duration) {
		var got, want int64
		for _, k := range which {
			got += stats.received[k].Load()
			want += int64(frames * (total - 1))
		}
		loss := 0.0
		if want > 0 {
			loss = 100 * float64(want-got) / float64(want)
		}
		t.Logf("%s: %d users (%d per node), speakers %v: received %d of %d (loss %.3f %%), latency p50 %v p99 %v",
			name, total, perNode, which, got, want, loss, stats.percentile(.5), stats.percentile(.99))
		t.Logf("%s: server CPU over %v: A %v, B %v, C %v", name, window.Round(time.Millisecond), cpu[0], cpu[1], cpu[2])
	}
	measure := func(name string, which []int) [3]time.Duration {
		var before, after [3]time.Duration
		for i := range before {
			before[i] = cpuOf(t, l.plenum[i].Process.Pid)
		}
		window := speakPhase(which)
		for i := range after {
			after[i] = cpuOf(t, l.plenum[i].Process.Pid) - before[i]
		}
		report(name, which, after, window)
		return after
	}

	// The nodes' CPU without speech (heartbeats, pings) over as long a
	// window, then one speaker on A: A takes its packets over UDP, B and
	// C over NATS, and each forwards them to its perNode listeners.
	idle := measure("idle", nil)
	one := measure("one speaker on node A", []int{0})
	perPacket := func(i int) float64 { return float64((one[i] - idle[i]).Microseconds()) / frames }
	t.Logf("CPU per speaker packet (idle subtracted), forwarded to %d listeners: node A (from UDP, plus one NATS publish) %.0f µs; node B (from NATS) %.0f µs; node C (from NATS) %.0f µs",
		perNode, perPacket(0), perPacket(1), perPacket(2))

	measure("four speakers spread over the nodes", []int{0, 1, 2, 3})
	var lost int64
	for k := range 4 {
		lost += int64(frames*(total-1)) - stats.received[k].Load()
	}
	if lost > 0 {
		t.Logf("%d packets lost", lost)
	}
}
