package cluster

import (
	"github.com/plenum-voice/plenum/server"
)

// ShareOnStaleRevision makes n share data as an edit by editors made on
// revision stale, as a node that had not yet seen a newer revision
// would: the compare-and-set must refuse it.
func (n *Node) ShareOnStaleRevision(host *server.Server, stale uint64, data []byte, editors []uint32) error {
	cs, err := n.startConfig(host)
	if err != nil {
		return err
	}
	defer cs.watch.Stop()
	cs.rev, cs.known = stale, nil
	n.mu.Lock()
	n.cfgPending, n.cfgEditors = data, editors
	n.mu.Unlock()
	n.shareLocal(host, cs)
	return nil
}
