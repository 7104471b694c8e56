package voice

import (
	"sync"
	"sync/atomic"
	"time"
)

// Path is the way a copy left for its listener, as a peer reports it.
type Path uint8

const (
	Dropped Path = iota // not sent: the peer's queue was full
	UDP                 // an encrypted datagram in the router's batch
	Tunnel              // the peer's TCP connection (UDPTunnel)
	Web                 // a browser's mix (its WebRTC track)
	numPaths
)

// Counters are the engine's totals since it started, summed over every
// router that ever routed.
type Counters struct {
	Received      uint64 // voice packets accepted from speakers
	ReceivedBytes uint64 // their size (plaintext Mumble voice packets)
	Silenced      uint64 // voice from muted, suppressed or self-muted speakers, dropped
	OverBandwidth uint64 // voice beyond the per-speaker bandwidth limit, dropped

	// Copies and their plaintext bytes by the path they left on; the
	// Dropped entries count copies a peer could not take.
	Copies    [numPaths]uint64
	CopyBytes [numPaths]uint64

	// Delay is how long UDP voice spent in the server: from the kernel's
	// arrival time to the moment its copies were queued for sending (as
	// the UDP transport reports it with Router.Observe).
	Delay DelayHistogram
}

// tally is one router's counts. Only its router's goroutine adds to it,
// so the adds never contend, and each tally is its own allocation padded
// to whole cache lines, so that routers on different cores do not share
// one; Counters sums them when asked.
type tally struct {
	received, receivedBytes atomic.Uint64
	silenced, overBandwidth atomic.Uint64
	copies, copyBytes       [numPaths]atomic.Uint64
	delay                   delayHistogram
	_                       [64]byte
}

func (t *tally) addTo(c *Counters) {
	c.Received += t.received.Load()
	c.ReceivedBytes += t.receivedBytes.Load()
	c.Silenced += t.silenced.Load()
	c.OverBandwidth += t.overBandwidth.Load()
	for p := range numPaths {
		c.Copies[p] += t.copies[p].Load()
		c.CopyBytes[p] += t.copyBytes[p].Load()
	}
	t.delay.addTo(&c.Delay)
}

// tallies is every router's tally, and the sum of those whose routers
// closed (a TCP connection's router goes with it).
type tallies struct {
	mu      sync.Mutex
	live    map[*tally]struct{}
	retired tally
}

func (ts *tallies) add() *tally {
	t := &tally{}
	ts.mu.Lock()
	if ts.live == nil {
		ts.live = make(map[*tally]struct{})
	}
	ts.live[t] = struct{}{}
	ts.mu.Unlock()
	return t
}

// retire folds t into the retired sum. Its router is done, so nothing
// adds to t any more.
func (ts *tallies) retire(t *tally) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.live[t]; !ok {
		return // closed twice
	}
	delete(ts.live, t)
	r := &ts.retired
	r.received.Add(t.received.Load())
	r.receivedBytes.Add(t.receivedBytes.Load())
	r.silenced.Add(t.silenced.Load())
	r.overBandwidth.Add(t.overBandwidth.Load())
	for p := range numPaths {
		r.copies[p].Add(t.copies[p].Load())
		r.copyBytes[p].Add(t.copyBytes[p].Load())
	}
	r.delay.merge(&t.delay)
}

func (ts *tallies) sum() Counters {
	var c Counters
	c.Delay = DelayHistogram{Bounds: delayBuckets[:], Counts: make([]uint64, len(delayBuckets)+1)}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.retired.addTo(&c)
	for t := range ts.live {
		t.addTo(&c)
	}
	return c
}

// Observe records that a packet this router routed spent d in the server.
func (r *Router) Observe(d time.Duration) { r.tally.delay.observe(d) }
