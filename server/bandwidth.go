package server

import (
	"sync"
	"time"
)

// bandwidthSlots is how many frames Murmur's per-speaker rate limit looks
// back over.
const bandwidthSlots = 360

// voiceOverhead is what Murmur charges per voice frame besides the Opus
// data: IP, UDP and crypt headers.
const voiceOverhead = 20 + 8 + 4

// bandwidthRecord is Murmur's per-speaker voice rate limit: a frame passes
// only if the last bandwidthSlots accepted frames, itself included, stay
// within the limit over the time since the oldest of them. Dropped frames
// are not recorded, so a flood cannot push honest frames out.
type bandwidthRecord struct {
	mu    sync.Mutex
	sizes [bandwidthSlots]uint16
	times [bandwidthSlots]int64 // unix nanoseconds each slot was filled
	next  int
	sum   int
}

func newBandwidthRecord(start int64) *bandwidthRecord {
	b := &bandwidthRecord{}
	for i := range b.times {
		b.times[i] = start // as Murmur's timers, which start with the user
	}
	return b
}

// allow records a frame of size bytes at now and reports whether it fits
// maxPerSec bytes per second.
func (b *bandwidthRecord) allow(now int64, size, maxPerSec int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	elapsed := now - b.times[b.next]
	if elapsed <= 0 {
		return false
	}
	sum := b.sum - int(b.sizes[b.next]) + size
	if int64(sum)*int64(time.Second)/elapsed > int64(maxPerSec) {
		return false
	}
	b.sizes[b.next] = uint16(min(size, 0xffff))
	b.times[b.next] = now
	b.sum = sum
	b.next = (b.next + 1) % bandwidthSlots
	return true
}

// withinBandwidth applies the server's bandwidth setting (bits/s) to one
// voice frame of u. The record is made on u's first frame, so listeners
// who never speak carry none.
func (s *Server) withinBandwidth(u *user, opusLen int, now int64) bool {
	b := u.bandwidth.Load()
	if b == nil {
		// Murmur's clock starts at the TCP connection, well before a client
		// can speak; ours starts at authentication, so it is set one second
		// earlier to give a quick first frame the same allowance.
		u.bandwidth.CompareAndSwap(nil, newBandwidthRecord(u.connected.Add(-time.Second).UnixNano()))
		b = u.bandwidth.Load()
	}
	return b.allow(now, voiceOverhead+opusLen, s.cfg().Bandwidth/8)
}
