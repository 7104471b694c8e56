package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/plenum-voice/plenum/cluster"
	"github.com/plenum-voice/plenum/conf"
)

// joinCluster starts what the [cluster] table asks for: an embedded NATS
// server if embedded is set, and this node's NATS connection. It returns
// nil for a single node, and a stop function that ends both once the
// server has stopped.
func joinCluster(cfg *conf.Config, dataDir string, log *slog.Logger) (*cluster.Node, func(), error) {
	c := cfg.Cluster
	if !c.Enabled() {
		return nil, func() {}, nil
	}
	if dataDir == "" {
		dataDir = cfg.Server.DataDir
	}
	if !c.Embedded && len(c.NATSURLs) == 0 {
		return nil, nil, errors.New(conf.ErrNoNATS)
	}
	stopEmbedded := func() {}
	urls := c.NATSURLs
	if c.Embedded {
		ns, err := cluster.StartEmbedded(cluster.EmbeddedFromConfig(c, dataDir))
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: embedded NATS server: %w", err)
		}
		stopEmbedded = func() { ns.Shutdown(); ns.WaitForShutdown() }
		if len(urls) == 0 {
			addr := ns.Addr().(*net.TCPAddr)
			urls = []string{"nats://" + net.JoinHostPort(loopbackFor(addr.IP), strconv.Itoa(addr.Port))}
		}
		log.Info("embedded NATS server", "client_port", ns.Addr().(*net.TCPAddr).Port)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := cluster.Dial(ctx, cluster.Options{Cluster: c.Name, NodeName: c.NodeName(), URLs: urls, Logger: log,
		StateFile: filepath.Join(dataDir, "cluster-state.json")})
	if err != nil {
		stopEmbedded()
		return nil, nil, err
	}
	return node, func() { node.Close(); stopEmbedded() }, nil
}

// loopbackFor is the address to reach a server bound to ip from this host.
func loopbackFor(ip net.IP) string {
	if ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return ip.String()
}
