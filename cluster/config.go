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

// Shared durable state is kept as documents, each one key of a JetStream
// key-value bucket: the registrations (with SuperUser's password), the
// configuration (channels, groups, ACLs) and the ban list. A node writes a new revision only with Update on the revision
// it last saw (compare-and-set), so of two edits made at once on two nodes
// one wins and the other is refused, its editors told why, and the winner
// applied on that node too.

// document is one shared key as this node sees it. Run owns rev and
// known; offer hands it changes through pending, under Node.mu.
type document struct {
	key     string
	what    string // for the editors and the log: "channels or ACLs", "the ban list"
	current func() ([]byte, error)
	apply   func([]byte) error

	rev   uint64 // the revision this node runs
	known []byte // its content

	pending []byte   // this node's version, not shared yet
	editors []uint32 // whose edits are in it
}

// sharedState is the bucket and its documents, and the bucket of the
// halls' floors (floor.go), which JetStream keeps in memory only: a
// floor names the people waiting, registered or not, and is kept in
// memory on a single server too.
type sharedState struct {
	kv         jetstream.KeyValue
	watch      jetstream.KeyWatcher
	docs       map[string]*document
	floors     jetstream.KeyValue
	floorWatch jetstream.KeyWatcher
}

// The keys of the documents.
const (
	configKey = "tree"
	bansKey   = "bans"
	usersKey  = "users"
)

// documents are the node's shared documents, in the order they are
// brought up to date at start.
func (n *Node) documents(host *server.Server) []*document {
	return []*document{
		// Registrations first: the configuration's ACLs name users.
		{key: usersKey, what: "the registered users", current: host.SharedUsers, apply: host.ApplySharedUsers},
		{key: configKey, what: "channels or ACLs", current: host.CurrentSharedConfig, apply: host.ApplySharedConfig},
		{key: bansKey, what: "the ban list", current: host.SharedBans, apply: host.ApplySharedBans},
	}
}

// ConfigChanged implements server.ConfigSharer.
func (n *Node) ConfigChanged(shared []byte, editors []uint32) { n.offer(configKey, shared, editors) }

// UsersChanged implements server.UserSharer.
func (n *Node) UsersChanged(shared []byte, editors []uint32) { n.offer(usersKey, shared, editors) }

// BansChanged implements server.BanSharer.
func (n *Node) BansChanged(shared []byte, editors []uint32) { n.offer(bansKey, shared, editors) }

// offer keeps the newest local version of a document for Run, which
// shares it.
func (n *Node) offer(key string, data []byte, editors []uint32) {
	n.mu.Lock()
	if n.shared != nil {
		if d, ok := n.shared.docs[key]; ok {
			d.pending = data
			d.editors = append(d.editors, editors...)
		}
	}
	n.mu.Unlock()
	select {
	case n.cfgWake <- struct{}{}:
	default:
	}
}

// startShared opens the bucket and brings this node to the cluster's
// revision of each document: a node that finds none makes its own the
// first; otherwise the cluster's revision replaces the node's.
func (n *Node) startShared(ctx context.Context, host *server.Server) (*sharedState, error) {
	// A request to a bucket whose copies have no leader yet can go
	// unanswered: give up soon and try again (shareLoop), rather than
	// leave the node out of the cluster's state for long.
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	bucket := "plenum_" + n.opts.Cluster + "_config"
	kv, err := n.openBucket(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 10})
	if err != nil {
		return nil, fmt.Errorf("the shared state's bucket: %w", err)
	}
	if n.synced, err = loadSynced(n.opts.StateFile); err != nil {
		return nil, err
	}
	st := &sharedState{kv: kv, docs: map[string]*document{}}
	for _, d := range n.documents(host) {
		if err := n.startDocument(ctx, kv, d); err != nil {
			return nil, err
		}
		st.docs[d.key] = d
	}
	if st.floors, err = n.openBucket(ctx, jetstream.KeyValueConfig{Bucket: "plenum_" + n.opts.Cluster + "_floors", Storage: jetstream.MemoryStorage}); err != nil {
		return nil, fmt.Errorf("the floors' bucket: %w", err)
	}
	n.startFloors(ctx, host, st.floors)
	if st.watch, err = kv.WatchAll(context.WithoutCancel(ctx), jetstream.UpdatesOnly()); err != nil {
		return nil, err
	}
	if st.floorWatch, err = st.floors.WatchAll(context.WithoutCancel(ctx), jetstream.UpdatesOnly()); err != nil {
		st.watch.Stop()
		return nil, err
	}
	n.mu.Lock()
	n.shared = st
	n.mu.Unlock()
	n.purgeOldFloors(ctx, bucket)
	return st, nil
}

func (n *Node) startDocument(ctx context.Context, kv jetstream.KeyValue, d *document) error {
	local, err := d.current()
	if err != nil {
		return err
	}
	e, err := kv.Get(ctx, d.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		rev, cerr := kv.Create(ctx, d.key, local)
		if cerr == nil {
			d.rev, d.known = rev, local
			n.note(d.key, rev, local)
			n.log.Info("this node's version is the cluster's first", "shared", d.key, "revision", rev)
			return nil
		}
		e, err = kv.Get(ctx, d.key) // another node was first
	}
	if err != nil {
		return fmt.Errorf("reading the cluster's %s: %w", d.key, err)
	}
	d.rev, d.known = e.Revision(), e.Value()
	if bytes.Equal(local, d.known) {
		n.note(d.key, d.rev, d.known)
		return nil
	}
	last, recorded := n.synced[d.key]
	changedHere := recorded && contentSum(local) != last.SHA256
	switch {
	case changedHere && last.Revision == d.rev:
		// Changed here while stopped, on top of the cluster's revision.
		if rev, err := kv.Update(ctx, d.key, local, d.rev); err == nil {
			d.rev, d.known = rev, local
			n.note(d.key, rev, local)
			n.log.Info("a change made here while the node was stopped is the cluster's new revision", "shared", d.key, "revision", rev)
			return nil
		}
	case changedHere:
		n.log.Warn("changed here while the node was stopped, and in the cluster meanwhile: the cluster's revision wins",
			"shared", d.key, "revision", d.rev, "agreed_revision", last.Revision)
	}
	n.log.Info("taking the cluster's revision", "shared", d.key, "revision", d.rev)
	if err := d.apply(d.known); err != nil {
		return err
	}
	n.note(d.key, d.rev, d.known)
	return nil
}

// remoteRevision applies a revision another node wrote.
func (n *Node) remoteRevision(st *sharedState, e jetstream.KeyValueEntry) {
	if e == nil || e.Operation() != jetstream.KeyValuePut {
		return
	}
	d, ok := st.docs[e.Key()] // not a floor an older node left here (floor.go)
	if !ok || e.Revision() <= d.rev {
		return
	}
	d.rev = e.Revision()
	if bytes.Equal(e.Value(), d.known) {
		return
	}
	d.known = e.Value()
	if err := d.apply(d.known); err != nil {
		n.log.Error("a revision from the cluster could not be applied", "shared", d.key, "revision", d.rev, "err", err)
		return
	}
	n.note(d.key, d.rev, d.known)
	n.log.Info("revision from another node applied", "shared", d.key, "revision", d.rev)
}

// pollShared reads each document's newest revision, for a revision the
// watch missed (its consumer is reset when its heartbeats stop, and what
// was written meanwhile does not come again).
func (n *Node) pollShared(ctx context.Context, st *sharedState) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	for key, d := range st.docs {
		if e, err := st.kv.Get(ctx, key); err == nil && e.Revision() > d.rev {
			n.remoteRevision(st, e)
		}
	}
}

// shareAll shares what changed locally in any document.
func (n *Node) shareAll(ctx context.Context, host *server.Server, st *sharedState) {
	for _, d := range st.docs {
		n.shareLocal(ctx, host, st, d)
	}
}

// shareLocal writes this node's changed document as the cluster's next
// revision, or, when another node's revision came first, refuses it and
// applies that one.
func (n *Node) shareLocal(ctx context.Context, host *server.Server, st *sharedState, d *document) {
	n.mu.Lock()
	data, editors := d.pending, d.editors
	d.pending, d.editors = nil, nil
	n.mu.Unlock()
	if data == nil || bytes.Equal(data, d.known) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rev, err := st.kv.Update(ctx, d.key, data, d.rev)
	switch {
	case err == nil:
		d.rev, d.known = rev, data
		n.note(d.key, rev, data)
		n.log.Info("shared as the cluster's new revision", "shared", d.key, "revision", rev)
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		e, gerr := st.kv.Get(ctx, d.key)
		if gerr != nil {
			n.log.Error("reading the cluster's revision after a conflict failed", "shared", d.key, "err", gerr)
			return
		}
		n.log.Warn("change refused: another node changed it first", "shared", d.key, "revision", e.Revision())
		host.RefuseEdit(editors, d.what, fmt.Sprintf("another server of the plenary changed it at the same moment (revision %d), and its version is now in force here too.", e.Revision()))
		n.remoteRevision(st, e)
	default:
		// Not shared (NATS unreachable): keep it for the next attempt.
		n.log.Warn("change not shared yet", "shared", d.key, "err", err)
		n.mu.Lock()
		if d.pending == nil {
			d.pending = data
		}
		d.editors = append(editors, d.editors...)
		n.mu.Unlock()
	}
}
