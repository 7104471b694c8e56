package main

import (
	"sync/atomic"
	"time"
)

// Hist is a fixed-bucket latency histogram that any number of goroutines
// may add to concurrently. Adding is O(1), allocation-free and lock-free:
// two atomic adds, plus a compare-and-swap when a new maximum is seen.
// Values at or beyond the last bucket land in an overflow bucket; the
// exact maximum is kept separately.
type Hist struct {
	width   time.Duration
	buckets []atomic.Uint64 // bucket i holds [i*width, (i+1)*width); the last one everything beyond
	count   atomic.Uint64
	max     atomic.Int64 // nanoseconds
}

// NewHist returns a histogram of buckets of width up to limit (plus the
// overflow bucket). NewHist(10*time.Microsecond, time.Second) has 100,000
// buckets, 800 KB.
func NewHist(width, limit time.Duration) *Hist {
	n := int(limit / width)
	return &Hist{width: width, buckets: make([]atomic.Uint64, n+1)}
}

// Add records one value; negative values count as 0.
func (h *Hist) Add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := int(d / h.width)
	if i >= len(h.buckets) {
		i = len(h.buckets) - 1
	}
	h.buckets[i].Add(1)
	h.count.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// Count is the number of values added.
func (h *Hist) Count() uint64 { return h.count.Load() }

// Max is the largest value added (exact, not bucketed).
func (h *Hist) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the upper edge of the bucket holding the q-quantile
// (0 < q <= 1), i.e. a value at least as large as the true quantile and
// less than one bucket width above it, capped at Max. For the overflow
// bucket it returns Max. An empty histogram yields 0.
func (h *Hist) Quantile(q float64) time.Duration {
	total := h.count.Load()
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.999999999) // ceil, so p100 is the last value
	rank = min(max(rank, 1), total)
	var seen uint64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			if i == len(h.buckets)-1 {
				return h.Max()
			}
			return min(time.Duration(i+1)*h.width, h.Max())
		}
	}
	return h.Max()
}
