package server_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
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

// trio joins alice, bob and carol and waits until all three have UDP.
func (s *testServer) trio(t *testing.T) (a, b, c *peer) {
	t.Helper()
	a, b, c = s.join(t, "alice", nil), s.join(t, "bob", nil), s.join(t, "carol", nil)
	for _, p := range []*peer{a, b, c} {
		p.waitUDP()
	}
	return a, b, c
}

// sendSilenced sends a packet from a silenced speaker and waits until the
// server has dropped it, so the packet cannot overtake a later unmute (UDP
// and TCP are separate paths with no order between them).
func (s *testServer) sendSilenced(t *testing.T, p *peer, frame uint64) {
	t.Helper()
	before := s.Stats().VoiceSilenced
	p.SendAudio(0, frame, opus, false, nil)
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().VoiceSilenced == before {
		if time.Now().After(deadline) {
			t.Fatal("the silenced packet never reached the server")
		}
		time.Sleep(time.Millisecond)
	}
}

// waitRouted waits until the server has routed n voice packets in all.
func (s *testServer) waitRouted(t *testing.T, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.Stats().VoiceReceived < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("routed %d voice packets, want %d", s.Stats().VoiceReceived, n)
		}
	}
}

func legacyClient(c *client.Config) { c.Version = control.MakeVersion(1, 3, 4) }
func noUDP(c *client.Config)        { c.DisableUDP = true }

func TestVoiceOverUDPReachesBothFormats(t *testing.T) {
	s := startServer(t, nil)
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)                 // 1.5: protobuf UDP
	old := s.join(t, "oldtimer", legacyClient) // 1.3: legacy UDP
	for _, p := range []*peer{a, b, old} {
		p.waitUDP()
	}
	if err := a.SendAudio(0, 7, opus, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{b, old} {
		got := p.expectFrame(7)
		if !got.ViaUDP || got.Sender != a.Session() || got.Context != voice.ContextNormal || !bytes.Equal(got.Opus, opus) {
			t.Errorf("received %+v", got)
		}
	}
	// The terminator flag survives both formats.
	a.SendAudio(0, 8, opus, true, nil)
	for _, p := range []*peer{b, old} {
		if got := p.expectFrame(8); !got.Terminator {
			t.Errorf("terminator lost: %+v", got)
		}
	}
	// And the legacy sender reaches the protobuf listener.
	old.SendAudio(0, 9, opus, false, nil)
	if got := b.expectFrame(9); got.Sender != old.Session() || !got.ViaUDP {
		t.Errorf("from legacy sender: %+v", got)
	}
}

func TestVoiceOverTunnel(t *testing.T) {
	s := startServer(t, nil)
	a := s.join(t, "alice", noUDP)
	b := s.join(t, "bob", noUDP)
	udp := s.join(t, "udpuser", nil)
	udp.waitUDP()

	a.SendAudio(0, 1, opus, false, nil)
	if got := b.expectFrame(1); got.ViaUDP || got.Sender != a.Session() || !bytes.Equal(got.Opus, opus) {
		t.Errorf("tunnel to tunnel: %+v", got)
	}
	if got := udp.expectFrame(1); !got.ViaUDP {
		t.Errorf("a UDP listener should hear a tunnelling speaker over UDP: %+v", got)
	}
	// A listen-only client behind a UDP-blocking network hears a UDP speaker.
	udp.SendAudio(0, 2, opus, false, nil)
	if got := b.expectFrame(2); got.ViaUDP || got.Sender != udp.Session() {
		t.Errorf("UDP speaker to listen-only tunnel client: %+v", got)
	}
}

func TestWhisperReachesOnlyTarget(t *testing.T) {
	s := startServer(t, nil)
	a, b, c := s.trio(t)
	a.SetVoiceTarget(1, &mumblepb.VoiceTarget_Target{Session: []uint32{b.Session()}})
	// VoiceTarget has no reply; a PermissionQuery round trip orders it.
	syncControl(t, a)
	a.SendAudio(1, 1, opus, false, nil)
	a.SendAudio(0, 2, opus, false, nil) // fence
	if got := b.expectFrame(1); got.Context != voice.ContextWhisper {
		t.Errorf("whisper context %d, want %d", got.Context, voice.ContextWhisper)
	}
	b.expectFrame(2)
	c.expectFrame(2) // carol heard nothing before the fence
}

func TestShoutReachesChannelWithContext1(t *testing.T) {
	s := startServer(t, nil)
	a, b, c := s.trio(t)
	b.moveTo("Room 1", a, c)
	room := a.channelID("Room 1")
	breakouts := a.channelID("Breakout rooms")
	a.SetVoiceTarget(2, &mumblepb.VoiceTarget_Target{ChannelId: proto.Uint32(room)})
	a.SetVoiceTarget(3, &mumblepb.VoiceTarget_Target{ChannelId: proto.Uint32(breakouts), Children: proto.Bool(true)})
	syncControl(t, a)

	a.SendAudio(2, 1, opus, false, nil)
	a.SendAudio(3, 2, opus, false, nil) // shout to the breakout tree reaches Room 1 too
	a.SendAudio(0, 3, opus, false, nil) // fence: normal speech reaches only the lobby
	if got := b.expectFrame(1); got.Context != voice.ContextShout {
		t.Errorf("shout context %d, want %d", got.Context, voice.ContextShout)
	}
	if got := b.expectFrame(2); got.Context != voice.ContextShout {
		t.Errorf("shout to children: context %d", got.Context)
	}
	c.expectFrame(3) // carol (lobby) got neither shout
	// Group filter: "in" is the only member group of Room 1's users, "out" none.
	a.SetVoiceTarget(4, &mumblepb.VoiceTarget_Target{ChannelId: proto.Uint32(room), Group: proto.String("out")})
	a.SetVoiceTarget(5, &mumblepb.VoiceTarget_Target{ChannelId: proto.Uint32(room), Group: proto.String("in")})
	syncControl(t, a)
	a.SendAudio(4, 4, opus, false, nil)
	a.SendAudio(5, 5, opus, false, nil)
	b.expectFrame(5)
}

func TestLinkedChannelsHearEachOther(t *testing.T) {
	s := startServer(t, nil)
	a, b, c := s.trio(t)
	a.moveTo("Plenary", b, c)
	b.moveTo("Overflow", a, c) // linked with Plenary in the default config
	c.moveTo("Room 1", a, b)
	a.SendAudio(0, 1, opus, false, nil)
	if got := b.expectFrame(1); got.Context != voice.ContextNormal {
		t.Errorf("linked channel context %d", got.Context)
	}
	b.SendAudio(0, 2, opus, false, nil)
	a.expectFrame(2)
	// Carol in an unlinked room hears neither; a loopback to herself is her
	// fence (both frames were routed: a and b heard them).
	c.SendAudio(voice.TargetLoopback, 3, opus, false, nil)
	if got := c.expectFrame(3); got.Sender != c.Session() {
		t.Errorf("loopback sender %d", got.Sender)
	}
}

func TestSilencedSendersAndDeafReceivers(t *testing.T) {
	s := startServer(t, nil)
	a, b, c := s.trio(t)
	// Self-muted alice reaches no one.
	a.SetSelfMute(true, false)
	b.waitFor("alice muted", func(cl *client.Client) bool { return cl.Users()[a.Session()].GetSelfMute() })
	s.sendSilenced(t, a, 1)
	// Self-deafened carol hears nothing.
	c.SetSelfMute(true, true)
	b.waitFor("carol deaf", func(cl *client.Client) bool { return cl.Users()[c.Session()].GetSelfDeaf() })
	b.SendAudio(0, 2, opus, false, nil)
	a.expectFrame(2) // alice heard bob, not herself; bob heard nothing from alice:
	a.SetSelfMute(false, false)
	b.waitFor("alice unmuted", func(cl *client.Client) bool { return !cl.Users()[a.Session()].GetSelfMute() })
	a.SendAudio(0, 3, opus, false, nil)
	b.expectFrame(3)
	c.SetSelfMute(false, false)
	b.waitFor("carol hears", func(cl *client.Client) bool { return !cl.Users()[c.Session()].GetSelfDeaf() })
	a.SendAudio(0, 4, opus, false, nil)
	c.expectFrame(4) // nothing before: frames 2 and 3 were not delivered while deaf
}

func TestPositionalOnlyWithinPluginContext(t *testing.T) {
	s := startServer(t, nil)
	a, b, c := s.trio(t)
	a.Send(&mumblepb.UserState{PluginContext: []byte("game:map1")})
	b.Send(&mumblepb.UserState{PluginContext: []byte("game:map1")})
	c.Send(&mumblepb.UserState{PluginContext: []byte("other")})
	syncControl(t, a)
	syncControl(t, b)
	syncControl(t, c)
	pos := [3]float32{1.5, -2, 3}
	a.SendAudio(0, 1, opus, false, &pos)
	if got := b.expectFrame(1); got.Position == nil || *got.Position != pos {
		t.Errorf("same context: position %v, want %v", got.Position, pos)
	}
	if got := c.expectFrame(1); got.Position != nil {
		t.Errorf("other context received position %v", *got.Position)
	}
}

// syncControl makes sure everything p sent before has been processed: the
// server answers a PermissionQuery in order.
func syncControl(t testing.TB, p *peer) {
	t.Helper()
	before := len(messagesOf[*mumblepb.PermissionQuery](p))
	p.Send(&mumblepb.PermissionQuery{ChannelId: proto.Uint32(0)})
	p.waitFor("permission query reply", func(*client.Client) bool {
		return len(messagesOf[*mumblepb.PermissionQuery](p)) > before
	})
}

func TestTenClientsBehindOneAddressAllGetUDP(t *testing.T) {
	s := startServer(t, nil)
	peers := make([]*peer, 10)
	for i := range peers {
		peers[i] = s.join(t, fmt.Sprintf("venue%02d", i), nil)
	}
	for _, p := range peers {
		p.waitUDP()
	}
	for i, speaker := range peers[:3] {
		frame := uint64(100 + i)
		speaker.SendAudio(0, frame, opus, false, nil)
		for _, p := range peers {
			if p == speaker {
				continue
			}
			if got := p.expectFrame(frame); !got.ViaUDP || got.Sender != speaker.Session() {
				t.Errorf("listener %d: %+v", p.Session(), got)
			}
		}
	}
}

func TestTCPPingCarriesCryptStats(t *testing.T) {
	s := startServer(t, nil)
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	a.waitUDP()
	b.waitUDP()
	for i := uint64(0); i < 10; i++ {
		a.SendAudio(0, i, opus, false, nil)
	}
	for i := uint64(0); i < 10; i++ {
		b.expectFrame(i) // all ten were decrypted before the ping below
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	a.waitFor("ping with stats", func(*client.Client) bool {
		for _, p := range messagesOf[*mumblepb.Ping](a) {
			if p.GetGood() >= 10 {
				return true
			}
		}
		return false
	})
}

// TestStuckClientDoesNotDelayOthers connects a client that authenticates
// and then never reads, while a flooder whispers large tunnelled packets to
// it until its TCP buffers and its voice queue are full. Voice between two
// other users must keep flowing on time meanwhile.
func TestStuckClientDoesNotDelayOthers(t *testing.T) {
	s := startServer(t, nil)
	stuck := s.rawWith(t, 4096)
	stuck.login("stuck")
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	flooder := s.join(t, "flooder", noUDP)
	a.waitUDP()
	b.waitUDP()
	var stuckSession uint32
	flooder.waitFor("stuck user", func(c *client.Client) bool {
		for session, u := range c.Users() {
			if u.GetName() == "stuck" {
				stuckSession = session
				return true
			}
		}
		return false
	})
	flooder.SetVoiceTarget(1, &mumblepb.VoiceTarget_Target{Session: []uint32{stuckSession}})
	syncControl(t, flooder)

	stopFlood := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		big := make([]byte, 1000)
		for i := uint64(0); ; i++ {
			select {
			case <-stopFlood:
				return
			default:
			}
			if flooder.SendAudio(1, i, big, false, nil) != nil {
				return
			}
			if i%4 == 0 {
				// About 4 MB/s: enough to fill the stuck client's buffers
				// within the test without starving the server of CPU.
				time.Sleep(time.Millisecond)
			}
		}
	}()

	const n = 150 // 3 s of speech
	var worst time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			got := b.nextAudio()
			if got.Frame != uint64(i) {
				t.Errorf("frame %d arrived as %d", i, got.Frame)
				return
			}
			sent := time.Unix(0, int64(bytesToUint64(got.Opus)))
			if d := got.Received.Sub(sent); d > worst {
				worst = d
			}
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	payload := make([]byte, 100)
	for i := 0; i < n; i++ {
		<-tick.C
		putUint64(payload, uint64(time.Now().UnixNano()))
		a.SendAudio(0, uint64(i), payload, false, nil)
	}
	close(stopFlood)
	wg.Wait()
	st := s.Stats()
	if st.VoiceShed == 0 {
		t.Errorf("no voice was shed for the stuck client (stats %+v): the test did not fill its queue", st)
	}
	// Generous for a loaded 2-core CI machine; a stall behind the stuck
	// client's writes would last until its 10 s write timeout.
	if worst > 500*time.Millisecond {
		t.Errorf("worst one-way delay %v with a stuck client connected", worst)
	}
	t.Logf("worst one-way delay over %d packets: %v; stats %+v", n, worst, st)
}

func putUint64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

func bytesToUint64(b []byte) uint64 {
	var v uint64
	for i := 0; i < 8 && i < len(b); i++ {
		v |= uint64(b[i]) << (8 * i)
	}
	return v
}

// TestVoiceBeyondBandwidthIsDropped: a speaker sending more than the
// server's bandwidth allows is cut to it, and the excess is counted.
func TestVoiceBeyondBandwidthIsDropped(t *testing.T) {
	const (
		bandwidth = 40000         // bits/s
		perSecond = bandwidth / 8 // bytes
		frameCost = 32 + 100      // headers as Murmur counts them, and the Opus data
		sent      = 300
	)
	s := startServer(t, func(c *conf.Config) { c.Server.Bandwidth = bandwidth })
	joined := time.Now()
	a, b := s.join(t, "alice", nil), s.join(t, "bob", nil)
	a.waitUDP()
	b.waitUDP()
	for i := 1; i <= sent; i++ { // about 1000 frames a second: 26 times the limit
		a.SendAudio(0, uint64(i), opus, false, nil)
		time.Sleep(time.Millisecond)
	}
	// Murmur's window starts a second before the speaker connected.
	allowance := int((time.Since(joined)+time.Second).Seconds()*perSecond/frameCost) + 1
	st := waitStats(t, s, "every frame seen", func(st server.Stats) bool {
		return st.VoiceReceived+st.VoiceOverLimit+st.UDPStale == sent
	})
	if st.VoiceOverLimit < sent-uint64(allowance) || st.VoiceReceived > uint64(allowance) {
		t.Fatalf("passed %d, dropped %d of %d frames; the limit allows %d", st.VoiceReceived, st.VoiceOverLimit, sent, allowance)
	}
	for i := uint64(0); i < st.VoiceReceived; i++ {
		b.nextAudio()
	}
	select {
	case p := <-b.audio:
		t.Fatalf("bob heard frame %d beyond what passed", p.Frame)
	case <-time.After(100 * time.Millisecond):
	}
}
