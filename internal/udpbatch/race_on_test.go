//go:build race

package udpbatch

// raceEnabled: the race detector's bookkeeping allocates, and sync.Pool
// drops entries at random under it, so allocation counts are only checked
// without it.
const raceEnabled = true
