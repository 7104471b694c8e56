//go:build race

package cluster_test

// raceEnabled: under the race detector the network lab is skipped (see
// newNetLab).
const raceEnabled = true
