// Package server is the Plenum voice server: TLS control connections, users
// and channels (the control plane) and the UDP voice loop (the voice path).
//
// The control plane owns all mutable state under one mutex that is never held
// across I/O: handlers change state, queue messages on each connection's
// bounded queue and return. After every change it publishes an immutable
// snapshot of what the voice path needs (who is where, who may hear whom);
// the voice path only reads snapshots, so routing a packet never waits for
// the control plane or for any TCP write.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/admin"
	"github.com/plenum-voice/plenum/auth"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/stage"
	"github.com/plenum-voice/plenum/store"
	"github.com/plenum-voice/plenum/voice"
)

// Version is the version Plenum announces. It is at least 1.5.0 so that 1.5
// clients use the protobuf UDP format; older clients keep the legacy format,
// chosen per receiver.
var Version = control.MakeVersion(1, 5, 735)

// Release is the release string sent in Version.
const Release = "Plenum"

// databaseFile is the SQLite database inside the data directory.
const databaseFile = "plenum.db"

// Options configure a Server.
type Options struct {
	Config *conf.Config // nil means the embedded default
	Listen string       // overrides Config.Server.Listen when set
	// AdminListen overrides Config.Server.AdminListen when set; NoAdmin
	// turns the admin listener off.
	AdminListen string
	// WebListen overrides Config.Server.WebListen when set; NoWeb turns
	// the web listener (browsers) off.
	WebListen string
	DataDir   string       // overrides Config.Server.DataDir when set
	Logger    *slog.Logger // nil means slog.Default()
	Policy    acl.Policy   // nil means the channels' ACLs (Murmur's engine); tests may override
	// TrustedRoots are the CAs a client certificate must chain to for its
	// user to be in the "strong" group (strong.go); nil means the
	// system's. The server's own certificate is trusted as well.
	TrustedRoots *x509.CertPool
	// Cluster makes the server a node of a cluster (package cluster);
	// nil for a single node.
	Cluster ClusterLink
	// ConfigFile is where edits made from clients are written back and
	// which is watched for changes. Empty means Config.File, or
	// DefaultConfigFile in the data directory for the embedded default.
	ConfigFile string
	// Authenticator, when set, is asked about every login instead of the
	// providers [auth] configures (signin.go); for tests.
	Authenticator auth.Authenticator
}

// Server is a Mumble-compatible voice server. Create it with New, start it
// with Listen and Serve.
//
// Its state is grouped by what guards it, in the embedded structs below:
// the world (channels, users, sessions, bans) under world.mu; the
// configuration file under configFile.fileMu; certificates under
// certificates.certMu; the voice path's state, which needs no lock of the
// control plane; sockets and listeners, set up before serving; the
// lifecycle. What is above them is set in New and read by everyone.
type Server struct {
	// settings are the [server] settings in force; a reload swaps them,
	// so code outside the lock reads them through cfg().
	settings    atomic.Pointer[conf.Server]
	log         *slog.Logger
	policy      acl.Policy
	permCache   *acl.Cache // the ACL engine's cache; nil with a custom policy
	listenAddr  string
	userName    *regexp.Regexp // anchored; matches Unicode letters like Qt
	channelName *regexp.Regexp

	world
	configFile
	certificates
	voicePath
	network
	webSide
	lifecycle
	statusHistory
	signInState

	store *store.Store // registered users, SuperUser password, bans
	names nameTable    // the ACLs' names nobody registered (names.go); own mutex, taken under mu
	banMu sync.Mutex   // serialises changes of the ban list, store and memory alike (bans.go)

	control  controlCounters
	guard    hostGuard // per-address abuse control (abuse.go); own mutex
	refusals refusalBudget
	events   eventHub // the admin API's event stream (apievents.go)
}

// world is the control plane's state. mu guards all of it. It is never
// held across network or disk I/O (sends only enqueue; disk work waits in
// afterUnlock), and it is only released through Server.unlock, which then
// publishes a new snapshot for the voice path and queues a new version of
// the configuration file if either changed.
type world struct {
	mu             sync.Mutex
	config         *conf.Config // the configuration last loaded or written back
	channels       map[uint32]*channel
	ids            channelIdentity // recorded ids by path, and the next id (channelid.go)
	root           *channel
	defaultChannel *channel
	users          map[uint32]*user        // authenticated users by session
	virtual        map[uint32]*virtualUser // the server's own users in channels, by session (virtual.go)
	conns          map[*conn]struct{}
	sessions       sessionPool
	snapDirty      bool        // the voice path's snapshot is out of date; unlock publishes one
	bans           []listedBan // written only with banMu held too
	afterUnlock    []func()    // work (disk I/O) to run once mu is released

	// Writes that confirmations wait for (durable.go, configfile.go).
	configDirty bool      // the file's content changed; unlock queues it
	nextWrite   *writeJob // the newest version of the file not yet taken by the writer
	nextTicket  *ticket   // the ticket of that version, once an edit waits for it
	nextEditors []*user   // whose edits are in that version
	configGen   uint64    // counts reloads from the file; a version queued before one is stale
	holds       []*ticket // tickets that may still hold messages, for logins

	floorTalk map[string]*hallTalk // talk time per hall path (floortalk.go)
	now       func() time.Time     // the clock of speaking times; tests replace it
	userCount atomic.Int32         // authenticated users, for server-list pings (also read without mu)

	clusterState              // the users of other nodes, and what they were told of ours (cluster.go)
	remoteCount  atomic.Int32 // remote users, for server-list pings
}

// configFile is where channel and ACL edits are written back (configfile.go).
// fileMu serialises reading and writing the file, so a reload and a
// write-back never interleave; fileSum, under fileMu, is the SHA-256 of
// the file as the running state last agreed with it: as loaded, reloaded
// or written by us.
type configFile struct {
	configPath string
	writeReady chan struct{} // capacity 1: a version of the file waits in nextWrite
	writerStop chan struct{} // closed to make the config writer write what waits and end
	fileMu     sync.Mutex
	fileSum    [32]byte
}

// certificates are the certificate new connections get and what client
// certificates are verified against (certreload.go, strong.go). certMu
// keeps reloads from crossing; readers load the atomic pointers.
type certificates struct {
	tlsConfig         *tls.Config
	cert              atomic.Pointer[tls.Certificate]
	certFile, keyFile string
	certMu            sync.Mutex
	trustedRoots      *x509.CertPool // for the "strong" group; nil means the system's
	acme              *acmeCerts     // nil unless acme_domain is set (acme.go)
	trust             atomic.Pointer[trustStore]
}

// voicePath is the state voice is routed with. None of it is guarded by
// the world's lock: the engine routes from the snapshots publishLocked
// makes; the UDP transport finds senders by address (peers) or by trial
// decryption among the candidates of their IP, published with each
// snapshot; the stages tick on their own clock.
type voicePath struct {
	voice         *voice.Engine
	peers         peerTable
	udpCandidates atomic.Pointer[map[netip.Addr][]*user]
	udpStats      udpCounters
	clock         *stage.Clock
	codecs        *stage.CodecPool // Opus codecs of the stages; the tick goroutine's
}

// network is the server's sockets and listeners, set up by Listen before
// anything is served and closed by shutdown.
type network struct {
	tcp      *net.TCPListener
	udpSocks []udpSocket     // one per reader, all on the listening port
	admin    *admin.Listener // the admin HTTP listener, nil when off (adminlistener.go)
}

// lifecycle is starting and stopping: the goroutines Serve waits for, and
// the signals of the stop (shutdown.go).
type lifecycle struct {
	started    time.Time  // when New made the server, for the operator's uptime
	goroutines goroutines // every goroutine the server starts, by name
	closing    chan struct{}
	closed     sync.Once
	closeStore sync.Once
	connGone   chan struct{} // capacity 1: a connection ended (for shutdown)
}

// New prepares a server: it validates the configuration, builds the channel
// tree and loads (or generates) the TLS certificate. It opens no sockets.
func New(opts Options) (*Server, error) {
	cfg := opts.Config
	if cfg == nil {
		cfg = conf.Default()
	}
	sc := cfg.Server
	if opts.Listen != "" {
		sc.Listen = opts.Listen
	}
	switch opts.AdminListen {
	case "":
	case NoAdmin:
		sc.AdminListen = ""
	default:
		sc.AdminListen = opts.AdminListen
	}
	switch opts.WebListen {
	case "":
	case NoWeb:
		sc.WebListen = ""
	default:
		sc.WebListen = opts.WebListen
	}
	if opts.DataDir != "" {
		sc.DataDir = opts.DataDir
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}

	permCache := acl.NewCache()
	var policy acl.Policy = aclPolicy{cache: permCache}
	if opts.Policy != nil {
		policy, permCache = opts.Policy, nil
	}
	userName, err := conf.CompilePattern(sc.UsernamePattern)
	if err != nil {
		return nil, fmt.Errorf("username_pattern: %w", err)
	}
	channelName, err := conf.CompilePattern(sc.ChannelNamePattern)
	if err != nil {
		return nil, fmt.Errorf("channel_name_pattern: %w", err)
	}
	if err := checkClusterOptions(opts.Cluster); err != nil {
		return nil, err
	}
	cert, err := loadCertificate(sc.Certificate, sc.Key, sc.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		policy:      policy,
		permCache:   permCache,
		listenAddr:  sc.Listen,
		userName:    userName,
		channelName: channelName,
		world: world{
			config:    cfg,
			users:     make(map[uint32]*user),
			virtual:   make(map[uint32]*virtualUser),
			conns:     make(map[*conn]struct{}),
			sessions:  newSessionPool(sc.MaxUsers, opts.Cluster),
			floorTalk: map[string]*hallTalk{},
			now:       time.Now,
		},
		configFile: configFile{writeReady: make(chan struct{}, 1), writerStop: make(chan struct{})},
		certificates: certificates{tlsConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			// Mumble identifies users by their (usually self-signed) client
			// certificate, so one is requested but never verified.
			ClientAuth: tls.RequestClientCert,
		}},
		lifecycle: lifecycle{started: time.Now(), closing: make(chan struct{}), connGone: make(chan struct{}, 1)},
		refusals:  refusalBudget{slots: make(chan struct{}, explainedRefusalsAtOnce)},

		statusHistory: newStatusHistory(),
	}

	s.tlsConfig.GetCertificate = s.getCertificate
	s.tlsConfig.GetConfigForClient = s.configForClient // a CA's TLS-ALPN-01 check (acme.go)
	if s.acme, err = newACME(&sc); err != nil {
		return nil, err
	}
	s.cert.Store(&cert)
	s.trustedRoots = opts.TrustedRoots
	s.certFile, s.keyFile = certFiles(sc.Certificate, sc.Key, sc.DataDir)
	s.settings.Store(&sc)
	// What the log may say about people: see logprivacy.go.
	s.log = slog.New(newPrivacyHandler(log.Handler(), func() bool { return s.cfg().LogIPs }))
	s.configPath = opts.ConfigFile
	if s.configPath == "" {
		s.configPath = configFileFor(cfg, sc.DataDir)
	}

	if opts.Cluster != nil {
		s.cluster = opts.Cluster
		s.recordsElsewhere = true // until the cluster says this node records
		s.remote = map[uint32]*remoteUser{}
		s.announced = map[uint32]RemoteUser{}
	}
	s.peers.init()
	s.clock = stage.NewClock()
	s.voice = voice.NewEngine(s.clock)
	s.voice.SetBandwidth(sc.Bandwidth)
	if s.cluster != nil {
		s.voice.SetRelay(s.cluster)
	}
	if s.codecs, err = stage.NewCodecPool(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(sc.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if data, err := os.ReadFile(s.configPath); err == nil {
		s.fileSum = sha256.Sum256(data)
	}
	if err := s.newAdmin(&sc); err != nil {
		return nil, err
	}
	if err := s.initSignIn(cfg, opts.Authenticator); err != nil {
		return nil, err
	}
	// A write cut short by a crash leaves its temporary file behind.
	if removed, err := conf.RemoveStaleTemps(s.configPath); len(removed) > 0 {
		s.log.Info("removed temporary files of an interrupted configuration write", "files", removed)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("looking for temporary files of an interrupted configuration write", "err", err)
	}
	if s.store, err = store.Open(filepath.Join(sc.DataDir, databaseFile)); err != nil {
		return nil, err
	}
	if _, err := s.store.PurgeExpiredBans(time.Now()); err != nil {
		s.log.Warn("deleting expired bans failed", "err", err)
	}
	bans, err := s.store.Bans()
	if err != nil {
		s.store.Close()
		return nil, err
	}
	s.bans = listBans(bans)
	// Channels come after the store: their ids are recorded there, and
	// their ACLs name registered users.
	var paths []string
	cfg.Walk(func(path string, _ *conf.Channel, _ string) { paths = append(paths, path) })
	numbered, err := s.store.AssignChannelIDs(paths)
	if err != nil {
		s.store.Close()
		return nil, fmt.Errorf("numbering the channels: %w", err)
	}
	s.ids = newChannelIdentity(numbered)
	if err := s.buildChannels(cfg); err != nil {
		s.store.Close()
		return nil, err
	}
	s.mu.Lock()
	s.applyShapesLocked(cfg)
	s.publishLocked()
	s.unlock()
	return s, nil
}

// Listen binds the TCP and UDP sockets on the same port. With port 0 it picks
// a port that is free for both.
func (s *Server) Listen() error {
	host, portStr, err := net.SplitHostPort(s.listenAddr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", s.listenAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("listen address %q: bad port", s.listenAddr)
	}
	for attempt := 0; ; attempt++ {
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("listen tcp: %w", err)
		}
		bound := tcp.Addr().(*net.TCPAddr).Port
		socks, err := s.listenUDP(net.JoinHostPort(host, strconv.Itoa(bound)))
		if err != nil {
			tcp.Close()
			if port == 0 && attempt < 20 {
				continue // the kernel's free TCP port was taken for UDP; try another
			}
			return err
		}
		s.tcp = tcp.(*net.TCPListener)
		s.udpSocks = socks
		if err := s.listenAdmin(); err != nil {
			s.tcp.Close()
			for _, sock := range socks {
				sock.Close()
			}
			return err
		}
		if err := s.listenWeb(); err != nil {
			s.tcp.Close()
			for _, sock := range socks {
				sock.Close()
			}
			return err
		}
		return nil
	}
}

// Addr is the address the server listens on (TCP and UDP share it).
func (s *Server) Addr() netip.AddrPort {
	return s.tcp.Addr().(*net.TCPAddr).AddrPort()
}

// Serve runs the server until ctx ends, then shuts down gracefully (see
// shutdown) and waits for all of its goroutines. Listen must have been
// called.
func (s *Server) Serve(ctx context.Context) error {
	if s.tcp == nil {
		return errors.New("server: Serve called before Listen")
	}

	g := &s.goroutines
	g.Go("stage clock", s.tickLoop)
	g.Go("accept", s.acceptLoop)
	for _, sock := range s.udpSocks {
		g.Go("udp reader", func() { s.udpLoop(sock) })
	}
	g.Go("config writer", s.configWriter)
	g.Go("config watcher", s.watchConfig)
	if s.admin != nil {
		g.Go("admin listener", func() { s.serveAdmin(ctx) })
	}
	g.Go("certificate watcher", s.watchCertificate)
	if s.acme != nil {
		g.Go("acme certificates", s.acmeLoop)
	}
	g.Go("floor clock", s.floorClock)
	g.Go("status history", s.sampleStatusLoop)
	s.serveWeb()
	if s.cluster != nil {
		g.Go("cluster", func() { s.cluster.Run(s, s.closing) })
	}
	<-ctx.Done()
	s.shutdown()
	return nil
}

// ListenAndServe is Listen followed by Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	return s.Serve(ctx)
}

func (s *Server) acceptLoop() {
	for {
		nc, err := s.tcp.AcceptTCP()
		if err != nil {
			select {
			case <-s.closing:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Error("accept failed", "err", err)
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		s.control.accepted.Add(1)
		if !s.admit(nc) {
			continue
		}
		nc.SetNoDelay(true)
		limitUnsent(nc)
		c := newConn(s, nc)
		s.mu.Lock()
		select {
		case <-s.closing:
			s.unlock()
			nc.Close()
			s.guard.release(c.remote.Addr(), false, false, time.Now(), s.cfg())
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.goroutines.Go("connection", c.serve) // under mu: shutdown waits for it once closing is closed
		s.unlock()
	}
}

// sessionPool hands out session ids FIFO, like Murmur, so a session that just
// left is not reused at once and late packets for it go nowhere.
type sessionPool struct {
	next uint32
	free []uint32
	max  uint32
}

// newSessionPool gives a cluster node the sessions of its block
// (SessionsPerNode), a single node 1 onwards.
func newSessionPool(maxUsers int, link ClusterLink) sessionPool {
	size := uint32(2*maxUsers + 64)
	base := uint32(0)
	if link != nil {
		base = uint32(link.Node()) * SessionsPerNode
		size = min(size, SessionsPerNode-1) // max_users counts the cluster; one node has at most its block
	}
	return sessionPool{next: base + 1, max: base + size}
}

func (p *sessionPool) get() (uint32, bool) {
	if len(p.free) > 0 && (p.next > p.max || len(p.free) > 64) {
		s := p.free[0]
		p.free = p.free[1:]
		return s, true
	}
	if p.next > p.max {
		return 0, false
	}
	s := p.next
	p.next++
	return s, true
}

func (p *sessionPool) put(s uint32) { p.free = append(p.free, s) }

// VersionString is the announced version, e.g. "1.5.735".
func VersionString() string { return control.VersionString(Version) }

// Build names the build of this binary: its module version and the
// commit it was built from, as far as the Go toolchain recorded them
// ("" for a development build without version control information).
func Build() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v // Go stamps the commit into it: v0.0.0-<time>-<commit>[+dirty]
	}
	var parts []string
	for _, kv := range info.Settings {
		switch {
		case kv.Key == "vcs.revision" && len(kv.Value) >= 12:
			parts = append(parts, kv.Value[:12])
		case kv.Key == "vcs.modified" && kv.Value == "true":
			parts = append(parts, "(modified)")
		}
	}
	return strings.Join(parts, " ")
}

// Stats are server-wide counters and gauges, for tests and monitoring.
// Voice sizes are those of the plaintext Mumble voice packets.
type Stats struct {
	Users       int // authenticated users
	Channels    int
	Connections int // open TCP connections, authenticated or not

	VoiceReceived      uint64 // valid voice packets from speakers
	VoiceReceivedBytes uint64

	VoiceForwarded       uint64 // copies sent to listeners, over UDP or the tunnel
	VoiceForwardedUDP    uint64
	VoiceForwardedTunnel uint64 // copies queued for a listener's TCP tunnel
	VoiceSentBytesUDP    uint64
	VoiceSentBytesTunnel uint64

	VoiceSilenced  uint64 // packets from muted, suppressed or self-muted speakers, dropped
	VoiceOverLimit uint64 // packets beyond a speaker's bandwidth limit, dropped
	VoiceShed      uint64 // tunnelled copies dropped: TunnelFull + TunnelLate
	TunnelFull     uint64 // ... because a listener's voice queue was full
	TunnelLate     uint64 // ... because they waited too long in it
	UDPUnmatched   uint64 // datagrams that decrypted for no one
	UDPStale       uint64 // datagrams shed unread after waiting too long in the socket (overload)
	UDPSendFailed  uint64 // datagrams the voice sockets could not send (the kernel refused them)

	// ForwardDelay is the time UDP voice spent in the server, from the
	// kernel's arrival time until its copies were queued for sending.
	ForwardDelay voice.DelayHistogram

	ConnectionsAccepted   uint64
	TLSFailures           uint64              // TLS handshakes that failed or timed out
	Banned                uint64              // connections refused by a ban
	Rejects               [rejectKinds]uint64 // authentications refused, by Mumble's Reject type
	ControlQueueOverflows uint64              // clients dropped because they did not read their control messages
	ControlRateLimited    uint64              // control messages dropped by the message rate limit

	// Crypt sums the server's decrypt statistics over all users, present
	// and departed: packets that arrived in order, late, lost, and resyncs.
	CryptGood, CryptLate, CryptLost, CryptResync uint64

	// Connection abuse control (abuse.go).
	Unauthenticated    int    // connections that have not authenticated yet
	ConnRefusedBanned  uint64 // connections closed at accept: their address is autobanned
	ConnRefusedPending uint64 // connections closed at accept: max_unauthenticated_per_ip reached
	ConnFailed         uint64 // connections that ended without authenticating (what autoban counts)
	Autobans           uint64 // autobans started

	// Invalid datagrams dropped, by reason (besides UDPUnmatched).
	UDPReplayed   uint64 // from a known client's address with a nonce already used or too far behind: replays
	UDPBadMAC     uint64 // from a known client's address but failing authentication: forged or corrupt
	UDPOversized  uint64 // longer than any voice packet
	UDPUndersized uint64 // too short to be a voice packet or ping

	FloorTalk []HallTalk // talk time in each floor-controlled hall
}

// udpSendFailures sums the datagrams the voice sockets could not send.
func (s *Server) udpSendFailures() uint64 {
	var n uint64
	for _, sock := range s.udpSocks {
		n += sock.SendFailures()
	}
	return n
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	v, u, c := s.voice.Counters(), &s.udpStats, &s.control
	st := Stats{
		VoiceReceived:        v.Received,
		VoiceReceivedBytes:   v.ReceivedBytes,
		VoiceForwardedUDP:    v.Copies[voice.UDP],
		VoiceForwardedTunnel: v.Copies[voice.Tunnel],
		VoiceSentBytesUDP:    v.CopyBytes[voice.UDP],
		VoiceSentBytesTunnel: v.CopyBytes[voice.Tunnel],

		VoiceSilenced:  v.Silenced,
		VoiceOverLimit: v.OverBandwidth,
		TunnelFull:     v.Copies[voice.Dropped],
		TunnelLate:     c.tunnelLate.Load(),
		UDPUnmatched:   u.unmatched.Load(),
		UDPStale:       u.stale.Load(),
		ForwardDelay:   v.Delay,

		ConnectionsAccepted:   c.accepted.Load(),
		TLSFailures:           c.tlsFailed.Load(),
		Banned:                c.banned.Load(),
		ControlQueueOverflows: c.queueOverflows.Load(),
		ControlRateLimited:    c.floodDropped.Load(),

		Unauthenticated:    s.guard.unauthenticated(),
		ConnRefusedBanned:  s.guard.refusedBanned.Load(),
		ConnRefusedPending: s.guard.refusedPending.Load(),
		ConnFailed:         s.guard.failed.Load(),
		Autobans:           s.guard.bans.Load(),

		UDPReplayed:   u.replayed.Load(),
		UDPBadMAC:     u.badMAC.Load(),
		UDPOversized:  u.oversized.Load(),
		UDPUndersized: u.undersized.Load(),
	}
	st.UDPSendFailed = s.udpSendFailures()
	st.VoiceForwarded = st.VoiceForwardedUDP + st.VoiceForwardedTunnel
	st.VoiceShed = st.TunnelFull + st.TunnelLate
	for i := range st.Rejects {
		st.Rejects[i] = c.rejected[i].Load()
	}

	s.mu.Lock()
	st.Users, st.Channels, st.Connections = len(s.users), len(s.channels), len(s.conns)
	st.FloorTalk = s.floorTalkLocked()
	crypt := c.departedCrypt
	for _, u := range s.users {
		u.decMu.Lock()
		crypt.add(u.crypt.Stats())
		u.decMu.Unlock()
	}
	s.unlock()
	st.CryptGood, st.CryptLate, st.CryptLost, st.CryptResync = crypt.good, crypt.late, crypt.lost, crypt.resync
	return st
}

// cfg returns the [server] settings in force. Callers must not modify them.
func (s *Server) cfg() *conf.Server { return s.settings.Load() }
