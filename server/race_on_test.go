//go:build race

package server

// raceEnabled: the race detector's own bookkeeping allocates, and under it
// sync.Pool (which the sockets' batch writes use) drops entries at random,
// so allocation counts are only checked without it.
const raceEnabled = true
