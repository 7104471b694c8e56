package cluster

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/plenum-voice/plenum/server"
)

// shareLoop owns the node's shared state (config.go, floor.go) and
// decides whether the node is cut off, until stop. Everything it does
// waits on JetStream, which is why it is not the liveness loop.
func (n *Node) shareLoop(host *server.Server, stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends with shareLoop, which cancels ctx
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var st *sharedState
	var updates, floorUpdates <-chan jetstream.KeyValueEntry
	// Until the shared state starts, the node runs on its own
	// configuration and bans and tries again soon: a bucket another node
	// has just made has no leader for a moment.
	var retry <-chan time.Time
	backoff := 50 * time.Millisecond
	failed := 0
	start := func() {
		var err error
		if st, err = n.startShared(ctx, host); err == nil {
			host.SetShared()
			updates, floorUpdates = st.watch.Updates(), st.floorWatch.Updates()
			n.log.Info("joined the cluster's shared state", "attempts_failed", failed)
			return
		}
		if backoff < n.opts.Heartbeat && 2*backoff >= n.opts.Heartbeat && ctx.Err() == nil {
			n.log.Warn("the shared state is not available yet; this node keeps its own configuration and bans meanwhile", "err", err)
		}
		failed++
		retry = time.After(backoff)
		backoff = min(2*backoff, n.opts.Heartbeat)
	}
	start()
	defer func() {
		if st != nil {
			st.watch.Stop()
			st.floorWatch.Stop()
		}
	}()
	var downSince time.Time // when the NATS connection went down; zero while up
	var unshared time.Time  // since when JetStream refused writes; zero while it takes them
	tick := time.NewTicker(n.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			answers := downSince.IsZero() && n.jetStreamAnswers(ctx)
			switch {
			case answers: // so the connection is up
				if !unshared.IsZero() {
					n.log.Info("JetStream takes this node's writes again", "after", time.Since(unshared).Round(100*time.Millisecond))
				}
				unshared = time.Time{}
				host.SetCutOff(false)
			case unshared.IsZero():
				unshared = time.Now()
				if downSince.IsZero() {
					n.log.Warn("JetStream does not take this node's writes: a leader election, or a partition of the NATS cluster")
				}
			}
			if n.cutOff(downSince, unshared) {
				host.SetCutOff(true)
			}
			if answers && st != nil {
				n.shareAll(ctx, host, st) // a change that could not be shared before
				n.pollShared(ctx, st)
				n.shareFloors(ctx, host, st)
				n.pollFloors(ctx, host, st)
			}
		case <-retry:
			start()
		case e := <-updates:
			n.remoteRevision(st, e)
		case e := <-floorUpdates:
			n.remoteFloor(host, e)
		case <-n.cfgWake:
			if st != nil {
				n.shareAll(ctx, host, st)
				n.shareFloors(ctx, host, st)
			}
		case f := <-n.inRun:
			f()
		case up := <-n.connUp:
			switch {
			case up:
				downSince = time.Time{} // the next tick checks JetStream
			case downSince.IsZero():
				downSince = time.Now()
			}
		}
	}
}

// cutOff tells whether a node whose connection has been down since
// downSince, and whose writes have failed since unshared (zero: not),
// is cut off (see DefaultCutOffAfter).
func (n *Node) cutOff(downSince, unshared time.Time) bool {
	if !downSince.IsZero() && time.Since(downSince) >= n.opts.CutOffAfter {
		return true
	}
	return !unshared.IsZero() && time.Since(unshared) >= n.opts.UnsharedCutOffAfter
}
