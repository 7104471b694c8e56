package cluster_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/cluster"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/server"
)

// startNATS runs an embedded NATS server with JetStream on a free
// loopback port.
func startNATS(t testing.TB) *natsserver.Server {
	t.Helper()
	ns, err := cluster.StartEmbedded(cluster.EmbeddedOptions{Name: "test-nats", Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// testNode is one Plenum node of a test cluster.
type testNode struct {
	*server.Server
	node     *cluster.Node
	addr     string
	natsURLs []string // the NATS servers it knows
	stop     func()
}

func testLogger() *slog.Logger {
	if os.Getenv("PLENUM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startNode runs a node of cluster "test" named name against ns.
func startNode(t testing.TB, ns *natsserver.Server, name string, edit func(*conf.Config)) *testNode {
	t.Helper()
	return startNodeIn(t, ns, name, t.TempDir(), edit)
}

// startNodeIn runs a node with its data in dataDir: its configuration
// file there if it has one, and the record of its shared revisions.
func startNodeIn(t testing.TB, ns *natsserver.Server, name, dataDir string, edit func(*conf.Config)) *testNode {
	t.Helper()
	return startNodeWeb(t, ns, name, dataDir, edit, server.NoWeb)
}

// startNodeWeb is startNodeIn with the web listener (for browsers) on
// webListen, or none with server.NoWeb.
func startNodeWeb(t testing.TB, ns *natsserver.Server, name, dataDir string, edit func(*conf.Config), webListen string) *testNode {
	t.Helper()
	return startNodeOn(t, []string{ns.ClientURL()}, name, dataDir, edit, webListen)
}

// startNodeOn is startNodeWeb for a node that knows the NATS servers at urls.
func startNodeOn(t testing.TB, urls []string, name, dataDir string, edit func(*conf.Config), webListen string) *testNode {
	t.Helper()
	log := testLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node, err := cluster.Dial(ctx, cluster.Options{Cluster: "test", NodeName: name, URLs: urls, Logger: log,
		StateFile: filepath.Join(dataDir, "cluster-state.json")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := conf.Default()
	if loaded, err := conf.Load(filepath.Join(dataDir, server.DefaultConfigFile)); err == nil {
		cfg = loaded
	}
	cfg.Server.LegacyPingReply = true
	if edit != nil {
		edit(cfg)
	}
	if webListen != server.NoWeb {
		cfg.Server.WebUDPPort, cfg.Server.WebTCPPort = 0, 0 // several nodes share the machine
	}
	srv, err := server.New(server.Options{Config: cfg, Listen: "127.0.0.1:0", AdminListen: server.NoAdmin, WebListen: webListen,
		DataDir: dataDir, Logger: log, Cluster: node})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(sctx)
	}()
	var once sync.Once
	n := &testNode{Server: srv, node: node, addr: srv.Addr().String(), natsURLs: urls}
	n.stop = func() {
		once.Do(func() {
			stop()
			<-done
			node.Close()
		})
	}
	t.Cleanup(n.stop)
	// Until then it refuses edits of the shared documents (still joining).
	waitUntil(t, 10*time.Second, name+" has the cluster's shared state", node.HasSharedState)
	return n
}

// listener is a test client that keeps the voice it receives.
type listener struct {
	*client.Client
	mu     sync.Mutex
	audio  []client.AudioPacket
	texts  []*mumblepb.TextMessage
	denied []*mumblepb.PermissionDenied
}

func (l *listener) deniedReceived() []*mumblepb.PermissionDenied {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*mumblepb.PermissionDenied(nil), l.denied...)
}

// gotText reports whether l received a text message containing s.
func (l *listener) gotText(s string) bool { return l.gotTextSince(0, s) }

// mark is how many text messages l has received, for gotTextSince.
func (l *listener) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.texts)
}

// gotTextSince reports whether a text message containing s came after
// the first mark ones.
func (l *listener) gotTextSince(mark int, s string) bool {
	for _, m := range l.textsReceived()[mark:] {
		if strings.Contains(m.GetMessage(), s) {
			return true
		}
	}
	return false
}

func (l *listener) textsReceived() []*mumblepb.TextMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*mumblepb.TextMessage(nil), l.texts...)
}

func (l *listener) received() []client.AudioPacket {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]client.AudioPacket(nil), l.audio...)
}

func join(t testing.TB, n *testNode, name string) *listener {
	t.Helper()
	return joinWith(t, n, name, nil)
}

// newCert is a self-signed client certificate, which creating permanent
// channels asks for.
func newCert(t testing.TB) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "cluster test"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// joinWith joins with a certificate (nil: none) and access tokens.
func joinWith(t testing.TB, n *testNode, name string, cert *tls.Certificate, tokens ...string) *listener {
	t.Helper()
	l := &listener{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Address: n.addr, Username: name, Certificate: cert, Tokens: tokens, OnAudio: func(p *client.AudioPacket) {
		l.mu.Lock()
		l.audio = append(l.audio, *p)
		l.mu.Unlock()
	}, OnMessage: func(_ control.Type, m proto.Message) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch m := m.(type) {
		case *mumblepb.TextMessage:
			l.texts = append(l.texts, m)
		case *mumblepb.PermissionDenied:
			l.denied = append(l.denied, m)
		}
	}})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	l.Client = c
	return l
}

// waitUntil polls cond for up to d.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// userNamed is the state c has of the user called name, or nil.
func userNamed(c *client.Client, name string) *mumblepb.UserState {
	for _, u := range c.Users() {
		if u.GetName() == name {
			return u
		}
	}
	return nil
}

// channelNamed is the id c knows the channel called name by.
func channelNamed(t testing.TB, c *client.Client, name string) uint32 {
	t.Helper()
	for id, ch := range c.Channels() {
		if ch.GetName() == name {
			return id
		}
	}
	t.Fatalf("no channel %q", name)
	return 0
}

// threeNodes is a cluster of three nodes with one user on each.
func threeNodes(t *testing.T) (nodes [3]*testNode, users [3]*listener) {
	return threeNodesWith(t, nil)
}

func threeNodesWith(t *testing.T, edit func(*conf.Config)) (nodes [3]*testNode, users [3]*listener) {
	ns := startNATS(t)
	for i := range nodes {
		nodes[i] = startNode(t, ns, fmt.Sprintf("node%d", i+1), edit)
	}
	for i := range users {
		users[i] = join(t, nodes[i], fmt.Sprintf("user%d", i+1))
	}
	for _, u := range users {
		waitUntil(t, 5*time.Second, "every user sees all three", func() bool { return len(u.Users()) == 3 })
	}
	return nodes, users
}

func TestPresenceAcrossNodes(t *testing.T) {
	nodes, users := threeNodes(t)
	sessions := map[uint32]bool{}
	for i, u := range users {
		s := u.Session()
		if sessions[s] {
			t.Fatalf("session %d given twice", s)
		}
		sessions[s] = true
		if got, want := server.NodeOf(s), nodes[i].node.Node(); got != want {
			t.Errorf("user%d has session %d of node %d, want node %d", i+1, s, got, want)
		}
		for j, other := range users {
			st := userNamed(u.Client, fmt.Sprintf("user%d", j+1))
			if st == nil || st.GetSession() != other.Session() {
				t.Errorf("user%d sees user%d as %v, want session %d", i+1, j+1, st, other.Session())
			}
		}
	}

	// A state change and a move on node 1 reach nodes 2 and 3.
	if err := users[0].SetSelfMute(true, false); err != nil {
		t.Fatal(err)
	}
	plenary := channelNamed(t, users[0].Client, "Plenary")
	if err := users[0].Move(plenary); err != nil {
		t.Fatal(err)
	}
	for _, u := range users[1:] {
		target := channelNamed(t, u.Client, "Plenary")
		waitUntil(t, 5*time.Second, "user1's mute and move seen on another node", func() bool {
			st := userNamed(u.Client, "user1")
			return st != nil && st.GetSelfMute() && st.GetChannelId() == target
		})
	}
	if err := users[0].SetSelfMute(false, false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "unmute seen", func() bool {
		st := userNamed(users[2].Client, "user1")
		return st != nil && !st.GetSelfMute()
	})

	// The name is taken across the cluster.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := client.Dial(ctx, client.Config{Address: nodes[1].addr, Username: "user1"}); err == nil {
		c.Close()
		t.Error("a second user1 was let in on another node")
	}

	// The server-list ping counts the cluster.
	if got := pingUsers(t, nodes[2].addr); got != 3 {
		t.Errorf("server-list ping on node 3 says %d users, want 3", got)
	}

	// A user who leaves node 2 disappears everywhere.
	users[1].Close()
	for _, u := range []*listener{users[0], users[2]} {
		waitUntil(t, 5*time.Second, "user2 gone", func() bool { return userNamed(u.Client, "user2") == nil })
	}
}

// pingUsers sends a server-list ping and returns the user count it reports.
func pingUsers(t testing.TB, addr string) uint32 {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || n < 24 {
		t.Fatalf("server-list ping: %d bytes, %v", n, err)
	}
	return binary.BigEndian.Uint32(buf[12:16])
}

// speak sends n frames numbered from first from l to target, 2 ms apart.
func speak(t testing.TB, l *listener, target uint32, first, n int) {
	t.Helper()
	speakEvery(t, l, target, first, n, 2*time.Millisecond)
}

// speakEvery sends n frames, one every interval (20 ms is real time,
// which a stage's jitter buffer expects).
func speakEvery(t testing.TB, l *listener, target uint32, first, n int, interval time.Duration) {
	t.Helper()
	next := time.Now()
	for i := first; i < first+n; i++ {
		if err := l.SendAudio(target, uint64(i), []byte{0xfc, byte(i), byte(i >> 8), 0x55}, i == first+n-1, nil); err != nil {
			t.Fatal(err)
		}
		next = next.Add(interval)
		time.Sleep(time.Until(next))
	}
}

// framesFrom counts the distinct frames l received from sender in ctx.
func framesFrom(l *listener, sender uint32, ctx uint8) int {
	seen := map[uint64]bool{}
	for _, p := range l.received() {
		if p.Sender == sender && p.Context == ctx {
			seen[p.Frame] = true
		}
	}
	return len(seen)
}

func TestVoiceAcrossNodes(t *testing.T) {
	nodes, users := threeNodes(t)
	for _, u := range users {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := u.WaitUDP(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	const frames = 200
	speaker := users[0].Session()
	speak(t, users[0], 0, 0, frames)
	for i, u := range users[1:] {
		waitUntil(t, 5*time.Second, fmt.Sprintf("user%d hears all of user1's speech", i+2), func() bool {
			return framesFrom(u, speaker, wire.ContextNormal) == frames
		})
	}

	// A whisper from node 1 to the user on node 3 reaches only them.
	if err := users[0].SetVoiceTarget(1, &mumblepb.VoiceTarget_Target{Session: []uint32{users[2].Session()}}); err != nil {
		t.Fatal(err)
	}
	// The target is part of the user's announced state; a whisper sent
	// before node 3 knows it finds no receivers there.
	time.Sleep(300 * time.Millisecond)
	speak(t, users[0], 1, 1000, 50)
	waitUntil(t, 5*time.Second, "user3 hears the whisper", func() bool {
		return framesFrom(users[2], speaker, wire.ContextWhisper) == 50
	})
	time.Sleep(200 * time.Millisecond)
	if n := framesFrom(users[1], speaker, wire.ContextWhisper); n != 0 {
		t.Errorf("user2 on node 2 heard %d whispered frames meant for user3", n)
	}

	// Speech in a channel where nobody of node 2 is does not reach node 2.
	plenary := channelNamed(t, users[0].Client, "Plenary")
	users[0].Move(plenary)
	users[2].Move(channelNamed(t, users[2].Client, "Plenary"))
	waitUntil(t, 5*time.Second, "moves seen", func() bool {
		st := userNamed(users[0].Client, "user3")
		return st != nil && st.GetChannelId() == plenary
	})
	time.Sleep(300 * time.Millisecond) // the subscriptions follow
	before := nodes[1].Stats().VoiceReceived
	speak(t, users[0], 0, 2000, 20)
	waitUntil(t, 5*time.Second, "user3 hears the plenary", func() bool {
		return framesFrom(users[2], speaker, wire.ContextNormal) >= frames+20
	})
	if after := nodes[1].Stats().VoiceReceived; after != before {
		t.Errorf("node 2, with nobody in the plenary, routed %d packets of it", after-before)
	}
}

func TestDeadNodeUsersRemoved(t *testing.T) {
	nodes, users := threeNodes(t)
	// Cut node 3 off without a goodbye, as kill -9 would: its NATS
	// connection closes and its heartbeats stop reaching anyone.
	start := time.Now()
	nodes[2].node.Close()
	for _, u := range users[:2] {
		waitUntil(t, 6*time.Second, "node 3's user removed", func() bool { return userNamed(u.Client, "user3") == nil })
	}
	took := time.Since(start)
	t.Logf("node 3's user removed %v after its node was cut off", took.Round(10*time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("removal took %v, want at most 5 s", took)
	}
}

func TestActionsAcrossNodes(t *testing.T) {
	_, users := threeNodesWith(t, func(c *conf.Config) {
		c.ACL = append(c.ACL, conf.ACLEntry{Group: "all", Allow: []string{"Move", "MuteDeafen", "Kick"}})
	})
	user1, user2, user3 := users[0], users[1], users[2]

	// A private message from node 1 to the user on node 3.
	if err := user1.SendText("psst", []uint32{user3.Session()}, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "user3 gets user1's private message", func() bool {
		for _, m := range user3.textsReceived() {
			if m.GetMessage() == "psst" && m.GetActor() == user1.Session() && len(m.ChannelId) == 0 {
				return true
			}
		}
		return false
	})
	// A message to the channel everyone is in reaches both other nodes.
	here := user1.Users()[user1.Session()].GetChannelId()
	hereName := user1.Channels()[here].GetName()
	if err := user1.SendText("hello all", nil, []uint32{here}, nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*listener{user2, user3} {
		waitUntil(t, 5*time.Second, "the channel message on another node", func() bool {
			for _, m := range u.textsReceived() {
				if m.GetMessage() == "hello all" && m.GetActor() == user1.Session() &&
					len(m.ChannelId) == 1 && m.ChannelId[0] == channelNamed(t, u.Client, hereName) {
					return true
				}
			}
			return false
		})
	}
	for _, m := range user2.textsReceived() {
		if m.GetMessage() == "psst" {
			t.Error("user2 got the private message for user3")
		}
	}

	// user1 moves and mutes user3, who is on node 3.
	plenary := channelNamed(t, user1.Client, "Plenary")
	if err := user1.Send(&mumblepb.UserState{Session: ptr(user3.Session()), ChannelId: &plenary}); err != nil {
		t.Fatal(err)
	}
	if err := user1.Send(&mumblepb.UserState{Session: ptr(user3.Session()), Mute: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "user3 moved and muted, as seen by user3 and user2", func() bool {
		own := user3.Users()[user3.Session()]
		seen := userNamed(user2.Client, "user3")
		return own.GetChannelId() == channelNamed(t, user3.Client, "Plenary") && own.GetMute() &&
			seen != nil && seen.GetMute() && seen.GetChannelId() == channelNamed(t, user2.Client, "Plenary")
	})

	// user2 kicks user3.
	if err := user2.Send(&mumblepb.UserRemove{Session: ptr(user3.Session()), Reason: ptr("out")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-user3.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("user3 was not kicked")
	}
	waitUntil(t, 5*time.Second, "user3 gone on node 1", func() bool { return userNamed(user1.Client, "user3") == nil })
}

func ptr[T any](v T) *T { return &v }

func TestCutOffFromNATS(t *testing.T) {
	ns := startNATS(t)
	url, store := ns.ClientURL(), ns.StoreDir()
	node1 := startNode(t, ns, "node1", nil)
	node2 := startNode(t, ns, "node2", nil)
	user1, user2 := join(t, node1, "user1"), join(t, node2, "user2")
	for _, u := range []*listener{user1, user2} {
		waitUntil(t, 5*time.Second, "both users seen", func() bool { return len(u.Users()) == 2 })
	}

	// The only NATS server goes away: both nodes are cut off.
	ns.Shutdown()
	ns.WaitForShutdown()
	for _, u := range []*listener{user1, user2} {
		waitUntil(t, 8*time.Second, "told of the cut", func() bool { return u.gotText("lost its connection") })
		waitUntil(t, 5*time.Second, "the other node's user removed", func() bool { return len(u.Users()) == 1 })
	}
	if !node1.CutOff() {
		t.Error("node 1 does not count as cut off")
	}
	// A move cannot be shared, so it is refused with the reason.
	if err := user1.Move(channelNamed(t, user1.Client, "Plenary")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the move refused", func() bool {
		for _, d := range user1.deniedReceived() {
			if strings.Contains(d.GetReason(), "cut off") {
				return true
			}
		}
		return false
	})
	if st := user1.Users()[user1.Session()]; st.GetChannelId() == channelNamed(t, user1.Client, "Plenary") {
		t.Error("user1 was moved while cut off")
	}
	// Self-mute stays a local matter and is allowed.
	if err := user1.SetSelfMute(true, false); err != nil {
		t.Fatal(err)
	}

	// NATS comes back on the same address: the nodes find each other again.
	port := strings.TrimPrefix(url, "nats://127.0.0.1:")
	ns2, err := cluster.StartEmbedded(cluster.EmbeddedOptions{Name: "test-nats", Listen: "127.0.0.1:" + port, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns2.Shutdown)
	for _, u := range []*listener{user1, user2} {
		waitUntil(t, 10*time.Second, "told it is back", func() bool { return u.gotText("connected to the other servers of the plenary again") })
		waitUntil(t, 5*time.Second, "both users seen again", func() bool { return len(u.Users()) == 2 })
	}
	waitUntil(t, 5*time.Second, "user1's self-mute made while cut off reaches node 2", func() bool {
		st := userNamed(user2.Client, "user1")
		return st != nil && st.GetSelfMute()
	})
}

// configRevision reads the cluster's configuration: how many revisions
// it has had, and the last.
func configRevision(t testing.TB, ns *natsserver.Server) (int, []byte) {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "plenum_test_config")
	if err != nil {
		t.Fatal(err)
	}
	h, err := kv.History(ctx, "tree")
	if err != nil {
		t.Fatal(err)
	}
	return len(h), h[len(h)-1].Value()
}

func hasChannel(c *client.Client, name string) bool {
	for _, ch := range c.Channels() {
		if ch.GetName() == name {
			return true
		}
	}
	return false
}

func TestConfigurationShared(t *testing.T) {
	ns := startNATS(t)
	var nodes [3]*testNode
	var users [3]*listener
	for i := range nodes {
		nodes[i] = startNode(t, ns, fmt.Sprintf("node%d", i+1), func(c *conf.Config) {
			c.ACL = append(c.ACL, conf.ACLEntry{Group: "all", Allow: []string{"MakeChannel", "Write"}})
		})
		users[i] = joinWith(t, nodes[i], fmt.Sprintf("user%d", i+1), newCert(t))
	}
	time.Sleep(500 * time.Millisecond) // every node has read the first revision
	before, _ := configRevision(t, ns)

	// A channel made by a client on node 2 appears on every node, and is
	// one new revision.
	root := channelNamed(t, users[1].Client, "Root")
	if err := users[1].Send(&mumblepb.ChannelState{Parent: &root, Name: ptr("Room X")}); err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		waitUntil(t, 5*time.Second, fmt.Sprintf("Room X on node %d", i+1), func() bool { return hasChannel(u.Client, "Room X") })
	}
	for i, n := range nodes {
		waitUntil(t, 5*time.Second, fmt.Sprintf("Room X in node %d's file", i+1), func() bool {
			data, _ := os.ReadFile(n.ConfigFile())
			return strings.Contains(string(data), `name = "Room X"`)
		})
	}
	time.Sleep(300 * time.Millisecond)
	after, shared := configRevision(t, ns)
	if after != before+1 {
		t.Errorf("%d revisions before and %d after one edit, want one more", before, after)
	}
	if !strings.Contains(string(shared), "Room X") {
		t.Error("the cluster's revision lacks Room X")
	}

	// An admin's edit of node 3's file becomes the cluster's revision.
	data, err := os.ReadFile(nodes[2].ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), `name = "Room X"`, `name = "Room Y"`, 1)
	if err := os.WriteFile(nodes[2].ConfigFile(), []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		waitUntil(t, 8*time.Second, fmt.Sprintf("Room Y on node %d", i+1), func() bool {
			return hasChannel(u.Client, "Room Y") && !hasChannel(u.Client, "Room X")
		})
	}

	// An edit made on a revision that is no longer the newest is refused,
	// its editor told why, and the newest revision stays in force.
	revs, current := configRevision(t, ns)
	stale := strings.Replace(string(current), `name = "Room Y"`, `name = "Room Z"`, 1)
	if err := nodes[0].node.ShareOnStaleRevision(nodes[0].Server, 1, []byte(stale), []uint32{users[0].Session()}); err != nil {
		t.Fatal(err)
	}
	if now, _ := configRevision(t, ns); now != revs {
		t.Errorf("a conflicting edit made %d revisions %d", revs, now)
	}
	waitUntil(t, 5*time.Second, "the editor told of the refusal", func() bool {
		return users[0].gotText("Your change to channels or ACLs was refused: another server of the plenary changed it at the same moment")
	})
	time.Sleep(300 * time.Millisecond)
	if hasChannel(users[0].Client, "Room Z") || !hasChannel(users[0].Client, "Room Y") {
		t.Error("the refused edit is in force on node 1")
	}
}

func TestStagedSpeechAcrossNodes(t *testing.T) {
	nodes, users := threeNodesWith(t, func(c *conf.Config) {
		c.Lookup("Plenary").MaxSpeakers = 2 // a stage with loudest-N
	})
	for _, u := range users[:2] {
		u.Move(channelNamed(t, u.Client, "Plenary"))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := u.WaitUDP(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	waitUntil(t, 5*time.Second, "both in the plenary, seen from node 1", func() bool {
		st := userNamed(users[0].Client, "user2")
		return st != nil && st.GetChannelId() == channelNamed(t, users[0].Client, "Plenary")
	})
	time.Sleep(300 * time.Millisecond) // subscriptions follow
	before := nodes[2].Stats().VoiceReceived
	speakEvery(t, users[0], 0, 0, 100, 20*time.Millisecond)
	waitUntil(t, 5*time.Second, "user2 on node 2 hears user1 through both stages", func() bool {
		return framesFrom(users[1], users[0].Session(), wire.ContextNormal) == 100
	})
	if after := nodes[2].Stats().VoiceReceived; after != before {
		t.Errorf("node 3, with nobody in the plenary, routed %d packets of it", after-before)
	}
}

func TestBansShared(t *testing.T) {
	nodes, users := threeNodesWith(t, func(c *conf.Config) {
		c.ACL = append(c.ACL, conf.ACLEntry{Group: "all", Allow: []string{"Kick", "Ban"}})
	})
	// A user from another address on node 3, banned by user2 on node 2.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	from := netip.MustParseAddr("127.0.0.33")
	victim, err := client.Dial(ctx, client.Config{Address: nodes[2].addr, Username: "victim", LocalAddr: from})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	waitUntil(t, 5*time.Second, "the victim seen on node 2", func() bool { return userNamed(users[1].Client, "victim") != nil })
	if err := users[1].Send(&mumblepb.UserRemove{Session: ptr(victim.Session()), Reason: ptr("banned"), Ban: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-victim.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the victim was not removed")
	}
	// The ban, stored on node 3, keeps them out of node 1 too (under
	// another name: the ban is by address).
	var last error
	waitUntil(t, 5*time.Second, "the ban in force on node 1", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, client.Config{Address: nodes[0].addr, Username: "victim-again", LocalAddr: from})
		if err == nil {
			c.Close()
			return false
		}
		last = err
		return true
	})
	if nodes[0].Stats().Banned == 0 {
		t.Errorf("node 1 counts no banned connection; the refusal was: %v", last)
	}
	t.Logf("the banned address on node 1: %v", last)
	// Others still get in.
	c, err := client.Dial(ctx, client.Config{Address: nodes[0].addr, Username: "bystander"})
	if err != nil {
		t.Fatalf("a user from another address was refused: %v", err)
	}
	c.Close()
}

// TestPresenceConvergesUnderChurn joins, moves, mutes and drops users on
// all three nodes at once, then checks that every node shows the same
// users in the same channels with the same mute as their own node.
func TestPresenceConvergesUnderChurn(t *testing.T) {
	nodes, _ := threeNodes(t)
	const perNode, rounds = 12, 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	var kept []*client.Client
	for i := range nodes {
		for j := range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("churn-%d-%d", i, j)
				cert := newCert(t) // as every Mumble client has: it lets them back in while their ghost is listed
				for r := range rounds {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					c, err := client.Dial(ctx, client.Config{Address: nodes[(i+r)%3].addr, Username: name, Certificate: cert})
					cancel()
					if err != nil {
						t.Error(err)
						return
					}
					chans := c.Channels()
					var ids []uint32
					for id := range chans {
						ids = append(ids, id)
					}
					c.Move(ids[(j+r)%len(ids)])
					c.SetSelfMute((j+r)%2 == 0, false)
					if r == rounds-1 && j%3 != 0 {
						mu.Lock()
						kept = append(kept, c)
						mu.Unlock()
						return
					}
					time.Sleep(time.Duration(j) * time.Millisecond)
					c.Close()
				}
			}()
		}
	}
	wg.Wait()
	defer func() {
		for _, c := range kept {
			c.Close()
		}
	}()
	// What each node shows, as its own clients see it: name -> channel
	// name and self-mute.
	type seen struct {
		channel string
		mute    bool
	}
	view := func(c *client.Client) map[string]seen {
		chans := c.Channels()
		out := map[string]seen{}
		for _, u := range c.Users() {
			out[u.GetName()] = seen{chans[u.GetChannelId()].GetName(), u.GetSelfMute()}
		}
		return out
	}
	observers := make([]*listener, 3)
	for i := range observers {
		observers[i] = join(t, nodes[i], fmt.Sprintf("observer%d", i))
	}
	want := 3 + 3 + len(kept) // the first users, the observers, the kept
	waitUntil(t, 10*time.Second, "every node shows the same users in the same state", func() bool {
		a, b, c := view(observers[0].Client), view(observers[1].Client), view(observers[2].Client)
		return len(a) == want && reflect.DeepEqual(a, b) && reflect.DeepEqual(a, c)
	})
}

// TestLoginElsewhereReplacesGhost: a user whose old connection on node 1
// is still open logs in on node 2 with the same certificate (their
// network changed): node 1 ends the old session, as one server would.
func TestLoginElsewhereReplacesGhost(t *testing.T) {
	nodes, users := threeNodes(t)
	cert := newCert(t)
	old := joinWith(t, nodes[0], "roaming", cert)
	waitUntil(t, 5*time.Second, "roaming seen on node 2", func() bool { return userNamed(users[1].Client, "roaming") != nil })
	again := joinWith(t, nodes[1], "roaming", cert)
	select {
	case <-old.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the old session on node 1 was not ended")
	}
	waitUntil(t, 5*time.Second, "one roaming, the new one, on every node", func() bool {
		for _, u := range users {
			st := userNamed(u.Client, "roaming")
			n := 0
			for _, v := range u.Users() {
				if v.GetName() == "roaming" {
					n++
				}
			}
			if st == nil || n != 1 || st.GetSession() != again.Session() {
				return false
			}
		}
		return true
	})
}

// TestRegistrationsShared: a user registered on node 1 who reconnects to
// node 2 is the same registered user there, and a registration deleted
// on node 2 is gone on node 1.
func TestRegistrationsShared(t *testing.T) {
	nodes, users := threeNodesWith(t, func(c *conf.Config) {
		c.ACL = append(c.ACL, conf.ACLEntry{Group: "all", Allow: []string{"SelfRegister", "Register"}})
	})
	cert := newCert(t)
	reggie := joinWith(t, nodes[0], "reggie", cert)
	if err := reggie.Send(&mumblepb.UserState{Session: ptr(reggie.Session()), UserId: ptr(uint32(0))}); err != nil {
		t.Fatal(err)
	}
	var id uint32
	waitUntil(t, 5*time.Second, "reggie registered, as seen on node 2", func() bool {
		st := userNamed(users[1].Client, "reggie")
		if st == nil || st.UserId == nil {
			return false
		}
		id = st.GetUserId()
		return true
	})
	reggie.Close()
	waitUntil(t, 5*time.Second, "reggie gone", func() bool { return userNamed(users[1].Client, "reggie") == nil })
	again := joinWith(t, nodes[1], "reggie", cert)
	if st := again.Users()[again.Session()]; st.UserId == nil || st.GetUserId() != id {
		t.Fatalf("reggie on node 2 has user id %v, want %d", st.UserId, id)
	}
	// An unregistered user may not take the registered name on node 3.
	again.Close()
	waitUntil(t, 5*time.Second, "reggie gone again", func() bool { return userNamed(users[2].Client, "reggie") == nil })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := client.Dial(ctx, client.Config{Address: nodes[2].addr, Username: "reggie", Certificate: newCert(t)}); err == nil {
		c.Close()
		t.Error("someone else logged in on node 3 under reggie's registered name")
	}
	// Deleted on node 2 (by user2, who may Register), gone on node 1.
	if err := users[1].Send(&mumblepb.UserList{Users: []*mumblepb.UserList_User{{UserId: ptr(id)}}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the registration deleted on node 1", func() bool {
		c, err := client.Dial(ctx, client.Config{Address: nodes[0].addr, Username: "reggie", Certificate: newCert(t)})
		if err != nil {
			return false
		}
		defer c.Close()
		st := c.Users()[c.Session()]
		return st.UserId == nil
	})
}

// TestOfflineEditBecomesRevision: an admin edits a node's file while the
// node is stopped; at its start the edit becomes the cluster's revision,
// since the cluster had not moved on meanwhile. An offline edit made
// while the cluster did move on loses, as the log says.
func TestOfflineEditBecomesRevision(t *testing.T) {
	ns := startNATS(t)
	grant := func(c *conf.Config) {
		c.ACL = append(c.ACL, conf.ACLEntry{Group: "all", Allow: []string{"MakeChannel", "Write"}})
	}
	node1 := startNode(t, ns, "node1", grant)
	dir2 := t.TempDir()
	node2 := startNodeIn(t, ns, "node2", dir2, grant)
	user1 := joinWith(t, node1, "user1", newCert(t))
	user2 := joinWith(t, node2, "user2", newCert(t))
	root := channelNamed(t, user2.Client, "Root")
	if err := user2.Send(&mumblepb.ChannelState{Parent: &root, Name: ptr("Room A")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "Room A on node 1", func() bool { return hasChannel(user1.Client, "Room A") })
	time.Sleep(300 * time.Millisecond)
	user2.Close()
	node2.stop()

	// Edited while stopped, on top of the cluster's revision: it wins.
	file := filepath.Join(dir2, server.DefaultConfigFile)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), `name = "Room A"`, `name = "Room B"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	node2 = startNodeIn(t, ns, "node2", dir2, grant)
	waitUntil(t, 5*time.Second, "the offline edit on node 1", func() bool {
		return hasChannel(user1.Client, "Room B") && !hasChannel(user1.Client, "Room A")
	})
	time.Sleep(300 * time.Millisecond)
	node2.stop()

	// Edited while stopped, but the cluster moved on: the cluster wins.
	data, _ = os.ReadFile(file)
	os.WriteFile(file, []byte(strings.Replace(string(data), `name = "Room B"`, `name = "Room C"`, 1)), 0o600)
	room := channelNamed(t, user1.Client, "Root")
	if err := user1.Send(&mumblepb.ChannelState{Parent: &room, Name: ptr("Room D")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "Room D on node 1", func() bool { return hasChannel(user1.Client, "Room D") })
	time.Sleep(300 * time.Millisecond)
	node2 = startNodeIn(t, ns, "node2", dir2, grant)
	user2 = join(t, node2, "user2b")
	waitUntil(t, 5*time.Second, "node 2 on the cluster's revision", func() bool {
		return hasChannel(user2.Client, "Room D") && hasChannel(user2.Client, "Room B") && !hasChannel(user2.Client, "Room C")
	})
	if hasChannel(user1.Client, "Room C") {
		t.Error("the losing offline edit reached node 1")
	}
}

// TestFailoverKeepsChannel: a registered user of a node that dies, who
// reconnects to another node, is back in the channel they were in.
func TestFailoverKeepsChannel(t *testing.T) {
	nodes, users := threeNodesWith(t, func(c *conf.Config) {
		c.ACL = append(c.ACL, conf.ACLEntry{Group: "all", Allow: []string{"SelfRegister"}})
	})
	cert := newCert(t)
	member := joinWith(t, nodes[2], "member", cert)
	member.Send(&mumblepb.UserState{Session: ptr(member.Session()), UserId: ptr(uint32(0))})
	member.Move(channelNamed(t, member.Client, "Overflow"))
	waitUntil(t, 5*time.Second, "the registered member in Overflow, seen on node 1", func() bool {
		st := userNamed(users[0].Client, "member")
		return st != nil && st.UserId != nil && st.GetChannelId() == channelNamed(t, users[0].Client, "Overflow")
	})
	nodes[2].node.Close() // node 3 dies without a goodbye
	waitUntil(t, 6*time.Second, "node 3's users removed", func() bool { return userNamed(users[0].Client, "member") == nil })
	member.Close()
	back := joinWith(t, nodes[0], "member", cert)
	if st := back.Users()[back.Session()]; st.GetChannelId() != channelNamed(t, back.Client, "Overflow") {
		t.Errorf("the member is back in channel %d, want Overflow", st.GetChannelId())
	}
}

// TestACLEditAppliedEverywhere: an ACL edit from a Mumble client on node 2
// is applied on every node (Speak denied in the Lobby suppresses the
// users there on all three) and is one new revision.
func TestACLEditAppliedEverywhere(t *testing.T) {
	ns := startNATS(t)
	var nodes [3]*testNode
	var users [3]*listener
	for i := range nodes {
		nodes[i] = startNode(t, ns, fmt.Sprintf("node%d", i+1), func(c *conf.Config) {
			c.ACL = append(c.ACL, conf.ACLEntry{Group: "all", Allow: []string{"Write"}})
		})
		users[i] = joinWith(t, nodes[i], fmt.Sprintf("user%d", i+1), newCert(t))
	}
	for _, u := range users {
		waitUntil(t, 5*time.Second, "all three seen", func() bool { return len(u.Users()) == 3 })
	}
	time.Sleep(300 * time.Millisecond)
	before, _ := configRevision(t, ns)
	lobby := channelNamed(t, users[1].Client, "Lobby")
	deny := &mumblepb.ACL_ChanACL{Group: ptr("all"), ApplyHere: ptr(true), ApplySubs: ptr(true), Deny: ptr(uint32(0x8))}
	if err := users[1].Send(&mumblepb.ACL{ChannelId: &lobby, InheritAcls: ptr(true), Acls: []*mumblepb.ACL_ChanACL{deny}}); err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		waitUntil(t, 5*time.Second, fmt.Sprintf("user%d suppressed by the new ACL", i+1), func() bool {
			return u.Users()[u.Session()].GetSuppress()
		})
	}
	for i, n := range nodes {
		waitUntil(t, 5*time.Second, fmt.Sprintf("the ACL in node %d's file", i+1), func() bool {
			data, _ := os.ReadFile(n.ConfigFile())
			return strings.Contains(string(data), `deny = ["Speak"]`)
		})
	}
	time.Sleep(300 * time.Millisecond)
	if after, _ := configRevision(t, ns); after != before+1 {
		t.Errorf("%d revisions before and %d after one ACL edit, want one more", before, after)
	}
}

// TestFailoverKeepsChannelOfUnregistered: an unregistered user is known
// again by their certificate. One reconnects after their dead node's
// users were removed, one at once (their ghost still listed, as when a
// client reconnects faster than the 5 s it takes to notice a death):
// both come back in the channel they were in, not the default one,
// listening to the channel they listened to, with their comment.
func TestFailoverKeepsChannelOfUnregistered(t *testing.T) {
	nodes, users := threeNodes(t)
	certLate, certQuick := newCert(t), newCert(t)
	late := joinWith(t, nodes[2], "late", certLate)
	quick := joinWith(t, nodes[2], "quick", certQuick)
	overflow, plenary := channelNamed(t, late.Client, "Overflow"), channelNamed(t, late.Client, "Plenary")
	for _, u := range []*listener{late, quick} {
		if err := u.Move(overflow); err != nil {
			t.Fatal(err)
		}
		if err := u.Send(&mumblepb.UserState{Session: ptr(u.Session()), ListeningChannelAdd: []uint32{plenary}}); err != nil {
			t.Fatal(err)
		}
		if err := u.Send(&mumblepb.UserState{Session: ptr(u.Session()), Comment: ptr("Delegation Mitte")}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 5*time.Second, "both in Overflow listening to Plenary, with their comments, seen on node 1", func() bool {
		for _, name := range []string{"late", "quick"} {
			st := userNamed(users[0].Client, name)
			if st == nil || st.GetChannelId() != overflow || !slices.Equal(st.GetListeningChannelAdd(), []uint32{plenary}) ||
				st.GetComment() == "" {
				return false
			}
		}
		return true
	})
	nodes[2].node.Close() // node 3 dies without a goodbye
	quick.Close()
	if userNamed(users[0].Client, "quick") == nil {
		t.Fatal("quick's ghost is gone already: this test needs it still listed")
	}
	quickBack := joinWith(t, nodes[0], "quick", certQuick)
	waitUntil(t, 6*time.Second, "node 3's users removed", func() bool { return userNamed(users[0].Client, "late") == nil })
	late.Close()
	lateBack := joinWith(t, nodes[1], "late", certLate)
	for _, u := range []*listener{quickBack, lateBack} {
		if st := u.Users()[u.Session()]; st.GetChannelId() != overflow {
			t.Errorf("%s is back in channel %d, want Overflow (%d)", st.GetName(), st.GetChannelId(), overflow)
		}
		waitUntil(t, 5*time.Second, "listening to Plenary again", func() bool {
			return slices.Equal(u.Users()[u.Session()].GetListeningChannelAdd(), []uint32{plenary})
		})
		if got := u.Users()[u.Session()].GetComment(); got != "Delegation Mitte" {
			t.Errorf("%s is back with comment %q, want their comment from before", u.Users()[u.Session()].GetName(), got)
		}
	}
	stranger := joinWith(t, nodes[0], "stranger", newCert(t))
	if st := stranger.Users()[stranger.Session()]; st.GetChannelId() == overflow {
		t.Error("a new user starts in Overflow too")
	}
}

// TestSameNodeNameRefused: a second process started with a running
// node's name is refused at start with the reason, at once; once the
// first is gone (it died, or was stopped), a process of that name starts
// again and gets its number back.
func TestSameNodeNameRefused(t *testing.T) {
	ns := startNATS(t)
	first := startNode(t, ns, "berlin", nil)
	dial := func() (*cluster.Node, time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		n, err := cluster.Dial(ctx, cluster.Options{Cluster: "test", NodeName: "berlin", URLs: []string{ns.ClientURL()},
			Logger: testLogger(), StateFile: filepath.Join(t.TempDir(), "cluster-state.json")})
		return n, time.Since(start), err
	}
	if n, took, err := dial(); err == nil || !strings.Contains(err.Error(), `node name "berlin" is in use by a running process`) {
		if n != nil {
			n.Close()
		}
		t.Fatalf("a second process named berlin: %v, want refused as in use", err)
	} else {
		t.Logf("refused after %v: %v", took.Round(time.Millisecond), err)
	}
	first.stop()
	again, took, err := dial()
	if err != nil {
		t.Fatalf("berlin restarted after the first stopped: %v", err)
	}
	defer again.Close()
	if again.Node() != first.node.Node() {
		t.Errorf("restarted berlin has number %d, want its old %d", again.Node(), first.node.Node())
	}
	if took > time.Second {
		t.Errorf("a free name took %v to claim: the check waited", took)
	}
}
