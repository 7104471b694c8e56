package cluster

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/plenum-voice/plenum/conf"
)

// EmbeddedOptions configure a NATS server run inside the process.
type EmbeddedOptions struct {
	Name          string // the server's name; unique in a NATS cluster
	Listen        string // client address, host:port; port -1 picks a free one
	StoreDir      string // JetStream's directory
	Cluster       string // NATS cluster name, with ClusterListen and Routes
	ClusterListen string // route address of this server, host:port ("" = no NATS cluster)
	Routes        []string
}

// EmbeddedFromConfig is the embedded server a node's [cluster] asks for,
// with JetStream in the data directory.
func EmbeddedFromConfig(c conf.Cluster, dataDir string) EmbeddedOptions {
	listen := c.EmbeddedListen
	if listen == "" {
		listen = conf.DefaultEmbeddedListen
	}
	return EmbeddedOptions{
		Name: c.NodeName(), Listen: listen, StoreDir: filepath.Join(dataDir, "nats"),
		Cluster: c.Name, ClusterListen: c.EmbeddedClusterListen, Routes: c.EmbeddedRoutes,
	}
}

// StartEmbedded starts a NATS server with JetStream in this process and
// waits until it accepts clients. The caller shuts it down.
func StartEmbedded(o EmbeddedOptions) (*natsserver.Server, error) {
	host, port, err := splitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS listen address: %w", err)
	}
	opts := &natsserver.Options{
		ServerName: o.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	}
	if o.ClusterListen != "" {
		chost, cport, err := splitHostPort(o.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS cluster address: %w", err)
		}
		opts.Cluster = natsserver.ClusterOpts{Name: o.Cluster, Host: chost, Port: cport}
		opts.Routes = natsserver.RoutesFromStr(strings.Join(o.Routes, ","))
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, err
	}
	ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS server did not become ready")
	}
	return ns, nil
}

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}
