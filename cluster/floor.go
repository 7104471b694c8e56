package cluster

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/plenum-voice/plenum/server"
)

// The floor of each hall (who holds it, who waits, until when, and the
// minutes of a hall that keeps them) is one key of the floors' bucket,
// which JetStream keeps in memory, "floor.<key of the hall's path>", its value the
// hall's path and floor state as the server encodes them. A node writes
// its local floor actions with Update on the revision its floor builds
// on; when another node's revision came first, the node adopts it with its
// own actions replayed on top (server.ApplySharedFloor) and writes again,
// so of two actions at the same moment neither is lost.

const floorPrefix = "floor."

// maxFloorAttempts bounds the writes of one round of sharing a hall's
// floor; what is still unshared waits for the next round (a second).
const maxFloorAttempts = 8

func floorKey(path string) string { return floorPrefix + server.ChannelKey(path) }

// FloorChanged implements server.FloorSharer.
func (n *Node) FloorChanged(path string) {
	n.markFloor(path)
	select {
	case n.cfgWake <- struct{}{}:
	default:
	}
}

// markFloor notes that the floor of the hall at path is to be shared.
func (n *Node) markFloor(path string) {
	n.mu.Lock()
	if n.floorDirty == nil {
		n.floorDirty = map[string]bool{}
	}
	n.floorDirty[path] = true
	n.mu.Unlock()
}

// startFloors adopts the cluster's floor of each of this node's halls.
func (n *Node) startFloors(ctx context.Context, host *server.Server, kv jetstream.KeyValue) {
	for path := range host.FloorHalls() {
		if e, err := kv.Get(ctx, floorKey(path)); err == nil {
			host.ApplySharedFloor(e.Value(), e.Revision())
		}
	}
}

// pollFloors adopts any floor revision the watch missed.
func (n *Node) pollFloors(ctx context.Context, host *server.Server, st *sharedState) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	for path, rev := range host.FloorHalls() {
		if e, err := st.floors.Get(ctx, floorKey(path)); err == nil && e.Revision() > rev {
			host.ApplySharedFloor(e.Value(), e.Revision())
		}
	}
}

// shareFloors writes the floors with local actions not shared yet.
func (n *Node) shareFloors(ctx context.Context, host *server.Server, st *sharedState) {
	n.mu.Lock()
	dirty := n.floorDirty
	n.floorDirty = nil
	n.mu.Unlock()
	for path := range dirty {
		if !n.shareFloor(ctx, host, st, path) {
			n.markFloor(path) // again at the next tick
		}
	}
}

// shareFloor writes the floor of the hall at path until the cluster has
// this node's actions, and reports whether it has.
func (n *Node) shareFloor(ctx context.Context, host *server.Server, st *sharedState, path string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	key := floorKey(path)
	for range maxFloorAttempts {
		data, base, actions := host.FloorToShare(path)
		if actions == 0 {
			return true
		}
		var rev uint64
		var err error
		if base == 0 {
			rev, err = st.floors.Create(ctx, key, data)
		} else {
			rev, err = st.floors.Update(ctx, key, data, base)
		}
		if err == nil {
			host.FloorShared(path, rev, actions)
			return true
		}
		// Another node's revision came first (or NATS did not answer):
		// adopt the newest and try again on top of it.
		e, gerr := st.floors.Get(ctx, key)
		if gerr != nil || e.Revision() == base {
			n.log.Warn("a hall's floor not shared yet", "err", err)
			return false
		}
		host.ApplySharedFloor(e.Value(), e.Revision())
	}
	return false
}

// purgeOldFloors removes the floors, with their history, that nodes
// before the floors' bucket kept in the bucket of the configuration, on
// the NATS servers' disks: one request, no consumer.
func (n *Node) purgeOldFloors(ctx context.Context, bucket string) {
	stream, err := n.js.Stream(ctx, "KV_"+bucket)
	if err == nil {
		err = stream.Purge(ctx, jetstream.WithPurgeSubject("$KV."+bucket+"."+floorPrefix+">"))
	}
	if err != nil {
		n.log.Warn("removing old floors from the configuration's bucket failed", "err", err)
	}
}

// remoteFloor adopts a floor revision another node wrote.
func (n *Node) remoteFloor(host *server.Server, e jetstream.KeyValueEntry) {
	if e != nil && e.Operation() == jetstream.KeyValuePut {
		host.ApplySharedFloor(e.Value(), e.Revision())
	}
}

var _ server.FloorSharer = (*Node)(nil)
