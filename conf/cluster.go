package conf

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"time"
)

// Cluster is the [cluster] table: this node's place in a cluster of Plenum
// nodes that serve one channel tree over NATS (package cluster). Without a
// name the server is a single node and needs no NATS at all.
type Cluster struct {
	Name     string   `toml:"name"`      // the cluster's name; every node of one plenary uses the same; "" = no cluster
	NATSURLs []string `toml:"nats_urls"` // NATS servers to connect to, e.g. "nats://10.0.0.1:4222"
	Node     string   `toml:"node"`      // this node's name, unique in the cluster; default: the host name

	// Embedded runs a NATS server (with JetStream, in the data directory)
	// inside this process; the node connects to it unless nats_urls says
	// otherwise. For small set-ups and tests.
	Embedded bool `toml:"embedded"`
	// EmbeddedListen is the embedded server's client address; default
	// "127.0.0.1:4222".
	EmbeddedListen string `toml:"embedded_listen"`
	// EmbeddedClusterListen and EmbeddedRoutes join several embedded
	// servers into one NATS cluster: this server's route address and the
	// route URLs of the others ("nats://10.0.0.2:6222").
	EmbeddedClusterListen string   `toml:"embedded_cluster_listen"`
	EmbeddedRoutes        []string `toml:"embedded_routes"`

	// FailoverWait is how long the users of a node that died are expected
	// back on another node: their channel is kept for them (in memory)
	// and their place in a floor's queue held. Default 5 minutes.
	FailoverWait Duration `toml:"failover_wait"`
}

// DefaultFailoverWait is failover_wait when the file does not set it.
const DefaultFailoverWait = 5 * time.Minute

// Wait is failover_wait, or its default.
func (c *Cluster) Wait() time.Duration {
	if c.FailoverWait.Duration > 0 {
		return c.FailoverWait.Duration
	}
	return DefaultFailoverWait
}

// DefaultEmbeddedListen is where an embedded NATS server listens for
// clients unless embedded_listen says otherwise.
const DefaultEmbeddedListen = "127.0.0.1:4222"

// ErrNoNATS is the error of a cluster that names no NATS server.
const ErrNoNATS = "cluster: a cluster needs NATS: list its servers in nats_urls, or set embedded = true (or run plenum -cluster-embedded)"

// Enabled reports whether this node is part of a cluster.
func (c *Cluster) Enabled() bool { return c.Name != "" }

// natsToken is what a cluster or node name may be: one NATS subject token.
var natsToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// NodeName is the configured node name, or the host name (cut to what a
// subject token may hold).
func (c *Cluster) NodeName() string {
	if c.Node != "" {
		return c.Node
	}
	h, _ := os.Hostname()
	out := make([]byte, 0, len(h))
	for i := 0; i < len(h) && len(out) < 64; i++ {
		b := h[i]
		if b == '.' {
			break
		}
		if natsToken.Match([]byte{b}) {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return "node"
	}
	return string(out)
}

func (v *validator) cluster() {
	c := &v.c.Cluster
	bad := func(key, format string, args ...any) {
		v.errs = append(v.errs, &Error{File: v.c.File, Key: "cluster." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if !c.Enabled() {
		if c.Embedded || len(c.NATSURLs) > 0 || c.Node != "" {
			bad("name", "a [cluster] needs a name (the same on every node)")
		}
		return
	}
	// No NATS at all is refused when the node starts (NeedsNATS), since
	// plenum -cluster-embedded may still turn the embedded server on.
	if !natsToken.MatchString(c.Name) {
		bad("name", "%q: use 1 to 64 letters, digits, '-' or '_'", c.Name)
	}
	if c.Node != "" && !natsToken.MatchString(c.Node) {
		bad("node", "%q: use 1 to 64 letters, digits, '-' or '_'", c.Node)
	}
	if c.EmbeddedListen != "" {
		if _, _, err := net.SplitHostPort(c.EmbeddedListen); err != nil {
			bad("embedded_listen", "want host:port: %v", err)
		}
	}
	if c.EmbeddedClusterListen != "" {
		if _, _, err := net.SplitHostPort(c.EmbeddedClusterListen); err != nil {
			bad("embedded_cluster_listen", "want host:port: %v", err)
		}
	}
	if c.FailoverWait.Duration < 0 {
		bad("failover_wait", "%v: want a positive duration such as \"5m\"", c.FailoverWait.Duration)
	}
	if len(c.EmbeddedRoutes) > 0 && c.EmbeddedClusterListen == "" {
		bad("embedded_routes", "routes need embedded_cluster_listen")
	}
}
