package server

import "time"

// leakyBucket is Murmur's flood control for control messages: it holds up
// to burst tokens, leaks limit tokens per second, and a message that finds
// it full is dropped without a reply.
type leakyBucket struct {
	tokens int64
	last   time.Time
}

// allow reports whether one more message may pass at now.
func (b *leakyBucket) allow(now time.Time, limit, burst int) bool {
	// Leak whole tokens only, restarting the clock when one leaked, so a
	// steady trickle below the limit never accumulates rounding debt.
	if leaked := now.Sub(b.last).Milliseconds() * int64(limit) / 1000; leaked > 0 {
		b.tokens = max(0, b.tokens-leaked)
		b.last = now
	}
	if b.tokens > int64(burst)-1 {
		return false
	}
	b.tokens++
	return true
}
