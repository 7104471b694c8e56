package server

import (
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/crypto"
	"github.com/plenum-voice/plenum/internal/udpbatch"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/voice"
)

// The fuzz targets of this package drive a server without any of its
// goroutines: they play each connection's reader (calling handle), its
// writer (draining the queues) and the UDP socket themselves, in one
// goroutine, so that an input always does the same thing and a crasher
// reproduces from its file alone.

// fuzzWorld is a server and the fake clients connected to it.
type fuzzWorld struct {
	s     *Server
	udp   *recordingBatch
	tcp   *tcpPool
	peers []*fuzzPeer
}

// fuzzPeer is one fake client: the server side of its connection, the
// client's end of the TCP pair (close needs a real socket) and the
// client's half of the UDP crypto, to read what the server sends it.
type fuzzPeer struct {
	c      *conn
	client *net.TCPConn
	crypt  crypto.CryptState
	udp    netip.AddrPort // bound UDP address; invalid for tunnel-only users
	left   bool           // closed, and disconnect has run
}

// fuzzDataDir is a directory for the servers of one fuzzing process. Every
// input gets a fresh database, so /dev/shm, where SQLite's fsyncs cost
// nothing, is used when there is one.
func fuzzDataDir(f *testing.F) string {
	dir, err := os.MkdirTemp("/dev/shm", "plenum-fuzz-")
	if err != nil {
		return f.TempDir()
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fuzzConfig is the default configuration without the message rate limit,
// whose leaky bucket would make the outcome depend on the clock.
func fuzzConfig() *conf.Config {
	cfg := conf.Default()
	cfg.Server.MessageLimit = 1 << 20
	cfg.Server.MessageBurst = 1 << 20
	return cfg
}

// tcpPool hands out connected loopback TCP pairs. A fake connection
// needs a real socket only because closing it closes one; pairs the
// server did not close are reused, since making them costs more than the
// rest of a voice-path input.
type tcpPool struct {
	ln    *net.TCPListener
	spare [][2]*net.TCPConn // server end, client end
}

func newTCPPool(tb testing.TB) *tcpPool {
	tb.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	p := &tcpPool{ln: ln}
	tb.Cleanup(p.close)
	return p
}

func (p *tcpPool) get(tb testing.TB) (server, client *net.TCPConn) {
	tb.Helper()
	if n := len(p.spare); n > 0 {
		pair := p.spare[n-1]
		p.spare = p.spare[:n-1]
		return pair[0], pair[1]
	}
	client, err := net.DialTCP("tcp", nil, p.ln.Addr().(*net.TCPAddr))
	if err != nil {
		tb.Fatal(err)
	}
	server, err = p.ln.AcceptTCP()
	if err != nil {
		tb.Fatal(err)
	}
	return server, client
}

func (p *tcpPool) put(server, client *net.TCPConn) {
	p.spare = append(p.spare, [2]*net.TCPConn{server, client})
}

func (p *tcpPool) close() {
	for _, pair := range p.spare {
		pair[0].Close()
		pair[1].Close()
	}
	p.spare = nil
	p.ln.Close()
}

// newFuzzWorld makes a server on cfg in dir with an empty database. The
// certificate generated on the first call is kept for the next ones.
func newFuzzWorld(tb testing.TB, dir string, cfg *conf.Config, pool *tcpPool) *fuzzWorld {
	tb.Helper()
	for _, name := range []string{databaseFile, databaseFile + "-wal", databaseFile + "-shm"} {
		os.Remove(filepath.Join(dir, name))
	}
	s, err := New(Options{
		Config: cfg,
		Listen: "127.0.0.1:0", WebListen: NoWeb,
		DataDir:    dir,
		ConfigFile: filepath.Join(dir, DefaultConfigFile),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	w := &fuzzWorld{s: s, udp: &recordingBatch{}, tcp: pool}
	s.udpSocks = []udpSocket{w.udp}
	return w
}

// close disconnects everyone and closes the server's database.
func (w *fuzzWorld) close() {
	w.leaveAll()
	w.s.store.Close()
}

// connect opens a connection that has not authenticated yet.
func (w *fuzzWorld) connect(tb testing.TB) *fuzzPeer {
	tb.Helper()
	nc, client := w.tcp.get(tb)
	c := &conn{
		s:      w.s,
		nc:     nc,
		tc:     tls.Server(nc, &tls.Config{}), // never handshakes: no client certificate
		remote: nc.RemoteAddr().(*net.TCPAddr).AddrPort(),
		ctrl:   ctrlQueue{ready: make(chan struct{}, 1)},
		voice:  make(chan *voiceFrame, voiceQueueLen),
		done:   make(chan struct{}),
	}
	w.s.mu.Lock()
	w.s.conns[c] = struct{}{}
	w.s.mu.Unlock()
	p := &fuzzPeer{c: c, client: client}
	w.peers = append(w.peers, p)
	return p
}

// join connects an authenticated user to ch, as a login would leave it.
// udpPort 0 makes a user that has no UDP path and hears through the tunnel.
func (w *fuzzWorld) join(tb testing.TB, ch *channel, name string, userID int64, f wire.Format, udpPort uint16) *fuzzPeer {
	tb.Helper()
	p := w.connect(tb)
	s := w.s
	version := control.MakeVersion(1, 4, 287)
	if f == wire.Protobuf {
		version = control.MakeVersion(1, 5, 735)
	}
	u := &user{conn: p.c, name: name, certHash: certHashOf(name), version: version, format: f,
		opus: true, connected: time.Now(), userID: userID, targets: make(map[uint32]*mumblepb.VoiceTarget), lastPermAsked: -1}
	if err := u.crypt.GenerateKey(); err != nil {
		tb.Fatal(err)
	}
	key, enc, dec := u.crypt.Key(), u.crypt.EncryptIV(), u.crypt.DecryptIV()
	p.crypt.SetKey(key[:], dec[:], enc[:])
	u.speaker = voice.NewSpeaker(u.connected)
	u.udpFlag.Store(true)
	u.lastActive.Store(u.connected.UnixNano())

	s.mu.Lock()
	u.session, _ = s.sessions.get()
	p.c.user = u
	s.users[u.session] = u
	s.userCount.Store(int32(len(s.users)))
	s.placeLocked(u, ch)
	s.unlock()

	if udpPort != 0 {
		p.udp = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), udpPort)
		u.lastUDP.Store(time.Now().UnixNano())
		s.peers.bind(p.udp, u)
	}
	return p
}

// certHashOf is the certificate hash of a fake client called name.
func certHashOf(name string) string {
	sum := sha1.Sum([]byte(name))
	return hex.EncodeToString(sum[:])
}

// leaveAll disconnects every peer, as if each had hung up.
func (w *fuzzWorld) leaveAll() {
	for _, p := range w.peers {
		if !p.left {
			w.s.disconnect(p.c)
		}
		if isDone(p.c) {
			p.client.Close()
		} else {
			w.tcp.put(p.c.nc.(*net.TCPConn), p.client)
		}
	}
	w.peers = nil
	w.udp.sent = w.udp.sent[:0]
}

// channelNamed returns the child of the root called name, or the root.
func (w *fuzzWorld) channelNamed(name string) *channel {
	for _, ch := range w.s.root.children {
		if ch.name == name {
			return ch
		}
	}
	return w.s.root
}

// peerAt returns the peer whose UDP address is a, or nil. A user's
// address is the one the server has bound to it: a datagram from a new
// port moves it.
func (w *fuzzWorld) peerAt(a netip.AddrPort) *fuzzPeer {
	for _, p := range w.peers {
		if u := p.c.user; !p.left && u != nil {
			if bound := u.udpAddr.Load(); bound != nil {
				p.udp = *bound
			}
			if p.udp == a {
				return p
			}
		}
	}
	return nil
}

// settle does what the writers and readers of the connections would do
// next: deliver what is queued (checking that every frame is well formed)
// and let closed connections leave, until nothing changes.
func (w *fuzzWorld) settle(t *testing.T) {
	t.Helper()
	for {
		for _, p := range w.peers {
			w.deliver(t, p)
		}
		changed := false
		for _, p := range w.peers {
			if !p.left && isDone(p.c) {
				p.left = true
				w.s.disconnect(p.c)
				changed = true
			}
		}
		if !changed {
			return
		}
	}
}

func isDone(c *conn) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// deliver drains p's queues as its writer would. A control frame must be
// a whole frame of a known type that parses; tunnelled voice must be audio
// that p's client can decode.
func (w *fuzzWorld) deliver(t *testing.T, p *fuzzPeer) {
	t.Helper()
	for {
		e, ok := p.c.ctrl.pop()
		if !ok {
			break
		}
		if e.mark != markNone { // sendAndClose or shutdown: flushed, now closed
			p.c.close(p.c.partingReason())
			continue
		}
		if e.frame == nil {
			continue // a hold for a write to disk: nothing to send
		}
		frame := e.frame
		typ, payload := checkFrame(t, frame)
		if typ == control.UDPTunnel {
			t.Fatalf("voice frame % x on the control queue", frame)
		}
		if _, err := control.Unmarshal(typ, payload); err != nil {
			t.Fatalf("server sent a %v that does not parse: %v", typ, err)
		}
	}
	for {
		select {
		case vf := <-p.c.voice:
			typ, payload := checkFrame(t, vf.buf)
			if typ != control.UDPTunnel {
				t.Fatalf("%v frame on the voice queue", typ)
			}
			w.checkVoice(t, p, payload)
			framePool.Put(vf)
			continue
		default:
		}
		return
	}
}

// checkFrame splits a queued frame, which must be exactly one frame.
func checkFrame(t *testing.T, frame []byte) (control.Type, []byte) {
	t.Helper()
	if len(frame) < control.HeaderSize || int(binary.BigEndian.Uint32(frame[2:6])) != len(frame)-control.HeaderSize {
		t.Fatalf("malformed frame queued: % x", frame[:min(len(frame), 16)])
	}
	return control.Type(binary.BigEndian.Uint16(frame)), frame[control.HeaderSize:]
}

// checkVoice checks a voice plaintext sent to p: Opus audio in p's format
// built by a server.
func (w *fuzzWorld) checkVoice(t *testing.T, p *fuzzPeer, plain []byte) {
	t.Helper()
	u := p.c.user
	var a wire.Audio
	if err := wire.DecodeAudio(plain, u.format, true, &a); err != nil {
		t.Fatalf("%v client %d got voice it cannot decode (%v): % x", u.format, u.session, err, plain)
	}
	if a.Sender == u.session && a.Target != 0 && w.s.users[a.Sender] == u {
		// Loopback comes back as normal speech (context 0).
		t.Fatalf("client %d hears itself with context %d", u.session, a.Target)
	}
}

// checkDatagrams reads what the server sent over UDP: what a user's client
// decrypts must be a ping or audio it can decode. Datagrams that are not
// encrypted for their addressee (server-list ping answers, or garbage) are
// returned for the caller to judge.
func (w *fuzzWorld) checkDatagrams(t *testing.T) (unencrypted []sentDatagram) {
	t.Helper()
	for _, d := range w.udp.sent {
		if len(d.data) > maxDatagram {
			t.Fatalf("sent a %d-byte datagram", len(d.data))
		}
		p := w.peerAt(d.to)
		if p == nil {
			unencrypted = append(unencrypted, d)
			continue
		}
		plain, err := p.crypt.Decrypt(nil, d.data)
		if err != nil {
			unencrypted = append(unencrypted, d)
			continue
		}
		if wire.Peek(plain, p.c.user.format) == wire.KindPing {
			if _, err := wire.DecodePing(plain, p.c.user.format); err != nil {
				t.Fatalf("client %d got a bad ping % x: %v", p.c.user.session, plain, err)
			}
			continue
		}
		w.checkVoice(t, p, plain)
	}
	w.udp.sent = w.udp.sent[:0]
	return unencrypted
}

// checkState checks that the control plane's structures agree with each
// other and that the voice path's snapshot agrees with them.
func (w *fuzzWorld) checkState(t *testing.T) {
	t.Helper()
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ch := range s.channels {
		checkChannel(t, s, id, ch)
	}
	for session, u := range s.users {
		if u.session != session || u.channel == nil || s.channels[u.channel.id] != u.channel {
			t.Fatalf("user %d is in a removed channel", session)
		}
		if _, ok := u.channel.users[u]; !ok {
			t.Fatalf("user %d is missing from its channel %d", session, u.channel.id)
		}
		for ch := range u.listening {
			if _, ok := ch.listeners[u]; !ok || s.channels[ch.id] != ch {
				t.Fatalf("user %d listens to channel %d, which does not know it", session, ch.id)
			}
		}
	}
	if s.snapDirty {
		return // published when the lock is released
	}
	checkSnapshot(t, s)
}

func checkChannel(t *testing.T, s *Server, id uint32, ch *channel) {
	t.Helper()
	if ch.id != id {
		t.Fatalf("channel %d is stored as %d", ch.id, id)
	}
	depth := 0
	for p := ch; p != s.root; p = p.parent {
		if p.parent == nil || s.channels[p.parent.id] != p.parent || depth > len(s.channels) {
			t.Fatalf("channel %d does not lead to the root", id)
		}
		depth++
	}
	for _, child := range ch.children {
		if child.parent != ch || s.channels[child.id] != child {
			t.Fatalf("channel %d has a stray child %d", id, child.id)
		}
	}
	for l := range ch.links {
		if _, ok := l.links[ch]; !ok || s.channels[l.id] != l || l == ch {
			t.Fatalf("link %d-%d is one-sided or dangling", id, l.id)
		}
	}
	for u := range ch.users {
		if u.channel != ch || s.users[u.session] != u {
			t.Fatalf("channel %d holds user %d, who is elsewhere", id, u.session)
		}
	}
	for u := range ch.listeners {
		if _, ok := u.listening[ch]; !ok || s.users[u.session] != u {
			t.Fatalf("channel %d has a listener %d that does not listen", id, u.session)
		}
	}
}

// checkSnapshot compares the published snapshot with the control plane.
func checkSnapshot(t *testing.T, s *Server) {
	t.Helper()
	sn := s.voice.Snapshot()
	if len(sn.Users) != len(s.users) || len(sn.Channels) != len(s.channels) {
		t.Fatalf("snapshot has %d users and %d channels, the server %d and %d",
			len(sn.Users), len(sn.Channels), len(s.users), len(s.channels))
	}
	for session, u := range s.users {
		vu := sn.Users[session]
		if vu == nil || vu.Peer != u || vu.Channel == nil || vu.Channel.ID != u.channel.id {
			t.Fatalf("snapshot places user %d wrongly", session)
		}
	}
}

// sentDatagram is a datagram the server sent.
type sentDatagram struct {
	to   netip.AddrPort
	data []byte
}

// recordingBatch is a UDP socket that records what is written to it.
type recordingBatch struct {
	sent []sentDatagram
}

func (b *recordingBatch) ReadBatch([]udpbatch.Datagram) (int, error) { return 0, net.ErrClosed }

func (b *recordingBatch) WriteBatch(ms []udpbatch.Message) {
	for _, m := range ms {
		b.sent = append(b.sent, sentDatagram{to: m.To, data: bytes.Clone(m.Datagrams[0])})
	}
}

func (b *recordingBatch) GSO() bool            { return false }
func (b *recordingBatch) SetGSO(bool)          {}
func (b *recordingBatch) SendFailures() uint64 { return 0 }
func (b *recordingBatch) Close() error         { return nil }
