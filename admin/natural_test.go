package admin

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestNaturalOrder: numbers inside names sort by value, letters without
// regard to case, and the order is total (ties only for equal names).
func TestNaturalOrder(t *testing.T) {
	want := []string{
		"", "1", "2", "10", "a", "Alice", "alice", "alice2", "alice10",
		"Bob", "load", "load0", "load1", "load02", "load2", "load9", "load10", "load10a", "load10b",
		"load11", "load99999999999999999999998", "load99999999999999999999999", "load100000000000000000000000",
		"zoe", "Ärger",
	}
	for range 20 {
		got := slices.Clone(want)
		rand.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortFunc(got, naturalCompare)
		if !slices.Equal(got, want) {
			t.Fatalf("sorted naturally:\n got %q\nwant %q", got, want)
		}
	}
	for _, n := range want {
		if c := naturalCompare(n, n); c != 0 {
			t.Errorf("naturalCompare(%q, %q) = %d, want 0", n, n, c)
		}
	}
	for i := range want {
		for j := range want {
			if a, b := naturalCompare(want[i], want[j]), naturalCompare(want[j], want[i]); a != -b {
				t.Errorf("not antisymmetric: %q vs %q: %d and %d", want[i], want[j], a, b)
			}
		}
	}
}
