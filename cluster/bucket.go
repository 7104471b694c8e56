package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// clusterReplicas is how many copies of each bucket a node asks for on a
// NATS cluster: three, so that the buckets survive the loss of one NATS
// server, and a write needs two of them, which the minority side of a
// partition does not have.
const clusterReplicas = 3

// JetStream's answers when it cannot place the copies asked for: too
// few servers with room, or too few servers it can place them on. A NATS
// cluster whose servers are still meeting answers the second for a
// moment; one with fewer than three JetStream servers answers it for good.
const (
	jsInsufficientResources jetstream.ErrorCode = 10023
	jsNoSuitablePeers       jetstream.ErrorCode = 10005
)

// placementWait is how long a node asks again for three copies of a new
// bucket before it makes the bucket with one.
const placementWait = 5 * time.Second

// openBucket opens the cluster's bucket of cfg.Bucket, making it if no
// node has yet, with the node's number of copies: three when its NATS
// server is part of a NATS cluster that can place them, else one. A
// bucket found with fewer copies (made while a NATS server was missing)
// is given them now if it can be.
func (n *Node) openBucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = n.replicas
	kv, err := n.js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return n.createBucket(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	n.checkReplicas(ctx, kv, cfg)
	return kv, nil
}

func (n *Node) createBucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for {
		kv, err := n.js.CreateKeyValue(ctx, cfg)
		switch {
		case errors.Is(err, jetstream.ErrBucketExists):
			return n.js.KeyValue(ctx, cfg.Bucket) // another node made it meanwhile
		case cfg.Replicas == 1 || !cannotPlace(err):
			return kv, err
		}
		if n.unplaceable.IsZero() { // counted over attempts, which may be short
			n.unplaceable = time.Now()
		}
		switch {
		case time.Since(n.unplaceable) < placementWait:
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(250 * time.Millisecond):
			}
		default:
			n.log.Warn("the NATS cluster has too few servers with JetStream for three copies of the shared state: kept in one copy until a node starts when it has",
				"bucket", cfg.Bucket, "err", err)
			n.replicas, cfg.Replicas = 1, 1
		}
	}
}

func cannotPlace(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jsInsufficientResources || apiErr.ErrorCode == jsNoSuitablePeers)
}

// checkReplicas gives the bucket the copies cfg asks for, if it has
// fewer; JetStream copies its content to the new replicas.
func (n *Node) checkReplicas(ctx context.Context, kv jetstream.KeyValue, cfg jetstream.KeyValueConfig) {
	status, err := kv.Status(ctx)
	if err != nil {
		return
	}
	js, ok := status.(*jetstream.KeyValueBucketStatus)
	if !ok || js.StreamInfo().Config.Replicas >= cfg.Replicas {
		return
	}
	have := js.StreamInfo().Config.Replicas
	if _, err := n.js.UpdateKeyValue(ctx, cfg); err != nil {
		n.log.Warn("the shared state is kept in fewer copies than asked for", "bucket", cfg.Bucket, "copies", have, "asked", cfg.Replicas, "err", err)
		return
	}
	n.log.Info("the shared state's copies raised", "bucket", cfg.Bucket, "from", have, "to", cfg.Replicas)
}
