package voice

import (
	"sync/atomic"
	"time"
)

// delayBuckets are the upper bounds of delayHistogram's buckets: fine below
// a millisecond, where an idle server is, and up to the delays at which
// voice is useless.
var delayBuckets = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
}

// delayHistogram counts durations into delayBuckets without locks or
// allocation, for the voice path; the last count is everything above the
// largest bound.
type delayHistogram struct {
	counts [len(delayBuckets) + 1]atomic.Uint64
	sumNS  atomic.Uint64
}

func (h *delayHistogram) observe(d time.Duration) {
	if d < 0 {
		d = 0 // clock steps
	}
	i := 0
	for i < len(delayBuckets) && d > delayBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNS.Add(uint64(d))
}

// DelayHistogram is a snapshot of a delayHistogram: Counts[i] is how many
// durations were at most Bounds[i] (and above the bound before it); the
// last count has no bound.
type DelayHistogram struct {
	Bounds []time.Duration
	Counts []uint64
	Sum    time.Duration
}

// addTo adds h's counts to out, whose Counts has a slot per bucket.
func (h *delayHistogram) addTo(out *DelayHistogram) {
	for i := range h.counts {
		out.Counts[i] += h.counts[i].Load()
	}
	out.Sum += time.Duration(h.sumNS.Load())
}

// merge adds o's counts to h.
func (h *delayHistogram) merge(o *delayHistogram) {
	for i := range h.counts {
		h.counts[i].Add(o.counts[i].Load())
	}
	h.sumNS.Add(o.sumNS.Load())
}

// Total is the number of durations observed.
func (h DelayHistogram) Total() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Quantile returns the upper bound of the bucket holding quantile q (0..1),
// an upper estimate; above the largest bound it returns that bound.
func (h DelayHistogram) Quantile(q float64) time.Duration {
	total := h.Total()
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen > rank || seen == total {
			return h.Bounds[min(i, len(h.Bounds)-1)]
		}
	}
	return h.Bounds[len(h.Bounds)-1]
}

// snapshot returns h's counts as a DelayHistogram.
func (h *delayHistogram) snapshot() DelayHistogram {
	out := DelayHistogram{Bounds: delayBuckets[:], Counts: make([]uint64, len(h.counts))}
	h.addTo(&out)
	return out
}
