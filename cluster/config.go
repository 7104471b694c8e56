package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/plenum-voice/plenum/server"
)

// The shared configuration (channels, groups, ACLs) is one key of a
// JetStream key-value bucket. A node writes a new revision only with
// Update on the revision it last saw (compare-and-set), so of two edits
// made at once on two nodes one wins and the other is refused, its
// editors told why, and the winner applied on that node too.

const configKey = "tree"

// configState is the node's view of the shared configuration; Run owns
// it, ConfigChanged hands it changes through pending.
type configState struct {
	kv    jetstream.KeyValue
	rev   uint64 // the revision this node runs
	known []byte // its content
	watch jetstream.KeyWatcher
}

// ConfigChanged implements server.ConfigSharer: it keeps the newest
// version for Run, which shares it.
func (n *Node) ConfigChanged(shared []byte, editors []uint32) {
	n.mu.Lock()
	n.cfgPending = shared
	n.cfgEditors = append(n.cfgEditors, editors...)
	n.mu.Unlock()
	select {
	case n.cfgWake <- struct{}{}:
	default:
	}
}

// startConfig opens the bucket and brings this node to the cluster's
// revision: a node that finds none makes its own configuration the
// first; otherwise the cluster's revision replaces the node's file.
func (n *Node) startConfig(host *server.Server) (*configState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js := n.js
	bucket := "plenum_" + n.opts.Cluster + "_config"
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 10, Replicas: n.replicas()})
		if err != nil {
			kv, err = js.KeyValue(ctx, bucket) // another node created it meanwhile
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the configuration bucket: %w", err)
	}
	cs := &configState{kv: kv}
	local, err := host.CurrentSharedConfig()
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, configKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		if rev, cerr := kv.Create(ctx, configKey, local); cerr == nil {
			cs.rev, cs.known, err = rev, local, nil
			n.log.Info("this node's configuration is the cluster's first revision", "revision", rev)
		} else {
			e, err = kv.Get(ctx, configKey) // another node was first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's configuration: %w", err)
	}
	if e != nil && cs.known == nil {
		cs.rev, cs.known = e.Revision(), e.Value()
		if !bytes.Equal(local, cs.known) {
			n.log.Info("applying the cluster's configuration revision to this node's file", "revision", cs.rev)
			if err := host.ApplySharedConfig(cs.known); err != nil {
				return nil, err
			}
		}
	}
	if cs.watch, err = kv.Watch(context.Background(), configKey, jetstream.UpdatesOnly()); err != nil {
		return nil, err
	}
	return cs, nil
}

// remoteRevision applies a revision another node wrote.
func (n *Node) remoteRevision(host *server.Server, cs *configState, e jetstream.KeyValueEntry) {
	if e == nil || e.Operation() != jetstream.KeyValuePut || e.Revision() <= cs.rev {
		return
	}
	cs.rev = e.Revision()
	if bytes.Equal(e.Value(), cs.known) {
		return
	}
	cs.known = e.Value()
	if err := host.ApplySharedConfig(cs.known); err != nil {
		n.log.Error("a configuration revision from the cluster could not be applied", "revision", cs.rev, "err", err)
		return
	}
	n.log.Info("configuration revision from another node applied", "revision", cs.rev)
}

// shareLocal writes this node's changed configuration as the cluster's
// next revision, or, when another node's revision came first, refuses it
// and applies that one.
func (n *Node) shareLocal(host *server.Server, cs *configState) {
	n.mu.Lock()
	data, editors := n.cfgPending, n.cfgEditors
	n.cfgPending, n.cfgEditors = nil, nil
	n.mu.Unlock()
	if data == nil || bytes.Equal(data, cs.known) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rev, err := cs.kv.Update(ctx, configKey, data, cs.rev)
	switch {
	case err == nil:
		cs.rev, cs.known = rev, data
		n.log.Info("configuration shared as the cluster's new revision", "revision", rev)
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		e, gerr := cs.kv.Get(ctx, configKey)
		if gerr != nil {
			n.log.Error("reading the cluster's configuration after a conflict failed", "err", gerr)
			return
		}
		n.log.Warn("configuration change refused: another node changed it first", "revision", e.Revision())
		host.RefuseEdit(editors, fmt.Sprintf("another server of the plenary changed the configuration at the same moment (revision %d), and its version is now in force here too.", e.Revision()))
		n.remoteRevision(host, cs, e)
	default:
		// Not shared (NATS unreachable): keep it for the next attempt.
		n.log.Warn("configuration change not shared yet", "err", err)
		n.mu.Lock()
		if n.cfgPending == nil {
			n.cfgPending = data
		}
		n.cfgEditors = append(editors, n.cfgEditors...)
		n.mu.Unlock()
	}
}
