package voice

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/internal/udpbatch"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/stage"
)

// recorder is a test transport: a peer that keeps what it is sent. It
// shows that a transport plugs into the engine by implementing Peer alone.
type recorder struct {
	mu   sync.Mutex
	got  []wire.Audio
	path Path
}

func (p *recorder) SendVoice(_ *udpbatch.Batch, plain []byte, _ int64) Path {
	var a wire.Audio
	if err := wire.DecodeAudio(plain, wire.Protobuf, true, &a); err != nil {
		panic(fmt.Sprintf("a copy that does not decode: %v", err))
	}
	a.Opus = slices.Clone(a.Opus)
	p.mu.Lock()
	p.got = append(p.got, a)
	p.mu.Unlock()
	return p.path
}

func (p *recorder) heard() []wire.Audio {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// allowAll lets everyone do everything.
type allowAll struct{}

func (allowAll) Permissions(acl.Tree, *acl.Subject, uint32) acl.Permission { return acl.All }
func (allowAll) InGroup(acl.Tree, *acl.Subject, uint32, string) bool       { return false }

// world is a snapshot built by hand, as the control plane builds one.
type world struct {
	sn    *Snapshot
	peers map[uint32]*recorder
}

func newWorld(channels ...uint32) *world {
	w := &world{sn: &Snapshot{Users: map[uint32]*User{}, Virtual: map[uint32]*User{}, Channels: map[uint32]*Channel{}, Policy: allowAll{}},
		peers: map[uint32]*recorder{}}
	for _, id := range channels {
		w.sn.Channels[id] = &Channel{ID: id}
	}
	return w
}

func (w *world) user(session, channel uint32, edit func(*User)) *recorder {
	p := &recorder{path: UDP}
	u := &User{Session: session, Channel: w.sn.Channels[channel], Format: wire.Protobuf, Peer: p,
		Speaker: NewSpeaker(time.Now().Add(-time.Minute)), Subject: &acl.Subject{Session: session, Channel: channel}}
	if edit != nil {
		edit(u)
	}
	u.Channel.Members = append(u.Channel.Members, u)
	w.sn.Users[session] = u
	w.sn.MaxSession = max(w.sn.MaxSession, session)
	w.peers[session] = p
	return p
}

// nowhere is a Sender for routers whose copies all go to test peers.
type nowhere struct{}

func (nowhere) WriteBatch([]udpbatch.Message) {}
func (nowhere) GSO() bool                     { return false }

func newTestEngine(w *world) (*Engine, *Router) {
	e := NewEngine(stage.NewClock())
	e.SetBandwidth(1 << 30)
	e.Publish(w.sn)
	return e, e.NewRouter(nowhere{}, 8, 8, 1100)
}

func packet(target uint32, frame uint64) []byte {
	return wire.AppendAudio(nil, wire.Protobuf, &wire.Audio{Target: target, Frame: frame, Opus: []byte{1, 2, 3}}, false)
}

// TestEngineRoutesToAnyTransport: the engine routes by the snapshot and
// hands each listener's copy to that listener's peer, whatever transport
// it is: here a test transport. Deaf listeners and other channels get
// nothing, the sender gets no echo, a listener gets the listen context,
// and every copy is counted by the path the peer reports.
func TestEngineRoutesToAnyTransport(t *testing.T) {
	w := newWorld(0, 1, 2)
	speaker := w.user(1, 1, nil)
	hall := w.user(2, 1, nil)
	deaf := w.user(3, 1, func(u *User) { u.Deaf = true })
	elsewhere := w.user(4, 2, nil)
	listener := w.user(5, 2, nil)
	w.sn.Channels[1].Listeners = []Listener{{User: w.sn.Users[5], Volume: 1}}
	tunnelled := w.user(6, 1, nil)
	tunnelled.path = Tunnel

	e, r := newTestEngine(w)
	if !e.Route(r, 1, speaker, packet(0, 7), time.Now().UnixNano()) {
		t.Fatal("a packet of normal speech was not routed")
	}
	for name, c := range map[string]struct {
		p       *recorder
		context uint32
		n       int
	}{
		"the hall": {hall, wire.ContextNormal, 1}, "the tunnelled": {tunnelled, wire.ContextNormal, 1},
		"the listener": {listener, wire.ContextListen, 1},
		"the speaker":  {speaker, 0, 0}, "the deaf": {deaf, 0, 0}, "another channel": {elsewhere, 0, 0},
	} {
		got := c.p.heard()
		if len(got) != c.n {
			t.Errorf("%s got %d copies, want %d", name, len(got), c.n)
			continue
		}
		if c.n > 0 && (got[0].Sender != 1 || got[0].Frame != 7 || got[0].Target != c.context) {
			t.Errorf("%s got %+v", name, got[0])
		}
	}
	c := e.Counters()
	if c.Received != 1 || c.Copies[UDP] != 2 || c.Copies[Tunnel] != 1 || c.Copies[Dropped] != 0 {
		t.Errorf("counters %+v", c)
	}
}

// TestEngineRefusesWhatItMustNotRoute: a silenced speaker, a peer that no
// longer owns the session, and a speaker over the bandwidth limit send
// nothing, and each is counted where it should be.
func TestEngineRefusesWhatItMustNotRoute(t *testing.T) {
	w := newWorld(0)
	muted := w.user(1, 0, func(u *User) { u.Silenced = true })
	talker := w.user(2, 0, nil)
	ear := w.user(3, 0, nil)
	e, r := newTestEngine(w)
	now := time.Now().UnixNano()
	if e.Route(r, 1, muted, packet(0, 1), now) {
		t.Error("a silenced speaker was routed")
	}
	if e.Route(r, 2, &recorder{}, packet(0, 1), now) {
		t.Error("a peer that does not own the session was routed")
	}
	// 100 bytes per second for a speaker who connected just now (the
	// clock starts a second before): two frames of 35 bytes fit, a third
	// does not.
	w.sn.Users[2].Speaker = NewSpeaker(time.Unix(0, now))
	e.SetBandwidth(8 * 100)
	routed := 0
	for i := range 10 {
		if e.Route(r, 2, talker, packet(0, uint64(i)), now+int64(i)*int64(time.Millisecond)) {
			routed++
		}
	}
	if routed != 2 {
		t.Errorf("%d frames of 35 bytes within 10 ms passed a limit of 100 bytes/s, want 2", routed)
	}
	c := e.Counters()
	if c.Silenced != 1 || c.OverBandwidth != uint64(10-routed) || len(ear.heard()) != routed {
		t.Errorf("counters %+v; the listener heard %d", c, len(ear.heard()))
	}
}

// TestClosedRoutersKeepTheirCounts: a router that closes (a TCP
// connection's) gives its counts to the engine's totals.
func TestClosedRoutersKeepTheirCounts(t *testing.T) {
	w := newWorld(0)
	a := w.user(1, 0, nil)
	w.user(2, 0, nil)
	e, r := newTestEngine(w)
	other := e.NewRouter(nowhere{}, 8, 8, 1100)
	e.Route(r, 1, a, packet(0, 1), time.Now().UnixNano())
	e.Route(other, 1, a, packet(0, 2), time.Now().UnixNano())
	other.Observe(3 * time.Millisecond)
	other.Close()
	other.Close() // twice is harmless
	c := e.Counters()
	if c.Received != 2 || c.Copies[UDP] != 2 || c.Delay.Total() != 1 {
		t.Errorf("after a router closed: %+v", c)
	}
}

// TestRouteAllocatesNothing pins the engine's own cost per packet.
func TestRouteAllocatesNothing(t *testing.T) {
	w := newWorld(0)
	speaker := w.user(1, 0, nil)
	for s := uint32(2); s < 12; s++ {
		w.user(s, 0, func(u *User) { u.Peer = discard{} })
	}
	e, r := newTestEngine(w)
	pkt := packet(0, 1)
	now := time.Now().UnixNano()
	e.Route(r, 1, speaker, pkt, now)
	allocs := testing.AllocsPerRun(1000, func() {
		now += int64(20 * time.Millisecond) // one speaker's pace: within the bandwidth limit
		e.Route(r, 1, speaker, pkt, now)
	})
	if allocs != 0 {
		t.Fatalf("routing to 10 listeners allocated %.1f times, want 0", allocs)
	}
	if c := e.Counters(); c.Received != 1002 || c.Copies[UDP] != 1002*10 {
		t.Fatalf("routed %d packets and %d copies, want 1002 (AllocsPerRun warms up once) and %d", c.Received, c.Copies[UDP], 1002*10)
	}
}

// discard is a peer that takes every copy and keeps none.
type discard struct{}

func (discard) SendVoice(*udpbatch.Batch, []byte, int64) Path { return UDP }

// BenchmarkRoute measures the engine's work for a packet to 50
// listeners, without any transport's.
func BenchmarkRoute50(b *testing.B) {
	w := newWorld(0)
	speaker := w.user(1, 0, nil)
	for s := uint32(2); s < 52; s++ {
		w.user(s, 0, func(u *User) { u.Peer = discard{} })
	}
	e, r := newTestEngine(w)
	pkt := packet(0, 1)
	now := time.Now().UnixNano()
	b.ReportAllocs()
	for b.Loop() {
		now += int64(20 * time.Millisecond) // within the bandwidth limit
		e.Route(r, 1, speaker, pkt, now)
	}
	if c := e.Counters(); c.OverBandwidth != 0 {
		b.Fatalf("%d packets over the bandwidth limit: the benchmark measured drops", c.OverBandwidth)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*50), "ns/copy")
}
