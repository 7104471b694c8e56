package cluster

import (
	"context"
	"errors"

	"github.com/plenum-voice/plenum/server"
)

// ShareOnStaleRevision makes n share data as an edit by editors made on
// revision stale, as a node that had not yet seen a newer revision
// would: the compare-and-set must refuse it.
func (n *Node) ShareOnStaleRevision(host *server.Server, stale uint64, data []byte, editors []uint32) error {
	done := make(chan error)
	n.inRun <- func() { // on Run's goroutine, which owns the documents
		st := n.shared
		if st == nil {
			done <- errors.New("no shared state")
			return
		}
		d := st.docs[configKey]
		saved := d.rev
		d.rev, d.pending, d.editors = stale, data, editors
		n.shareLocal(context.Background(), host, st, d)
		if d.rev == stale {
			d.rev = saved
		}
		done <- nil
	}
	return <-done
}

// HasSharedState reports whether n has started its shared state.
func (n *Node) HasSharedState() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.shared != nil
}
