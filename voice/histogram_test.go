package voice

import (
	"testing"
	"time"
)

func TestDelayHistogram(t *testing.T) {
	var h delayHistogram
	for i := 0; i < 90; i++ {
		h.observe(80 * time.Microsecond) // the 100 µs bucket
	}
	for i := 0; i < 9; i++ {
		h.observe(3 * time.Millisecond) // the 5 ms bucket
	}
	h.observe(time.Second) // above every bound
	h.observe(-time.Millisecond)
	s := h.snapshot()
	if s.Total() != 101 || s.Counts[0] != 1 || s.Counts[1] != 90 || s.Counts[6] != 9 || s.Counts[len(s.Counts)-1] != 1 {
		t.Fatalf("counts %v", s.Counts)
	}
	if want := 90*80*time.Microsecond + 9*3*time.Millisecond + time.Second; s.Sum != want {
		t.Errorf("sum %v, want %v", s.Sum, want)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 100 * time.Microsecond}, {0.95, 5 * time.Millisecond}, {0.999, 250 * time.Millisecond}, {0, 50 * time.Microsecond}} {
		if got := s.Quantile(c.q); got != c.want {
			t.Errorf("quantile %v = %v, want %v", c.q, got, c.want)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { h.observe(time.Millisecond) }); allocs != 0 {
		t.Errorf("observe allocates %v times", allocs)
	}
}
