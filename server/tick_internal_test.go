package server

import (
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/stage"
	"github.com/plenum-voice/plenum/voice"
)

// echoStage emits one fixed packet per tick and stays busy while it has
// ticks left.
type echoStage struct {
	sender uint32
	a      wire.Audio
	left   int
}

func (e *echoStage) Accept(uint32, *wire.Audio) {}

func (e *echoStage) Tick(_ time.Time, out stage.Emitter) bool {
	out.Speech(e.sender, &e.a)
	e.left--
	return e.left > 0
}

// TestTickAllocatesNothing pins the stage clock's steady-state cost with
// the router's delivery: a tick that emits a packet to ten listeners
// allocates nothing.
func TestTickAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; run without -race")
	}
	cfg := conf.Default()
	cfg.Server.Bandwidth = 1 << 40
	s := newBareServerWith(t, cfg)
	sink, _ := udpSink(t)
	speaker := s.addFakeUser(t, s.root, wire.Protobuf, sink)
	for i := 0; i < 10; i++ {
		s.addFakeUser(t, s.root, wire.Legacy, sink)
	}
	st := &echoStage{sender: speaker.session, a: wire.Audio{Frame: 1, Opus: make([]byte, 100)}, left: 1 << 30}
	s.SetStage(s.root.id, st)
	s.clock.Activate(s.root.id, st)

	tk := s.voice.NewTicker(s.newRouter(s.udpSocks[0]))
	now := time.Now()
	s.clock.Tick(now, tk) // warm up scratch buffers
	before := s.voice.Counters().Copies[voice.UDP]
	allocs := testing.AllocsPerRun(100, func() { s.clock.Tick(now, tk) })
	if allocs != 0 {
		t.Fatalf("a tick allocated %.1f times, want 0", allocs)
	}
	if got := s.voice.Counters().Copies[voice.UDP] - before; got != 101*10 {
		t.Fatalf("forwarded %d copies, want %d", got, 101*10)
	}
}
