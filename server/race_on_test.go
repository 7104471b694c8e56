//go:build race

package server

// raceEnabled: the race detector's own bookkeeping allocates (x/net annotates
// every sendmmsg message for it), so allocation counts are only checked
// without it.
const raceEnabled = true
