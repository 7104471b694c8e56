//go:build race

package client

// raceEnabled: the race detector's instrumentation allocates, so allocation
// counts are only meaningful without it.
const raceEnabled = true
