package voice

import (
	"sync"
	"sync/atomic"
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

// Speaker is a user's voice state that lives as long as the user, across
// snapshots: the record of the bandwidth limit and when they last spoke.
// The control plane makes one per user (NewSpeaker) and puts it into
// every snapshot's User.
type Speaker struct {
	start     int64 // unix nanoseconds the bandwidth clock starts at
	bandwidth atomic.Pointer[bandwidthRecord]
	lastSpoke atomic.Int64
}

// NewSpeaker returns the voice state of a user who connected at
// connected. Murmur's bandwidth clock starts at the TCP connection, well
// before a client can speak; a user is known only once authenticated, so
// the clock starts one second earlier to give a quick first frame the
// same allowance.
func NewSpeaker(connected time.Time) *Speaker {
	return &Speaker{start: connected.Add(-time.Second).UnixNano()}
}

// LastSpoke is when a voice packet of theirs was last routed, in unix
// nanoseconds (0: never).
func (sp *Speaker) LastSpoke() int64 { return sp.lastSpoke.Load() }

// within applies the limit of maxPerSec bytes per second to one frame.
// The record is made on the speaker's first frame, so listeners who never
// speak carry none.
func (sp *Speaker) within(opusLen int, now int64, maxPerSec int) bool {
	b := sp.bandwidth.Load()
	if b == nil {
		sp.bandwidth.CompareAndSwap(nil, newBandwidthRecord(sp.start))
		b = sp.bandwidth.Load()
	}
	return b.allow(now, voiceOverhead+opusLen, maxPerSec)
}
