package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/plenum-voice/plenum/cluster"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// startNATSCluster starts three embedded NATS servers routed into one
// NATS cluster, and waits until JetStream has a leader.
func startNATSCluster(t testing.TB) []*natsserver.Server {
	return growNATSCluster(t, nil, 3)
}

// growNATSCluster starts n more embedded NATS servers in the NATS cluster
// of servers, and waits until JetStream is current on all. Each takes a
// free route port and routes to those started before it, so that every
// pair is joined without waiting for NATS's gossip.
func growNATSCluster(t testing.TB, servers []*natsserver.Server, n int) []*natsserver.Server {
	t.Helper()
	var routes []string
	for _, ns := range servers {
		routes = append(routes, "nats://"+ns.ClusterAddr().String())
	}
	for range n {
		ns, err := cluster.StartEmbedded(cluster.EmbeddedOptions{
			Name: fmt.Sprintf("nats%d", len(servers)+1), Listen: "127.0.0.1:-1", StoreDir: t.TempDir(),
			Cluster: "test-nats", ClusterListen: "127.0.0.1:-1", Routes: routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Shutdown)
		servers = append(servers, ns)
		routes = append(routes, "nats://"+ns.ClusterAddr().String())
	}
	waitUntil(t, 30*time.Second, "JetStream ready in the NATS cluster", func() bool {
		for _, ns := range servers {
			if !ns.JetStreamIsCurrent() {
				return false
			}
		}
		_, err := bucketIn(servers[0].ClientURL(), "none")
		return err == nil || err == jetstream.ErrBucketNotFound
	})
	return servers
}

// bucketIn reports on the bucket named bucket, through the NATS server at url.
func bucketIn(url, bucket string) (*jetstream.KeyValueBucketStatus, error) {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	return st.(*jetstream.KeyValueBucketStatus), nil
}

// TestSharedStateInThreeCopies: on a NATS cluster of three servers the
// buckets are made with three copies, or given them if they were made
// with fewer, so the state survives the loss of the server that leads
// them: an edit made after it died is shared.
func TestSharedStateInThreeCopies(t *testing.T) {
	servers := startNATSCluster(t)
	var urls []string
	for _, ns := range servers {
		urls = append(urls, ns.ClientURL())
	}
	// The bucket of node numbers as a node made it while a NATS server
	// was missing: one copy.
	nc, err := nats.Connect(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "plenum_test_nodes", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	nc.Close()

	edit := func(c *conf.Config) {
		c.ACL = append(c.ACL, conf.ACLEntry{Group: "all", Allow: []string{"MakeChannel", "Write"}})
	}
	node1 := startNodeOn(t, urls, "node1", t.TempDir(), edit, server.NoWeb)
	node2 := startNodeOn(t, urls, "node2", t.TempDir(), edit, server.NoWeb)
	user1, user2 := joinWith(t, node1, "user1", newCert(t)), joinWith(t, node2, "user2", newCert(t))
	for _, u := range []*listener{user1, user2} {
		waitUntil(t, 10*time.Second, "both users seen", func() bool { return len(u.Users()) == 2 })
	}
	for _, n := range []*testNode{node1, node2} {
		waitUntil(t, 10*time.Second, "the shared state started", n.node.HasSharedState)
	}
	var leader string
	for _, bucket := range []string{"plenum_test_nodes", "plenum_test_config"} {
		var st *jetstream.KeyValueBucketStatus
		waitUntil(t, 10*time.Second, bucket+" made, with a leader", func() bool {
			var err error
			st, err = bucketIn(servers[0].ClientURL(), bucket)
			return err == nil && st.StreamInfo().Cluster != nil && st.StreamInfo().Cluster.Leader != ""
		})
		if got := st.StreamInfo().Config.Replicas; got != 3 {
			t.Errorf("%s has %d copies, want 3", bucket, got)
		}
		leader = st.StreamInfo().Cluster.Leader // the configuration's, last
	}

	// The server leading the configuration's copies dies.
	var alive *natsserver.Server
	for _, ns := range servers {
		if ns.Name() == leader {
			ns.Shutdown()
			ns.WaitForShutdown()
		} else {
			alive = ns
		}
	}
	root := channelNamed(t, user2.Client, "Root")
	if err := user2.Send(&mumblepb.ChannelState{Parent: &root, Name: ptr("After the loss")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the channel on node 2", func() bool { return hasChannel(user2.Client, "After the loss") })
	waitUntil(t, 15*time.Second, "the channel made after the loss on node 1", func() bool { return hasChannel(user1.Client, "After the loss") })
	st, err := bucketIn(alive.ClientURL(), "plenum_test_config")
	if err != nil {
		t.Fatal(err)
	}
	if st.StreamInfo().Cluster == nil || st.StreamInfo().Cluster.Leader == leader {
		t.Errorf("the configuration's bucket is still led by the dead server %s", leader)
	}
	if node1.CutOff() || node2.CutOff() {
		t.Error("a node counts as cut off although two NATS servers remain")
	}
	// The copies may have waited up to 9 s for a new leader: nobody
	// may have been told of a cut meanwhile, not even for a moment.
	for _, u := range []*listener{user1, user2} {
		if u.gotText("lost its connection") {
			t.Error("a user was told of a cut although two NATS servers remain")
		}
	}
}

// A NATS cluster of two JetStream servers cannot place three copies: the
// first node makes its buckets with one, and the next node that starts
// when a third server has joined gives them three.
func TestBucketsOnTwoNATSServers(t *testing.T) {
	servers := growNATSCluster(t, nil, 2)
	urls := []string{servers[0].ClientURL(), servers[1].ClientURL()}
	node1 := startNodeOn(t, urls, "node1", t.TempDir(), nil, server.NoWeb)
	waitUntil(t, 10*time.Second, "node 1's shared state started", node1.node.HasSharedState)
	buckets := []string{"plenum_test_nodes", "plenum_test_config", "plenum_test_floors"}
	copies := func(want int) {
		t.Helper()
		for _, bucket := range buckets {
			waitUntil(t, 10*time.Second, fmt.Sprintf("%s with %d copies", bucket, want), func() bool {
				st, err := bucketIn(servers[0].ClientURL(), bucket)
				return err == nil && st.StreamInfo().Config.Replicas == want
			})
		}
	}
	copies(1)

	servers = growNATSCluster(t, servers, 1)
	startNodeOn(t, append(urls, servers[2].ClientURL()), "node2", t.TempDir(), nil, server.NoWeb)
	copies(3)
}

// A node started together with its NATS cluster, before JetStream has a
// leader, waits for it instead of failing.
func TestNodeStartsWithItsNATSCluster(t *testing.T) {
	var routes, urls []string
	for i := range 3 {
		ns, err := cluster.StartEmbedded(cluster.EmbeddedOptions{
			Name: fmt.Sprintf("nats%d", i+1), Listen: "127.0.0.1:-1", StoreDir: t.TempDir(),
			Cluster: "test-nats", ClusterListen: "127.0.0.1:-1", Routes: routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Shutdown)
		routes = append(routes, "nats://"+ns.ClusterAddr().String())
		urls = append(urls, ns.ClientURL())
	}
	node := startNodeOn(t, urls, "node1", t.TempDir(), nil, server.NoWeb)
	waitUntil(t, 20*time.Second, "the shared state started", node.node.HasSharedState)
}
