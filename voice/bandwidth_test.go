package voice

import (
	"testing"
	"time"
)

func TestBandwidthLimitFollowsMurmur(t *testing.T) {
	const limit = 558000 / 8 // bytes/s
	start := int64(0)
	b := newBandwidthRecord(start)
	frame := voiceOverhead + 100 // 132 bytes, 50 frames/s = 6600 B/s
	now := start + int64(time.Second)
	for i := 0; i < 1000; i++ { // 20 s of ordinary speech
		now += int64(20 * time.Millisecond)
		if !b.allow(now, frame, limit) {
			t.Fatalf("frame %d of ordinary speech dropped", i)
		}
	}
	// A flood of 1000 frames/s of 1000 bytes: only what fits the limit.
	passed := 0
	for i := 0; i < 5000; i++ {
		now += int64(time.Millisecond)
		if b.allow(now, voiceOverhead+1000, limit) {
			passed++
		}
	}
	// 5 s at 69,750 B/s is about 338 frames of 1032 bytes (plus what the
	// window of earlier small frames leaves room for).
	if passed < 250 || passed > 450 {
		t.Fatalf("%d of 5000 flood frames passed, want about 340", passed)
	}
	// No time since the slot being replaced: dropped, as in Murmur.
	if newBandwidthRecord(now).allow(now, frame, limit) {
		t.Fatal("a frame with zero elapsed time passed")
	}
}
