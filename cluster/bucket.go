package cluster

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// clusterReplicas is how many copies of each bucket a node asks for on a
// NATS cluster: three, so that the buckets survive the loss of one NATS
// server, and a write needs two of them, which the minority side of a
// partition does not have.
const clusterReplicas = 3

// jsInsufficientResources is JetStream's answer when it has too few
// servers for the copies asked for.
const jsInsufficientResources jetstream.ErrorCode = 10023

// openBucket opens the cluster's bucket of cfg.Bucket, making it if no
// node has yet: with three copies when the NATS server is part of a NATS
// cluster, else one. A bucket found with fewer copies than that (made
// while a NATS server was missing) is given them now if it can be.
func (n *Node) openBucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = 1
	if n.nc.ConnectedClusterName() != "" {
		cfg.Replicas = clusterReplicas
	}
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
	kv, err := n.js.CreateKeyValue(ctx, cfg)
	var apiErr *jetstream.APIError
	if cfg.Replicas > 1 && errors.As(err, &apiErr) && apiErr.ErrorCode == jsInsufficientResources {
		n.log.Warn("the NATS cluster has too few servers with JetStream for three copies of the shared state: kept in one copy until a node starts when it has",
			"bucket", cfg.Bucket)
		cfg.Replicas = 1
		kv, err = n.js.CreateKeyValue(ctx, cfg)
	}
	if errors.Is(err, jetstream.ErrBucketExists) {
		return n.js.KeyValue(ctx, cfg.Bucket) // another node made it meanwhile
	}
	return kv, err
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
