package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/voice"
)

// newBareServer returns a server with sockets bound but no goroutines, for
// driving the voice path directly.
func newBareServer(tb testing.TB) *Server {
	tb.Helper()
	return newBareServerWith(tb, conf.Default())
}

func newBareServerWith(tb testing.TB, cfg *conf.Config) *Server {
	tb.Helper()
	s, err := New(Options{
		Config: cfg,
		Listen: "127.0.0.1:0", WebListen: NoWeb,
		AdminListen: NoAdmin,
		DataDir:     tb.TempDir(),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.tcp.Close()
		for _, sock := range s.udpSocks {
			sock.Close()
		}
	})
	return s
}

// addFakeUser puts a user into ch whose UDP voice goes to sink.
func (s *Server) addFakeUser(tb testing.TB, ch *channel, format wire.Format, sink netip.AddrPort) *user {
	tb.Helper()
	pipe, _ := net.Pipe() // a TLS layer that never handshakes: enough for ConnectionState
	c := &conn{
		s:      s,
		tc:     tls.Server(pipe, &tls.Config{}),
		remote: netip.MustParseAddrPort("127.0.0.1:1"),
		ctrl:   ctrlQueue{ready: make(chan struct{}, 1)},
		voice:  make(chan *voiceFrame, voiceQueueLen),
		done:   make(chan struct{}),
	}
	s.mu.Lock()
	defer s.unlock()
	session, _ := s.sessions.get()
	u := &user{conn: c, session: session, name: "u" + string(rune('a'+session%26)), format: format, userID: -1,
		targets: make(map[uint32]*mumblepb.VoiceTarget)}
	if err := u.crypt.GenerateKey(); err != nil {
		tb.Fatal(err)
	}
	u.speaker = voice.NewSpeaker(time.Now())
	u.udpFlag.Store(true)
	if sink.IsValid() {
		u.udpAddr.Store(&sink)
		u.lastUDP.Store(time.Now().UnixNano())
	}
	c.user = u
	s.users[session] = u
	s.placeLocked(u, ch)
	return u
}

// forward routes one packet and sends what it produced, as the UDP reader
// does for each read batch.
func (s *Server) forward(r *voice.Router, u *user, pkt []byte, now int64) {
	s.voice.Route(r, u.session, u, pkt, now)
	r.Flush()
}

func udpSink(tb testing.TB) (netip.AddrPort, *net.UDPConn) {
	tb.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), pc
}

func audioPacket(f wire.Format, target uint32, frame uint64) []byte {
	opus := make([]byte, 100)
	return wire.AppendAudio(nil, f, &wire.Audio{Target: target, Frame: frame, Opus: opus}, false)
}

// TestForwardAllocatesNothing pins the steady-state cost of forwarding: no
// heap allocation per packet, whatever the receivers' formats.
func TestForwardAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; run without -race")
	}
	// One sender forwarding a thousand packets at once would be over any
	// real bandwidth limit; the limit is still checked, only set high.
	cfg := conf.Default()
	cfg.Server.Bandwidth = 1 << 40
	s := newBareServerWith(t, cfg)
	sink, _ := udpSink(t)
	sender := s.addFakeUser(t, s.root, wire.Protobuf, sink)
	for i := 0; i < 10; i++ {
		f := wire.Legacy
		if i%2 == 0 {
			f = wire.Protobuf
		}
		s.addFakeUser(t, s.root, f, sink)
	}
	r := s.newRouter(s.udpSocks[0])
	pkt := audioPacket(wire.Protobuf, 0, 1)
	s.forward(r, sender, pkt, time.Now().UnixNano()) // warm up scratch buffers
	before := s.voice.Counters().Copies[voice.UDP]
	allocs := testing.AllocsPerRun(1000, func() {
		s.forward(r, sender, pkt, time.Now().UnixNano())
	})
	if allocs != 0 {
		t.Fatalf("forwarding one packet to 10 receivers allocated %.1f times, want 0", allocs)
	}
	if got := s.voice.Counters().Copies[voice.UDP] - before; got != 1001*10 {
		t.Fatalf("forwarded %d copies, want %d", got, 1001*10)
	}
}

// TestTunnelForwardAllocatesNothing covers receivers without UDP: their
// copies go to the TCP queue in pooled frames.
func TestTunnelForwardAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; run without -race")
	}
	s := newBareServer(t)
	sender := s.addFakeUser(t, s.root, wire.Protobuf, netip.AddrPort{})
	rcv := s.addFakeUser(t, s.root, wire.Legacy, netip.AddrPort{})
	r := s.newRouter(s.udpSocks[0])
	pkt := audioPacket(wire.Protobuf, 0, 1)
	drain := func() {
		for len(rcv.conn.voice) > 0 {
			framePool.Put(<-rcv.conn.voice)
		}
	}
	s.forward(r, sender, pkt, time.Now().UnixNano())
	drain()
	allocs := testing.AllocsPerRun(1000, func() {
		s.forward(r, sender, pkt, time.Now().UnixNano())
		drain()
	})
	if allocs != 0 {
		t.Fatalf("tunnel forwarding allocated %.1f times per packet, want 0", allocs)
	}
}

// BenchmarkForward measures the server's cost of routing one packet to 50
// listeners over UDP; ns/op divided by 50 is the cost per forwarded copy.
func BenchmarkForward50(b *testing.B) {
	// One sender at the benchmark's rate is far over any real bandwidth
	// limit, which would drop its packets: set it out of reach.
	cfg := conf.Default()
	cfg.Server.Bandwidth = 1 << 40
	s := newBareServerWith(b, cfg)
	// The sink is never read: once its buffer is full the kernel drops at
	// once, so sendto never waits for a reader and the benchmark measures
	// the server's own work.
	sink, _ := udpSink(b)
	sender := s.addFakeUser(b, s.root, wire.Protobuf, sink)
	for i := 0; i < 50; i++ {
		// Each listener its own address, as in life: copies for one
		// address would be coalesced into one UDP_SEGMENT send.
		own, _ := udpSink(b)
		s.addFakeUser(b, s.root, wire.Protobuf, own)
	}
	r := s.newRouter(s.udpSocks[0])
	pkt := audioPacket(wire.Protobuf, 0, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.forward(r, sender, pkt, time.Now().UnixNano())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*50), "ns/copy")
}

// TestStaleUDPFallsBackToTunnel: a client whose UDP went quiet (the failure
// of Mumble issue 6311) receives voice over TCP instead of into the void.
func TestStaleUDPFallsBackToTunnel(t *testing.T) {
	s := newBareServer(t)
	sink, pc := udpSink(t)
	sender := s.addFakeUser(t, s.root, wire.Protobuf, sink)
	rcv := s.addFakeUser(t, s.root, wire.Protobuf, sink)
	r := s.newRouter(s.udpSocks[0])
	now := time.Now()

	s.forward(r, sender, audioPacket(wire.Protobuf, 0, 1), now.UnixNano())
	if len(rcv.conn.voice) != 0 {
		t.Fatal("fresh UDP receiver got voice through the tunnel")
	}
	pc.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := pc.Read(make([]byte, 2048)); err != nil {
		t.Fatalf("fresh UDP receiver got nothing over UDP: %v", err)
	}

	rcv.lastUDP.Store(now.Add(-udpFreshness - time.Second).UnixNano())
	s.forward(r, sender, audioPacket(wire.Protobuf, 0, 2), now.UnixNano())
	if len(rcv.conn.voice) != 1 {
		t.Fatalf("stale UDP receiver: %d tunnelled frames, want 1", len(rcv.conn.voice))
	}

	// Tunnelled audio from the receiver itself also means "use TCP", as
	// in Murmur, until it sends UDP audio again.
	rcv.lastUDP.Store(now.UnixNano())
	rcv.udpFlag.Store(false)
	s.forward(r, sender, audioPacket(wire.Protobuf, 0, 3), now.UnixNano())
	if len(rcv.conn.voice) != 2 {
		t.Fatalf("tunnelling receiver: %d tunnelled frames, want 2", len(rcv.conn.voice))
	}
}

// TestServerAsksForResync covers the server side of the 5 s rules: after
// decrypt failures with nothing good for 5 s it sends one empty
// CryptSetup, not another within 5 s; the client's nonce then counts as a
// resync.
func TestServerAsksForResync(t *testing.T) {
	s := newBareServer(t)
	u := s.addFakeUser(t, s.root, wire.Protobuf, netip.AddrPort{})
	garbage := make([]byte, 40)
	plain := make([]byte, 0, 1024)
	now := time.Now()

	u.connected = now.Add(-3 * time.Second)
	s.decrypt(u, garbage, plain, now, false)
	if n := len(u.conn.ctrl.frames); n != 0 {
		t.Fatalf("asked for a resync %d times within 5 s of connecting", n)
	}
	u.connected = now.Add(-10 * time.Second)
	s.decrypt(u, garbage, plain, now, false)
	s.decrypt(u, garbage, plain, now.Add(time.Second), false)
	if n := len(u.conn.ctrl.frames); n != 1 {
		t.Fatalf("%d resync requests, want exactly 1", n)
	}
	s.decrypt(u, garbage, plain, now.Add(6*time.Second), false)
	if n := len(u.conn.ctrl.frames); n != 2 {
		t.Fatalf("%d resync requests after 6 s, want 2", n)
	}
	// Trial decrypts of other users' packets never ask.
	s.decrypt(u, garbage, plain, now.Add(20*time.Second), true)
	if n := len(u.conn.ctrl.frames); n != 2 {
		t.Fatalf("a trial decrypt asked for a resync")
	}

	nonce := make([]byte, 16)
	nonce[0] = 99
	s.handleCryptSetup(u, &mumblepb.CryptSetup{ClientNonce: nonce})
	if got := u.crypt.DecryptIV(); got[0] != 99 || u.crypt.Stats().Resync != 1 {
		t.Fatalf("after resync: decrypt IV %x, stats %+v", got, u.crypt.Stats())
	}
}

// TestStaleTunnelVoiceIsDropped: voice that waited too long for a
// congested TCP connection is dropped at the writer instead of sent late.
func TestStaleTunnelVoiceIsDropped(t *testing.T) {
	s := newBareServer(t)
	u := s.addFakeUser(t, s.root, wire.Protobuf, netip.AddrPort{})
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	now := time.Now().UnixNano()
	fresh, stale := framePool.Get().(*voiceFrame), framePool.Get().(*voiceFrame)
	fresh.buf, fresh.queued = append(fresh.buf[:0], 1, 2, 3), now
	stale.buf, stale.queued = append(stale.buf[:0], 4, 5, 6), now-int64(maxTunnelDelay)-int64(time.Millisecond)
	before := s.Stats().VoiceShed
	if !u.conn.write(bw, nil, stale) || !u.conn.write(bw, nil, fresh) {
		t.Fatal("write failed")
	}
	bw.Flush()
	if !bytes.Equal(out.Bytes(), []byte{1, 2, 3}) {
		t.Fatalf("wrote %v, want only the fresh frame", out.Bytes())
	}
	if s.Stats().VoiceShed != before+1 {
		t.Fatalf("shed counter %d, want %d", s.Stats().VoiceShed, before+1)
	}
}
