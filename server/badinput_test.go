package server_test

// The bad-input suite: every kind of malformed, premature, oversized or
// unauthorised input runs against one server while a speaker talks to a
// listener over UDP. Each case must end in a clear answer (Reject or
// PermissionDenied of the right type), a disconnect by the server, or be
// ignored without effect where Murmur ignores it; the listener must hear
// every packet; and the server's goroutines and heap must come back to
// where they were.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/server"
)

const (
	badInputHandshakeTimeout = 2 * time.Second // short, but room for the cases' own logins on a loaded machine
	halfOpenConns            = 1000
	// heapSlack is how far HeapInuse may end above its starting point:
	// what the runtime and the pools keep between GCs, far below the
	// tens of megabytes a leak of 1000 connections would hold.
	heapSlack = 4 << 20
)

// badInput is the shared state of the suite.
type badInput struct {
	s                 *testServer
	speaker, listener *peer
}

func TestBadInputSuite(t *testing.T) {
	s := startServer(t, func(c *conf.Config) {
		c.Server.HandshakeTimeout.Duration = badInputHandshakeTimeout
		c.Server.MaxUnauthenticatedPerIP = 0 // hold all 1000 half-open connections, not just the first 500
		// The suite floods from loopback on purpose; autoban has its own tests.
		c.Server.AutobanExempt = []string{"127.0.0.0/8"}
	})
	env := &badInput{s: s, speaker: s.join(t, "speaker", nil), listener: s.join(t, "listener", nil)}
	env.speaker.waitUDP()
	env.listener.waitUDP()
	talk := startTalking(env.speaker)
	warmUp(t, s)
	goroutines, heap := settledGoroutines(0), heapInUse()
	t.Logf("baseline: %d goroutines, %.1f MB heap in use", goroutines, float64(heap)/(1<<20))

	stalledAt := time.Now()
	stalled := openStalled(t, s.addr)
	t.Logf("%d half-open connections opened in %v", len(stalled), time.Since(stalledAt).Round(time.Millisecond))
	if st := s.Stats(); st.Unauthenticated == len(stalled) { // all accepted: the server holds them now
		t.Logf("while held: %d goroutines, %.1f MB heap in use", runtime.NumGoroutine(), float64(heapInUse())/(1<<20))
	}

	t.Run("cases", func(t *testing.T) {
		for _, c := range badInputCases {
			t.Run(c.name, func(t *testing.T) { c.run(t, env) })
		}
	})
	t.Run("half-open connections are closed at the handshake deadline", func(t *testing.T) {
		closedAll(t, stalled, stalledAt.Add(badInputHandshakeTimeout+5*time.Second))
		t.Logf("all %d closed %v after they were opened (handshake_timeout %v)",
			len(stalled), time.Since(stalledAt).Round(time.Millisecond), badInputHandshakeTimeout)
		waitStats(t, s, "no unauthenticated connections", func(st server.Stats) bool { return st.Unauthenticated == 0 })
	})

	sent := talk.stop()
	t.Run("the listener heard every packet", func(t *testing.T) { env.listener.heardAll(t, env.speaker.Session(), sent) })
	t.Run("nobody else was heard or read", func(t *testing.T) {
		if texts := messagesOf[*mumblepb.TextMessage](env.listener); len(texts) > 0 {
			t.Errorf("the listener received %d text messages, e.g. %.40q", len(texts), texts[0].GetMessage())
		}
		if _, ok := channelByName(env.listener.Client, "early"); ok {
			t.Error("a channel created before authentication exists")
		}
	})
	t.Run("goroutines and heap return", func(t *testing.T) {
		if n := settledGoroutines(goroutines); n > goroutines {
			t.Errorf("%d goroutines after the suite, %d before", n, goroutines)
		}
		after := heapInUse()
		t.Logf("after: %.1f MB heap in use (%+.1f MB)", float64(after)/(1<<20), (float64(after)-float64(heap))/(1<<20))
		if after > heap+heapSlack {
			t.Errorf("heap in use grew from %d to %d bytes", heap, after)
		}
	})
	if st := s.Stats(); st.Users != 2 || st.Autobans != 0 {
		t.Errorf("after the suite: %+v", st)
	}
}

var badInputCases = []struct {
	name string
	run  func(t *testing.T, env *badInput)
}{
	{"garbage bytes instead of TLS", func(t *testing.T, env *badInput) {
		nc := dialTCP(t, env.s.addr)
		nc.Write(randomBytes(4096))
		closedAll(t, []net.Conn{nc}, time.Now().Add(2*time.Second))
	}},
	{"garbage bytes inside TLS", func(t *testing.T, env *badInput) {
		c := env.s.raw(t)
		junk := randomBytes(4096)
		junk[2], junk[3] = 0xff, 0xff // the first header claims more than any message
		c.tc.Write(junk)
		c.closed(2 * time.Second)
	}},
	{"a header claiming a huge length", func(t *testing.T, env *badInput) {
		c := env.loggedIn(t, "huge")
		c.tc.Write([]byte{0, byte(control.TextMessage), 0x7f, 0xff, 0xff, 0xff})
		c.closed(2 * time.Second) // at once: the idle timeout is 30 s
		env.listener.sawLeave(t, "huge")
	}},
	{"a truncated header, then the end", func(t *testing.T, env *badInput) {
		c := env.loggedIn(t, "truncated")
		c.tc.Write([]byte{0, byte(control.Ping), 0})
		c.tc.CloseWrite()
		c.closed(2 * time.Second)
		env.listener.sawLeave(t, "truncated")
	}},
	{"invalid protobuf is ignored, as by Murmur", func(t *testing.T, env *badInput) {
		c := env.s.raw(t)
		c.sendFrame(control.Authenticate, []byte{0x0a, 0xff, 0x01}) // a string longer than the message
		c.sendFrame(control.Ping, []byte{0xff, 0xff, 0xff})
		c.login("protobuf")
		c.waitSync()
		c.sendFrame(control.TextMessage, []byte{0x22, 0x80})
		c.sendFrame(control.UserState, bytes.Repeat([]byte{0xff}, 64))
		c.stillServes()
	}},
	{"voice before authentication is ignored", func(t *testing.T, env *badInput) {
		c := env.s.raw(t)
		c.sendFrame(control.UDPTunnel, voice.AppendAudio(nil, voice.Protobuf, &voice.Audio{Frame: 1, Opus: opus}, false))
		c.sendFrame(control.UDPTunnel, voice.AppendAudio(nil, voice.Legacy, &voice.Audio{Frame: 2, Opus: opus}, false))
		c.login("early-voice")
		c.waitSync()
		c.stillServes()
	}},
	{"channel and ACL edits before authentication are ignored", func(t *testing.T, env *badInput) {
		c := env.s.raw(t)
		c.send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("early")})
		c.send(&mumblepb.ACL{ChannelId: proto.Uint32(0), InheritAcls: proto.Bool(false)})
		c.send(&mumblepb.UserState{Mute: proto.Bool(true), Session: proto.Uint32(env.speaker.Session())})
		c.login("early-edits")
		c.waitSync()
		syncControl(t, env.listener) // anything the edits caused would have reached it by now
		if u := env.listener.Users()[env.speaker.Session()]; u.GetMute() {
			t.Error("the speaker was muted before authentication")
		}
	}},
	{"a user name that is not UTF-8", func(t *testing.T, env *badInput) {
		wantReject(t, env.dial("caf\xe9"), mumblepb.Reject_InvalidUsername)
	}},
	{"an over-long user name", func(t *testing.T, env *badInput) {
		wantReject(t, env.dial(strings.Repeat("a", 513)), mumblepb.Reject_InvalidUsername)
	}},
	{"a channel name that is not UTF-8", func(t *testing.T, env *badInput) {
		p := env.s.join(t, "utf8", nil)
		p.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("Hall \xff")})
		p.wantDenied(t, mumblepb.PermissionDenied_ChannelName, 0)
	}},
	{"an over-long channel name", func(t *testing.T, env *badInput) {
		p := env.s.join(t, "longname", nil)
		p.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String(strings.Repeat("a", 100000))})
		p.wantDenied(t, mumblepb.PermissionDenied_ChannelName, 0)
	}},
	{"oversized text message", func(t *testing.T, env *badInput) {
		p := env.s.join(t, "texter", nil)
		p.SendText(strings.Repeat("x", conf.DefaultTextMessageLength+1), []uint32{env.listener.Session()}, nil, nil)
		p.wantDenied(t, mumblepb.PermissionDenied_TextTooLong, 0)
	}},
	{"oversized comment", func(t *testing.T, env *badInput) {
		p := env.s.join(t, "commenter", nil)
		p.Send(&mumblepb.UserState{Comment: proto.String(strings.Repeat("y", conf.DefaultTextMessageLength+1))})
		p.wantDenied(t, mumblepb.PermissionDenied_TextTooLong, 0)
	}},
	{"oversized texture", func(t *testing.T, env *badInput) {
		p := env.s.join(t, "texture", nil)
		p.Send(&mumblepb.UserState{Texture: make([]byte, conf.DefaultImageMessageLength+1)})
		p.wantDenied(t, mumblepb.PermissionDenied_TextTooLong, 0)
	}},
	{"whispering to sessions that do not exist", func(t *testing.T, env *badInput) {
		p := env.s.join(t, "whisperer", noUDP) // tunnelled voice is routed in order with control
		p.SetVoiceTarget(1, &mumblepb.VoiceTarget_Target{Session: []uint32{9999, 10000}})
		p.SetVoiceTarget(2, &mumblepb.VoiceTarget_Target{Session: []uint32{9999}, ChannelId: proto.Uint32(12345)})
		for frame := uint64(1); frame <= 5; frame++ {
			p.SendAudio(1, frame, opus, false, nil)
			p.SendAudio(2, frame, opus, false, nil)
		}
		syncControl(t, p) // routed to nobody; the listener's check at the end hears nothing from it
	}},
	{"an ACL edit without Write", func(t *testing.T, env *badInput) {
		p := env.s.join(t, "acl", nil)
		p.Send(&mumblepb.ACL{ChannelId: proto.Uint32(0), InheritAcls: proto.Bool(true),
			Acls: []*mumblepb.ACL_ChanACL{{Group: proto.String("all"), Grant: proto.Uint32(0xffffffff)}}})
		p.wantDenied(t, mumblepb.PermissionDenied_Permission, 0x1) // Write
	}},
}

// talker sends a voice frame every 10 ms until stopped.
type talker struct {
	quit chan struct{}
	done chan struct{}
	sent atomic.Uint64
}

func startTalking(p *peer) *talker {
	tk := &talker{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tk.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tk.quit:
				return
			case <-tick.C:
				if p.SendAudio(0, tk.sent.Load()+1, opus, false, nil) == nil {
					tk.sent.Add(1)
				}
			}
		}
	}()
	return tk
}

// stop ends the talking and returns how many frames were sent.
func (tk *talker) stop() uint64 {
	close(tk.quit)
	<-tk.done
	return tk.sent.Load()
}

// heardAll checks that p heard frames 1..sent from speaker, each once,
// and nothing from anyone else.
func (p *peer) heardAll(t *testing.T, speaker uint32, sent uint64) {
	t.Helper()
	heard := make(map[uint64]bool)
	deadline := time.After(5 * time.Second)
	for uint64(len(heard)) < sent {
		select {
		case a := <-p.audio:
			switch {
			case a.Sender != speaker:
				t.Errorf("heard frame %d from session %d", a.Frame, a.Sender)
			case heard[a.Frame]:
				t.Errorf("heard frame %d twice", a.Frame)
			}
			heard[a.Frame] = true
		case <-deadline:
			var missing []uint64
			for f := uint64(1); f <= sent && len(missing) < 10; f++ {
				if !heard[f] {
					missing = append(missing, f)
				}
			}
			t.Fatalf("heard %d of %d frames; missing e.g. %v", len(heard), sent, missing)
		}
	}
	t.Logf("heard all %d frames", sent)
}

func (p *peer) wantDenied(t *testing.T, typ mumblepb.PermissionDenied_DenyType, perm uint32) {
	t.Helper()
	p.waitFor("PermissionDenied "+typ.String(), func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](p) {
			if d.GetType() == typ && d.GetPermission()&perm == perm {
				return true
			}
		}
		return false
	})
	if _, err := p.Ping(context.Background()); err != nil {
		t.Errorf("the connection did not survive the denial: %v", err)
	}
}

// sawLeave waits until p sees the user called name leave.
func (p *peer) sawLeave(t *testing.T, name string) {
	t.Helper()
	p.waitFor(name+" leaving", func(c *client.Client) bool {
		for _, u := range c.Users() {
			if u.GetName() == name {
				return false
			}
		}
		return true
	})
}

// loggedIn is a raw connection that has authenticated as name.
func (env *badInput) loggedIn(t *testing.T, name string) *rawConn {
	c := env.s.raw(t)
	c.login(name)
	c.waitSync()
	env.listener.waitFor(name+" joining", func(c *client.Client) bool {
		for _, u := range c.Users() {
			if u.GetName() == name {
				return true
			}
		}
		return false
	})
	return c
}

func (env *badInput) dial(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Address: env.s.addr, Username: name, DisableUDP: true})
	if err == nil {
		c.Close()
	}
	return err
}

func (c *rawConn) waitSync() {
	c.t.Helper()
	c.until("ServerSync", func(_ control.Type, m proto.Message) bool {
		_, ok := m.(*mumblepb.ServerSync)
		return ok
	})
}

// stillServes checks that the server still answers on c.
func (c *rawConn) stillServes() {
	c.t.Helper()
	c.send(&mumblepb.Ping{Timestamp: proto.Uint64(4242)})
	c.until("ping reply", func(_ control.Type, m proto.Message) bool {
		p, ok := m.(*mumblepb.Ping)
		return ok && p.GetTimestamp() == 4242
	})
}

func dialTCP(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// openStalled opens halfOpenConns connections that never authenticate:
// half only connect, half send the start of a TLS ClientHello and stall.
// A few more finish TLS and stall in the middle of a message header.
func openStalled(t *testing.T, addr string) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, halfOpenConns+3)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < halfOpenConns; i++ {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, nc)
		if i%2 == 1 {
			nc.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03})
		}
	}
	for i := 0; i < 3; i++ {
		tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, tc)
		tc.Write(control.AppendFrame(nil, control.Version, nil))
		tc.Write([]byte{0, byte(control.Authenticate), 0, 0}) // two bytes short of a header
	}
	return conns
}

// warmUp opens and closes as many connections as the suite will, so that
// what the runtime keeps once it has run that many goroutines (their
// descriptors, grown tables) is in the baseline and not taken for a leak.
func warmUp(t *testing.T, s *testServer) {
	t.Helper()
	conns := make([]net.Conn, 0, halfOpenConns)
	for i := 0; i < halfOpenConns; i++ {
		nc, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	waitStats(t, s, "the warm-up connections accepted", func(st server.Stats) bool { return st.Unauthenticated == halfOpenConns })
	for _, c := range conns {
		c.Close()
	}
	waitStats(t, s, "the warm-up connections gone", func(st server.Stats) bool { return st.Unauthenticated == 0 })
}

// closedAll checks that the server closes every connection by deadline.
func closedAll(t *testing.T, conns []net.Conn, deadline time.Time) {
	t.Helper()
	buf := make([]byte, 512)
	open := 0
	for _, c := range conns {
		c.SetReadDeadline(deadline)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				open++
			}
			break
		}
	}
	if open > 0 {
		t.Fatalf("%d of %d connections still open", open, len(conns))
	}
}

// randomBytes is junk from a fixed seed, so that a failure can be replayed.
func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(6, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// settledGoroutines waits up to 5 s for the goroutine count to drop to
// want (0: until it is steady) and returns it.
func settledGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		prev := n
		n = runtime.NumGoroutine()
		if (want > 0 && n <= want) || (want == 0 && n == prev) {
			break
		}
	}
	return n
}

// heapInUse is the heap in use after collecting garbage.
func heapInUse() uint64 {
	var ms runtime.MemStats
	for i := 0; i < 3; i++ { // sync.Pools need two collections to empty
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
