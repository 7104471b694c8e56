//go:build race

package stage

// raceEnabled: the race detector's own bookkeeping allocates, so allocation
// counts are only checked without it.
const raceEnabled = true
