package cluster

import (
	"testing"
	"time"
)

// The default bounds, against what NATS does: a node whose NATS server
// died reconnects to another within a second, and JetStream's followers
// wait up to 9 s for a lost leader before they elect another (nats-server's
// raft.go), which a node sees as at most 10 s of refused writes: until the
// new leader, and its next write a second later.
func TestCutOffOutlastsALeaderElection(t *testing.T) {
	n := &Node{opts: Options{CutOffAfter: DefaultCutOffAfter, UnsharedCutOffAfter: DefaultUnsharedCutOffAfter}}
	for _, c := range []struct {
		what           string
		down, unshared time.Duration // 0: not
		cut            bool
	}{
		{"connection down for a second, as when its NATS server dies", time.Second, time.Second, false},
		{"connection down for 5 s: no NATS server answers", 5 * time.Second, 5 * time.Second, true},
		{"writes refused for the longest leader election", 0, 10 * time.Second, false},
		{"writes refused for 12 s, the connection up: a partition", 0, 12 * time.Second, true},
		{"all well", 0, 0, false},
	} {
		since := func(d time.Duration) time.Time {
			if d == 0 {
				return time.Time{}
			}
			return time.Now().Add(-d)
		}
		if got := n.cutOff(since(c.down), since(c.unshared)); got != c.cut {
			t.Errorf("%s: cut off %v, want %v", c.what, got, c.cut)
		}
	}
}
