package client

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/proto/voice"
)

var (
	v134 = control.MakeVersion(1, 3, 4)
	v150 = control.MakeVersion(1, 5, 0)
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dialFake starts a fake server announcing serverVersion and connects a
// client to it.
func dialFake(t *testing.T, serverVersion uint64, cfg Config) (*fakeServer, *Client) {
	t.Helper()
	s := newFakeServer(t, serverVersion)
	s.start()
	cfg.Address = s.addr
	if cfg.Username == "" {
		cfg.Username = "alice"
	}
	c, err := Dial(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

func TestUDPFormat(t *testing.T) {
	for _, tc := range []struct {
		own, server uint64
		want        voice.Format
	}{
		{v150, v150, voice.Protobuf},
		{v150, control.MakeVersion(1, 6, 0), voice.Protobuf},
		{v150, v134, voice.Legacy},
		{v150, control.MakeVersion(1, 4, 287), voice.Legacy},
		{v150, 0, voice.Legacy}, // a server that sent no Version
		{v134, v150, voice.Legacy},
	} {
		if got := udpFormat(tc.own, tc.server); got != tc.want {
			t.Errorf("udpFormat(%s, %s) = %v, want %v", control.VersionString(tc.own),
				control.VersionString(tc.server), got, tc.want)
		}
	}
}

func TestMergeChannel(t *testing.T) {
	chans := map[uint32]*mumblepb.ChannelState{}
	mergeChannel(chans, &mumblepb.ChannelState{ChannelId: proto.Uint32(0), Name: proto.String("Root")})
	mergeChannel(chans, &mumblepb.ChannelState{ChannelId: proto.Uint32(1), Parent: proto.Uint32(0), Name: proto.String("A"), Position: proto.Int32(3)})
	mergeChannel(chans, &mumblepb.ChannelState{ChannelId: proto.Uint32(2), Parent: proto.Uint32(0), Name: proto.String("B")})
	mergeChannel(chans, &mumblepb.ChannelState{ChannelId: proto.Uint32(3), Parent: proto.Uint32(0), Name: proto.String("C")})

	// A rename keeps the other fields.
	mergeChannel(chans, &mumblepb.ChannelState{ChannelId: proto.Uint32(1), Name: proto.String("A2")})
	if ch := chans[1]; ch.GetName() != "A2" || ch.GetParent() != 0 || ch.GetPosition() != 3 {
		t.Errorf("after rename: %v", ch)
	}

	links := func(id uint32) []uint32 { l := slices.Clone(chans[id].Links); slices.Sort(l); return l }
	mergeChannel(chans, &mumblepb.ChannelState{ChannelId: proto.Uint32(1), Links: []uint32{2}})
	mergeChannel(chans, &mumblepb.ChannelState{ChannelId: proto.Uint32(1), LinksAdd: []uint32{3}})
	if got := links(1); !slices.Equal(got, []uint32{2, 3}) {
		t.Errorf("links(1) = %v, want [2 3]", got)
	}
	if got := links(3); !slices.Equal(got, []uint32{1}) {
		t.Errorf("links are symmetric: links(3) = %v, want [1]", got)
	}
	if len(chans[1].LinksAdd) != 0 {
		t.Errorf("deltas must not be stored: %v", chans[1])
	}
	mergeChannel(chans, &mumblepb.ChannelState{ChannelId: proto.Uint32(2), LinksRemove: []uint32{1}})
	if got := links(1); !slices.Equal(got, []uint32{3}) {
		t.Errorf("after links_remove: links(1) = %v, want [3]", got)
	}
	// A full list replaces the set.
	mergeChannel(chans, &mumblepb.ChannelState{ChannelId: proto.Uint32(1), Links: []uint32{2}})
	if got := links(1); !slices.Equal(got, []uint32{2}) {
		t.Errorf("after links: links(1) = %v, want [2]", got)
	}
	if got := links(3); len(got) != 0 {
		t.Errorf("links(3) = %v, want none", got)
	}
	removeChannel(chans, 2)
	if _, ok := chans[2]; ok || len(chans[1].Links) != 0 {
		t.Errorf("after remove: %v", chans)
	}
}

func TestMergeUser(t *testing.T) {
	users := map[uint32]*mumblepb.UserState{}
	mergeUser(users, &mumblepb.UserState{Session: proto.Uint32(5), Name: proto.String("bob"), ChannelId: proto.Uint32(2)})
	mergeUser(users, &mumblepb.UserState{Session: proto.Uint32(5), SelfMute: proto.Bool(true), ListeningChannelAdd: []uint32{3, 4},
		ListeningVolumeAdjustment: []*mumblepb.UserState_VolumeAdjustment{{ListeningChannel: proto.Uint32(3), VolumeAdjustment: proto.Float32(0.5)}}})
	mergeUser(users, &mumblepb.UserState{Session: proto.Uint32(5), ListeningChannelRemove: []uint32{3},
		TemporaryAccessTokens: []string{"x"}})
	u := users[5]
	if u.GetName() != "bob" || u.GetChannelId() != 2 || !u.GetSelfMute() {
		t.Errorf("merged user = %v", u)
	}
	if !slices.Equal(u.ListeningChannelAdd, []uint32{4}) || len(u.ListeningChannelRemove) != 0 ||
		len(u.ListeningVolumeAdjustment) != 0 || len(u.TemporaryAccessTokens) != 0 {
		t.Errorf("listening state = %v", u)
	}
}

func TestDial(t *testing.T) {
	for _, tc := range []struct {
		name          string
		own, server   uint64
		wantV2, wantC bool
	}{
		{"1.5 client", 0, v150, true, false},
		{"1.3 client", v134, v150, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := dialFake(t, tc.server, Config{Password: "pw", Tokens: []string{"t1"}, Version: tc.own})
			ver, auth := s.login0()
			if got := ver.VersionV2 != nil; got != tc.wantV2 {
				t.Errorf("version_v2 sent = %v, want %v (%v)", got, tc.wantV2, ver)
			}
			wantOwn := tc.own
			if wantOwn == 0 {
				wantOwn = v150
			}
			if ver.GetVersionV1() != control.VersionV1(wantOwn) {
				t.Errorf("version_v1 = %#x", ver.GetVersionV1())
			}
			if auth.GetUsername() != "alice" || auth.GetPassword() != "pw" || !slices.Equal(auth.Tokens, []string{"t1"}) || !auth.GetOpus() {
				t.Errorf("authenticate = %v", auth)
			}
			if got := len(auth.CeltVersions) > 0; got != tc.wantC {
				t.Errorf("celt_versions = %v", auth.CeltVersions)
			}
			if c.Session() != fakeSession || c.ServerVersion() != tc.server || c.ServerSync().GetWelcomeText() != "hi" {
				t.Errorf("session %d, server version %#x, sync %v", c.Session(), c.ServerVersion(), c.ServerSync())
			}
			if ch := c.Channels(); len(ch) != 2 || ch[0].GetName() != "Root" || ch[1].GetParent() != 0 {
				t.Errorf("channels = %v", ch)
			}
			if u := c.Users(); len(u) != 2 || u[fakeSession].GetName() != "alice" || u[otherSession].GetChannelId() != 1 {
				t.Errorf("users = %v", u)
			}
			// The returned maps are copies.
			c.Users()[otherSession].Name = proto.String("mallory")
			if c.Users()[otherSession].GetName() != "other" {
				t.Error("Users() exposes internal state")
			}
		})
	}
}

func TestDialReject(t *testing.T) {
	s := newFakeServer(t, v150)
	s.reject = &mumblepb.Reject{Type: mumblepb.Reject_WrongUserPW.Enum(), Reason: proto.String("Wrong password")}
	s.start()
	c, err := Dial(testCtx(t), Config{Address: s.addr, Username: "alice"})
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Type != mumblepb.Reject_WrongUserPW || rej.Reason != "Wrong password" {
		t.Fatalf("Dial = %v, %v; want RejectError WrongUserPW", c, err)
	}
}

func TestDialContext(t *testing.T) {
	s := newFakeServer(t, v150)
	s.noSync = true
	s.start()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, Config{Address: s.addr, Username: "alice"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial = %v, want context.DeadlineExceeded", err)
	}
}

// TestTunnel: without UDP, voice goes both ways through UDPTunnel as the
// plaintext UDP packet.
func TestTunnel(t *testing.T) {
	for _, ver := range []uint64{v134, v150} {
		t.Run(control.VersionString(ver), func(t *testing.T) {
			got := make(chan *AudioPacket, 1)
			s, c := dialFake(t, ver, Config{DisableUDP: true, OnAudio: func(p *AudioPacket) { got <- p }})
			f := voice.FormatFor(ver)
			if c.UDPActive() || !errors.Is(c.WaitUDP(testCtx(t)), ErrNoUDP) {
				t.Fatal("UDP must be off")
			}

			opus := []byte{1, 2, 3, 4}
			if err := c.SendAudio(0, 42, opus, true, &[3]float32{1, 2, 3}); err != nil {
				t.Fatal(err)
			}
			var a voice.Audio
			if err := voice.DecodeAudio(s.nextFrame(control.UDPTunnel), f, false, &a); err != nil {
				t.Fatal(err)
			}
			if a.Target != 0 || a.Frame != 42 || !bytes.Equal(a.Opus, opus) || !a.Terminator || !a.HasPosition || a.Position != [3]float32{1, 2, 3} {
				t.Errorf("server got %+v", a)
			}

			out := voice.AppendAudio(nil, f, &voice.Audio{Target: voice.ContextWhisper, Sender: otherSession, Frame: 9, Opus: []byte{7, 7}}, true)
			s.sendRaw(control.AppendFrame(nil, control.UDPTunnel, out))
			select {
			case p := <-got:
				if p.ViaUDP || p.Sender != otherSession || p.Context != voice.ContextWhisper || p.Frame != 9 ||
					!bytes.Equal(p.Opus, []byte{7, 7}) || p.Position != nil {
					t.Errorf("client got %+v", p)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no tunnelled audio")
			}
		})
	}
}

// TestUDP: after a UDP ping round trip the client sends voice over UDP,
// encrypted, and receives it.
func TestUDP(t *testing.T) {
	for _, ver := range []uint64{v134, v150} {
		t.Run(control.VersionString(ver), func(t *testing.T) {
			got := make(chan *AudioPacket, 1)
			s, c := dialFake(t, ver, Config{OnAudio: func(p *AudioPacket) { got <- p }})
			f := voice.FormatFor(ver)
			if err := c.WaitUDP(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if !c.UDPActive() {
				t.Fatal("UDPActive false after a ping reply")
			}
			if err := c.SendAudio(3, 1000, []byte{9, 8, 7}, false, nil); err != nil {
				t.Fatal(err)
			}
			var p []byte
			select {
			case p = <-s.udpIn:
			case <-time.After(5 * time.Second):
				t.Fatal("no UDP audio at the server")
			}
			var a voice.Audio
			if err := voice.DecodeAudio(p, f, false, &a); err != nil {
				t.Fatal(err)
			}
			if a.Target != 3 || a.Frame != 1000 || !bytes.Equal(a.Opus, []byte{9, 8, 7}) || a.Terminator || a.HasPosition {
				t.Errorf("server got %+v", a)
			}

			s.sendUDP(voice.AppendAudio(nil, f, &voice.Audio{Target: voice.ContextShout, Sender: otherSession, Frame: 5,
				Opus: []byte{1}, HasPosition: true, Position: [3]float32{4, 5, 6}}, true))
			select {
			case p := <-got:
				if !p.ViaUDP || p.Sender != otherSession || p.Context != voice.ContextShout || p.Frame != 5 ||
					p.Position == nil || *p.Position != [3]float32{4, 5, 6} {
					t.Errorf("client got %+v", p)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no UDP audio at the client")
			}
			if st := c.CryptStats(); st.Good < 2 {
				t.Errorf("crypt stats %+v, want >= 2 good (ping reply and audio)", st)
			}
		})
	}
}

// TestCryptSetup covers the two resync messages a server can send.
func TestCryptSetup(t *testing.T) {
	// Without UDP traffic the two IVs stay put, so the reply can be checked.
	s, c := dialFake(t, v150, Config{DisableUDP: true})
	s.send(&mumblepb.CryptSetup{})
	var cs mumblepb.CryptSetup
	if err := proto.Unmarshal(s.nextFrame(control.CryptSetup), &cs); err != nil {
		t.Fatal(err)
	}
	s.cmu.Lock()
	want := s.crypt.DecryptIV()
	s.cmu.Unlock()
	if !bytes.Equal(cs.ClientNonce, want[:]) || cs.Key != nil || cs.ServerNonce != nil {
		t.Errorf("reply to empty CryptSetup = %v, want client_nonce %x", &cs, want)
	}

	iv := make([]byte, 16)
	iv[0] = 200
	s.send(&mumblepb.CryptSetup{ServerNonce: iv})
	if _, err := c.Ping(testCtx(t)); err != nil { // the reader handles frames in order
		t.Fatal(err)
	}
	if st := c.CryptStats(); st.Resync != 1 {
		t.Errorf("resync = %d, want 1", st.Resync)
	}
}

func TestWaitAndServerClose(t *testing.T) {
	s, c := dialFake(t, v150, Config{})
	go s.send(&mumblepb.UserState{Session: proto.Uint32(9), Name: proto.String("late")})
	err := c.Wait(testCtx(t), func(c *Client) bool { _, ok := c.Users()[9]; return ok })
	if err != nil {
		t.Fatal(err)
	}
	s.send(&mumblepb.UserRemove{Session: proto.Uint32(9)})
	if err := c.Wait(testCtx(t), func(c *Client) bool { return len(c.Users()) == 2 }); err != nil {
		t.Fatal(err)
	}

	s.wmu.Lock()
	s.conn.Close()
	s.wmu.Unlock()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the server hung up")
	}
	if c.Err() == nil || errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err = %v", c.Err())
	}
	if err := c.Wait(testCtx(t), func(*Client) bool { return false }); err == nil {
		t.Error("Wait on a dead connection returned nil")
	}
	if err := c.SendText("x", nil, []uint32{0}, nil); err == nil {
		t.Error("Send on a dead connection returned nil")
	}
}

func TestCloseNoLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		s := newFakeServer(t, v150)
		s.start()
		c, err := Dial(testCtx(t), Config{Address: s.addr, Username: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WaitUDP(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		c.Close() // idempotent
		if !errors.Is(c.Err(), ErrClosed) {
			t.Errorf("Err after Close = %v", c.Err())
		}
		s.close()
	}()
	var n int
	for range 100 {
		if n = runtime.NumGoroutine(); n <= base {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("%d goroutines after Close, %d before\n%s", n, base, buf[:runtime.Stack(buf, true)])
}

// TestSendAudioAllocs pins the load generator's hot path at zero
// allocations on both paths.
func TestSendAudioAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	opus := make([]byte, 60)
	pos := &[3]float32{1, 2, 3}

	// The fake server drops what it receives meanwhile: the runtime counts
	// allocations for the whole process, the server's copies included,
	// and under load they land inside the measurement.
	t.Run("udp", func(t *testing.T) {
		s, c := dialFake(t, v150, Config{})
		if err := c.WaitUDP(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		s.discard.Store(true)
		frame := uint64(0)
		if n := testing.AllocsPerRun(200, func() {
			frame++
			if err := c.SendAudio(0, frame, opus, false, pos); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("SendAudio over UDP: %v allocations per call", n)
		}
	})
	t.Run("tunnel", func(t *testing.T) {
		s, c := dialFake(t, v150, Config{DisableUDP: true})
		s.discard.Store(true)
		frame := uint64(0)
		if n := testing.AllocsPerRun(200, func() {
			frame++
			if err := c.SendAudio(0, frame, opus, false, pos); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("SendAudio through the tunnel: %v allocations per call", n)
		}
	})
}

// TestDecryptFailuresCounted: a datagram that arrives twice decrypts once;
// the replay is counted as a datagram that did not decrypt.
func TestDecryptFailuresCounted(t *testing.T) {
	got := make(chan *AudioPacket, 4)
	s, c := dialFake(t, v150, Config{OnAudio: func(p *AudioPacket) { got <- p }})
	if err := c.WaitUDP(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	s.cmu.Lock()
	b := s.crypt.Encrypt(nil, voice.AppendAudio(nil, voice.Protobuf, &voice.Audio{Sender: otherSession, Frame: 7, Opus: []byte{1}}, true))
	s.cmu.Unlock()
	for range 2 {
		if _, err := s.udp.WriteToUDP(b, s.peer); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no UDP audio at the client")
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.DecryptFailures() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := c.DecryptFailures(); n != 1 {
		t.Errorf("%d datagrams did not decrypt, want the 1 replay", n)
	}
	select {
	case p := <-got:
		t.Errorf("the replay was delivered: %+v", p)
	default:
	}
}
