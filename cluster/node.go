package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/plenum-voice/plenum/server"
	"github.com/plenum-voice/plenum/voice"
)

// Timing of liveness. A node that has not been heard for Deadline is
// taken for dead and its users are removed; with a heartbeat every second
// and a check every second that is at most about 4 s after it died.
//
// A node that cannot share state is cut off: it tells its users and
// refuses changes it cannot share (server.SetCutOff). It cannot share
// state while its NATS connection is down, and while JetStream does not
// take its writes (it writes its alive key every second to find out).
// Each has its own bound:
//
//   - The connection down for CutOffAfter: the client reconnects to
//     another NATS server of the cluster within a second, so a connection
//     down that long has nowhere to go. The client pings every second, so
//     a connection that dies without a word is noticed within about 3 s.
//   - Writes refused, the connection up, for UnsharedCutOffAfter: that is
//     the minority side of a partitioned NATS cluster, but also every
//     node for a while when the NATS server leading a bucket's copies
//     dies, since the others wait 4 to 9 s for it before they elect
//     another leader (nats-server's raft.go). The bound outlasts that
//     election, so that the death of any one NATS server goes unnoticed.
const (
	DefaultHeartbeat           = time.Second
	DefaultDeadline            = 3 * time.Second
	DefaultCutOffAfter         = 5 * time.Second
	DefaultUnsharedCutOffAfter = 12 * time.Second
)

// Options configure a node.
type Options struct {
	Cluster   string   // the cluster's name
	NodeName  string   // this node's name, unique in the cluster
	URLs      []string // NATS servers
	Logger    *slog.Logger
	Heartbeat time.Duration // 0 = DefaultHeartbeat
	Deadline  time.Duration // 0 = DefaultDeadline
	// CutOffAfter is how long the connection may be down before the node
	// counts as cut off; 0 = DefaultCutOffAfter.
	CutOffAfter time.Duration
	// UnsharedCutOffAfter is how long JetStream may refuse the node's
	// writes while the connection is up before the node counts as cut
	// off; 0 = DefaultUnsharedCutOffAfter.
	UnsharedCutOffAfter time.Duration
	// StateFile records the shared state's revisions this node last
	// agreed with (synced.go); "" keeps no record, and the cluster's
	// revisions win over local changes at start.
	StateFile string
}

// Node is this server's membership of a cluster: its NATS connection and
// its number. It implements server.ClusterLink.
type Node struct {
	opts  Options
	log   *slog.Logger
	nc    *nats.Conn
	js    jetstream.JetStream
	nodes jetstream.KeyValue // the bucket of node numbers, where it also writes that it is alive
	// replicas is the copies asked for of each bucket, unplaceable since
	// when JetStream could not place them (bucket.go): Dial's, then Run's.
	replicas    int
	unplaceable time.Time
	id          uint16
	epoch       int64  // when this process joined, to tell a restart apart
	prefix      string // "plenum.<cluster>."

	mu       sync.Mutex // guards what follows
	hearsSeq uint64     // the announcement the voice subscriptions follow
	voiceIn  chan *nats.Msg
	voiceSub map[string]*nats.Subscription // by channel key
	nodeSubj [server.MaxNodes]string       // voice.node.<n>
	chanSubj sync.Map                      // channel key -> voice.ch.<key>
	bufs     sync.Pool                     // relay buffers
	connUp   chan bool                     // the connection's state changes, for Run

	shared  *sharedState  // the shared documents (config.go); set once by Run
	cfgWake chan struct{} // capacity 1: a document has a local change (offer)
	inRun   chan func()   // work to do on Run's goroutine (tests)
	synced  synced        // the revisions last agreed with (synced.go); Run's

	floorDirty map[string]bool // halls (by path) whose floor has local actions to share (floor.go)
}

// Dial connects to NATS and claims this node's number.
func Dial(ctx context.Context, o Options) (*Node, error) {
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Deadline == 0 {
		o.Deadline = DefaultDeadline
	}
	if o.CutOffAfter == 0 {
		o.CutOffAfter = DefaultCutOffAfter
	}
	if o.UnsharedCutOffAfter == 0 {
		o.UnsharedCutOffAfter = DefaultUnsharedCutOffAfter
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	n := &Node{
		opts: o, log: o.Logger.With("cluster", o.Cluster, "node", o.NodeName),
		epoch: time.Now().UnixNano(), prefix: "plenum." + o.Cluster + ".",
		voiceIn: make(chan *nats.Msg, 4096), voiceSub: map[string]*nats.Subscription{},
		connUp: make(chan bool, 64), cfgWake: make(chan struct{}, 1), inRun: make(chan func()),
	}
	n.bufs.New = func() any { b := make([]byte, 0, 4+1500); return &b }
	nc, err := nats.Connect(strings.Join(o.URLs, ","),
		nats.Name("plenum "+o.NodeName),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.PingInterval(time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.log.Warn("NATS connection lost", "err", err)
			n.noteConn(false)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.log.Info("reconnected to NATS")
			n.noteConn(true)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: connecting to NATS: %w", err)
	}
	n.nc = nc
	n.replicas = 1
	if nc.ConnectedClusterName() != "" {
		n.replicas = clusterReplicas
	}
	if n.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, err
	}
	if n.id, err = n.claimNodeRetrying(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	if err = n.answerForName(); err != nil {
		nc.Close()
		return nil, err
	}
	for i := range n.nodeSubj {
		n.nodeSubj[i] = n.prefix + "voice.node." + strconv.Itoa(i)
	}
	n.log = n.log.With("number", n.id)
	n.log.Info("joined the cluster")
	return n, nil
}

// nameProbeWait is how long a starting node waits for a running process
// with its name to answer. NATS says at once when nobody listens, so a
// node whose name is free does not wait.
const nameProbeWait = 2 * time.Second

// answerForName makes sure no running process uses this node's name (and
// so its number, and its block of session numbers, which two processes
// would hand out twice), then answers for the name itself: a process
// started by mistake with the same name is refused at start, with the
// reason. A process of the name that died answers nothing, so a restart
// after a crash is not held up.
func (n *Node) answerForName() error {
	subject := n.prefix + "name." + strconv.Itoa(int(n.id))
	msg, err := n.nc.Request(subject, nil, nameProbeWait)
	switch {
	case err == nil:
		return fmt.Errorf("cluster: node name %q is in use by a running process (%s): give every node a name of its own", n.opts.NodeName, msg.Data)
	case !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("cluster: asking whether node name %q is in use: %w", n.opts.NodeName, err)
	}
	host, _ := os.Hostname()
	answer := []byte(fmt.Sprintf("on host %s, started %s", host, time.Unix(0, n.epoch).UTC().Format(time.RFC3339)))
	_, err = n.nc.Subscribe(subject, func(m *nats.Msg) { m.Respond(answer) })
	return err
}

// noteConn passes a change of the connection's state to Run; called from
// the NATS client's callbacks, it never blocks.
func (n *Node) noteConn(up bool) {
	select {
	case n.connUp <- up:
	default:
	}
}

// claimAttempt bounds one attempt of claimNodeRetrying: a request
// JetStream does not answer (no leader yet) waits no longer than this.
const claimAttempt = 2 * time.Second

// claimNodeRetrying claims the node's number, trying again until ctx is
// done: a bucket another node has just made may not answer for a moment
// ("no responders"), and a NATS cluster that is still forming not at all.
func (n *Node) claimNodeRetrying(ctx context.Context) (uint16, error) {
	backoff := 100 * time.Millisecond
	for {
		attempt, cancel := context.WithTimeout(ctx, claimAttempt)
		id, err := n.claimNode(attempt)
		cancel()
		if err == nil || ctx.Err() != nil {
			return id, err
		}
		n.log.Warn("claiming this node's number failed; trying again", "err", err)
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// claimNode finds this node's number: the one its name already holds in
// the cluster's bucket of numbers, or the lowest free one, taken with
// Create, which fails if another node took it first (compare-and-set).
// A number stays with its name, so a restarted node gets its own back.
func (n *Node) claimNode(ctx context.Context) (uint16, error) {
	bucket := "plenum_" + n.opts.Cluster + "_nodes"
	kv, err := n.openBucket(ctx, jetstream.KeyValueConfig{Bucket: bucket})
	if err != nil {
		return 0, fmt.Errorf("cluster: the bucket of node numbers: %w", err)
	}
	n.nodes = kv
	for id := 1; id < server.MaxNodes; id++ {
		key := strconv.Itoa(id)
		e, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			if string(e.Value()) == n.opts.NodeName {
				return uint16(id), nil
			}
			continue
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return 0, fmt.Errorf("cluster: reading node number %d: %w", id, err)
		}
		_, err = kv.Create(ctx, key, []byte(n.opts.NodeName))
		if err == nil {
			return uint16(id), nil
		}
		// Someone took it meanwhile (replicated buckets report that with
		// another code than ErrKeyExists, so the key is read again).
		e, gerr := kv.Get(ctx, key)
		switch {
		case gerr == nil && string(e.Value()) == n.opts.NodeName:
			return uint16(id), nil
		case gerr != nil:
			return 0, fmt.Errorf("cluster: claiming node number %d: %w", id, err)
		}
	}
	return 0, fmt.Errorf("cluster: all %d node numbers are taken", server.MaxNodes-1)
}

// Node implements server.ClusterLink.
func (n *Node) Node() uint16 { return n.id }

// Close closes the NATS connection; call it after the server stopped.
func (n *Node) Close() { n.nc.Close() }

// envelope is a user message: a user's state or departure, numbered.
type envelope struct {
	Epoch int64              `json:"epoch"`
	Seq   uint64             `json:"seq"`
	Gone  bool               `json:"gone,omitempty"`
	User  *server.RemoteUser `json:"user,omitempty"`
}

// heartbeat says a node is alive.
type heartbeat struct {
	Epoch int64  `json:"epoch"`
	Name  string `json:"name"`
	Users int    `json:"users"`
}

// Announce implements server.ClusterLink: it publishes each change on the
// user's subject with the announcement's number, and follows the channels
// this node's users hear with its voice subscriptions.
func (n *Node) Announce(a server.Announcement) {
	for _, c := range a.Users {
		n.publishUser(c.Session, envelope{Seq: c.Seq, Gone: c.State == nil, User: c.State})
	}
	if a.Hears != nil {
		n.mu.Lock()
		if a.Seq > n.hearsSeq {
			n.hearsSeq = a.Seq
			n.followLocked(a.Hears)
		}
		n.mu.Unlock()
	}
}

func (n *Node) publishUser(session uint32, e envelope) {
	e.Epoch = n.epoch
	data, err := json.Marshal(e)
	if err != nil {
		n.log.Error("encoding a user's state failed", "err", err)
		return
	}
	subj := n.prefix + "user." + strconv.Itoa(int(n.id)) + "." + strconv.FormatUint(uint64(session), 10)
	if err := n.nc.Publish(subj, data); err != nil {
		n.log.Warn("announcing a user's state failed", "err", err)
	}
}

// followLocked subscribes to the voice of exactly the channels in hears.
func (n *Node) followLocked(hears []string) {
	want := make(map[string]bool, len(hears))
	for _, k := range hears {
		want[k] = true
		if _, ok := n.voiceSub[k]; ok {
			continue
		}
		sub, err := n.nc.ChanSubscribe(n.prefix+"voice.ch."+k, n.voiceIn)
		if err != nil {
			n.log.Warn("subscribing to a channel's voice failed", "err", err)
			continue
		}
		n.voiceSub[k] = sub
	}
	for k, sub := range n.voiceSub {
		if !want[k] {
			sub.Unsubscribe()
			delete(n.voiceSub, k)
		}
	}
}

// Relay implements voice.Relay: normal speech goes once on its channel's
// subject, whispers and shouts once to each node with users who hear them.
func (n *Node) Relay(sender *voice.User, target uint32, pl []byte, nodes uint64) {
	bp := n.bufs.Get().(*[]byte)
	msg := binary.BigEndian.AppendUint32((*bp)[:0], sender.Session)
	msg = append(msg, pl...)
	if target == 0 {
		subj, ok := n.chanSubj.Load(sender.Channel.Key)
		if !ok {
			subj, _ = n.chanSubj.LoadOrStore(sender.Channel.Key, n.prefix+"voice.ch."+sender.Channel.Key)
		}
		n.nc.Publish(subj.(string), msg)
	} else {
		for id := range server.MaxNodes {
			if nodes&(1<<id) != 0 {
				n.nc.Publish(n.nodeSubj[id], msg)
			}
		}
	}
	*bp = msg
	n.bufs.Put(bp)
}

// SendCommand implements server.CommandSender: an action for the users
// of another node goes to that node's command subject.
func (n *Node) SendCommand(node uint16, c server.Command) {
	data, err := json.Marshal(c)
	if err != nil {
		n.log.Error("encoding a command failed", "err", err)
		return
	}
	if err := n.nc.Publish(n.prefix+"cmd."+strconv.Itoa(int(node)), data); err != nil {
		n.log.Warn("sending a command to another node failed", "err", err)
	}
}

// blobRequest asks a node for a blob of one of its users (FetchBlob).
type blobRequest struct {
	Session uint32          `json:"session"`
	Kind    server.BlobKind `json:"kind"`
}

// FetchBlob implements server.BlobFetcher: it asks the node of session
// for that user's avatar or comment.
func (n *Node) FetchBlob(ctx context.Context, session uint32, kind server.BlobKind) ([]byte, error) {
	node := server.NodeOf(session)
	if node == 0 || node >= server.MaxNodes || node == n.id {
		return nil, fmt.Errorf("cluster: session %d is no other node's", session)
	}
	req, _ := json.Marshal(blobRequest{Session: session, Kind: kind})
	msg, err := n.nc.RequestWithContext(ctx, n.prefix+"blob."+strconv.Itoa(int(node)), req)
	if err != nil {
		return nil, err
	}
	return msg.Data, nil
}

// answerBlobs answers other nodes' FetchBlob for this node's users. The
// answers come from the NATS client's goroutine for the subscription.
func (n *Node) answerBlobs(host *server.Server) (*nats.Subscription, error) {
	return n.nc.Subscribe(n.prefix+"blob."+strconv.Itoa(int(n.id)), func(m *nats.Msg) {
		var req blobRequest
		if json.Unmarshal(m.Data, &req) != nil {
			return
		}
		m.Respond(host.LocalBlob(req.Session, req.Kind))
	})
}

// peer is what a node knows of another node.
type peer struct {
	epoch    int64
	name     string
	lastSeen time.Time
	seq      map[uint32]uint64 // the number of the last message applied, by session
}

// Run implements server.ClusterLink. It owns the voice goroutine, which
// it waits for before it returns.
func (n *Node) Run(host *server.Server, stop <-chan struct{}) {
	control := make(chan *nats.Msg, 8192)
	var subs []*nats.Subscription
	for _, subj := range []string{"hb.*", "bye.*", "user.>", "sync." + strconv.Itoa(int(n.id)), "cmd." + strconv.Itoa(int(n.id))} {
		sub, err := n.nc.ChanSubscribe(n.prefix+subj, control)
		if err != nil {
			n.log.Error("subscribing failed", "subject", subj, "err", err)
			continue
		}
		subs = append(subs, sub)
	}
	if sub, err := n.nc.ChanSubscribe(n.nodeSubj[n.id], n.voiceIn); err == nil {
		subs = append(subs, sub)
	}
	if sub, err := n.answerBlobs(host); err == nil {
		subs = append(subs, sub)
	} else {
		n.log.Error("subscribing failed", "subject", "blob", "err", err)
	}
	voiceDone := make(chan struct{})
	voiceStop := make(chan struct{})
	go func() { // owned by Run, which waits for it
		defer close(voiceDone)
		n.voiceLoop(host, voiceStop)
	}()

	shareDone := make(chan struct{})
	shareStop := make(chan struct{})
	go func() { // owned by Run, which waits for it
		defer close(shareDone)
		n.shareLoop(host, shareStop)
	}()
	n.livenessLoop(host, control, stop)
	n.nc.Publish(n.prefix+"bye."+strconv.Itoa(int(n.id)), nil)
	n.nc.FlushTimeout(time.Second)
	for _, sub := range subs {
		sub.Unsubscribe()
	}
	close(shareStop)
	<-shareDone
	n.mu.Lock()
	n.followLocked(nil)
	n.mu.Unlock()
	close(voiceStop)
	<-voiceDone
}

// livenessLoop says every heartbeat that this node is alive, takes the
// other nodes' users and heartbeats, and removes the users of nodes gone
// silent, until stop. It never waits for JetStream, whose writes can
// take seconds while a NATS server is lost, so that the other nodes do
// not take this one for dead meanwhile, nor it them.
func (n *Node) livenessLoop(host *server.Server, control <-chan *nats.Msg, stop <-chan struct{}) {
	peers := map[uint16]*peer{}
	tick := time.NewTicker(n.opts.Heartbeat)
	defer tick.Stop()
	n.sendHeartbeat(host)
	started, recording := time.Now(), false
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			n.sendHeartbeat(host)
			n.expire(host, peers)
			if r := n.records(peers, started); r != recording {
				recording = r
				host.SetRecordsHere(r)
			}
		case m := <-control:
			n.handleControl(host, peers, m)
		}
	}
}

// records decides whether this node records the channels marked record
// (server.SetRecordsHere): the lowest-numbered node alive does, so that
// each is recorded once. A node that has just started decides once it
// has had a deadline to hear the others; a node cut off from them records
// its side.
func (n *Node) records(peers map[uint16]*peer, started time.Time) bool {
	if time.Since(started) < n.opts.Deadline {
		return false
	}
	for id := range peers {
		if id < n.id {
			return false
		}
	}
	return true
}

// jetStreamAnswers reports whether this node can share state now: it
// writes its alive key, which needs the quorum of the bucket's replicas
// (a read could be answered by a replica on the minority side).
func (n *Node) jetStreamAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	_, err := n.nodes.Put(ctx, "alive."+strconv.Itoa(int(n.id)), strconv.AppendInt(nil, time.Now().Unix(), 10))
	return err == nil
}

func (n *Node) sendHeartbeat(host *server.Server) {
	data, _ := json.Marshal(heartbeat{Epoch: n.epoch, Name: n.opts.NodeName, Users: host.Stats().Users})
	n.nc.Publish(n.prefix+"hb."+strconv.Itoa(int(n.id)), data)
}

// expire removes the users of nodes not heard for the deadline.
func (n *Node) expire(host *server.Server, peers map[uint16]*peer) {
	now := time.Now()
	for id, p := range peers {
		if now.Sub(p.lastSeen) > n.opts.Deadline {
			removed := host.RemoveNode(id)
			delete(peers, id)
			n.log.Warn("node silent: its users removed", "peer", p.name, "peer_number", id, "users", removed)
		}
	}
}

// subjectNode parses the node number that follows the kind in subj
// ("hb.3", "user.3.24577").
func (n *Node) subjectNode(subj string) (uint16, []string, bool) {
	parts := strings.Split(strings.TrimPrefix(subj, n.prefix), ".")
	if len(parts) < 2 {
		return 0, nil, false
	}
	id, err := strconv.Atoi(parts[1])
	if err != nil || id <= 0 || id >= server.MaxNodes {
		return 0, nil, false
	}
	return uint16(id), parts, true
}

func (n *Node) handleControl(host *server.Server, peers map[uint16]*peer, m *nats.Msg) {
	id, parts, ok := n.subjectNode(m.Subject)
	if !ok {
		return
	}
	switch parts[0] {
	case "sync":
		host.Reannounce()
	case "cmd":
		var c server.Command
		if err := json.Unmarshal(m.Data, &c); err != nil {
			n.log.Warn("a command that does not decode", "err", err)
			return
		}
		host.RunCommand(c)
	case "bye":
		if id == n.id {
			return
		}
		removed := host.RemoveNode(id)
		delete(peers, id)
		n.log.Info("node left the cluster", "peer_number", id, "users", removed)
	case "hb":
		var hb heartbeat
		if id == n.id || json.Unmarshal(m.Data, &hb) != nil {
			if id == n.id && json.Unmarshal(m.Data, &hb) == nil && hb.Epoch != n.epoch {
				n.log.Error("another process uses this node's name and number", "peer", hb.Name)
			}
			return
		}
		p := n.peer(host, peers, id, hb.Epoch)
		p.name = hb.Name
		p.lastSeen = time.Now()
	case "user":
		if id == n.id || len(parts) != 3 {
			return
		}
		session, err := strconv.ParseUint(parts[2], 10, 32)
		var e envelope
		if err != nil || json.Unmarshal(m.Data, &e) != nil || server.NodeOf(uint32(session)) != id {
			return
		}
		p := n.peer(host, peers, id, e.Epoch)
		p.lastSeen = time.Now()
		if e.Epoch != p.epoch || e.Seq <= p.seq[uint32(session)] {
			return // from before the node restarted, or overtaken
		}
		p.seq[uint32(session)] = e.Seq
		switch {
		case e.Gone:
			host.RemoveRemote([]uint32{uint32(session)})
		case e.User != nil && e.User.Session == uint32(session):
			host.ApplyRemote(id, []server.RemoteUser{*e.User})
		}
	}
}

// peer returns what is known of node id at epoch: a node seen for the
// first time, or restarted since, is asked for all of its users (and the
// users of its previous run are removed).
func (n *Node) peer(host *server.Server, peers map[uint16]*peer, id uint16, epoch int64) *peer {
	p, ok := peers[id]
	if ok && epoch < p.epoch {
		return p // a message from its previous run: the caller drops it
	}
	if ok && p.epoch == epoch {
		return p
	}
	if ok {
		removed := host.RemoveNode(id)
		n.log.Info("node restarted", "peer_number", id, "users_removed", removed)
	}
	p = &peer{epoch: epoch, lastSeen: time.Now(), seq: map[uint32]uint64{}}
	peers[id] = p
	n.nc.Publish(n.prefix+"sync."+strconv.Itoa(int(id)), nil)
	return p
}

// voiceLoop routes the voice other nodes relay here, flushing the
// router's datagrams whenever no more voice waits.
func (n *Node) voiceLoop(host *server.Server, stop <-chan struct{}) {
	r := host.NewRemoteRouter()
	defer r.Close()
	for {
		select {
		case <-stop:
			return
		case m := <-n.voiceIn:
			if len(m.Data) > 4 {
				host.RouteRemote(r, binary.BigEndian.Uint32(m.Data), m.Data[4:], time.Now().UnixNano())
			}
			if len(n.voiceIn) == 0 {
				r.Flush()
			}
		}
	}
}
