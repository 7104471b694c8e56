package server_test

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/stage"
)

// holdStage keeps every packet for one tick, then emits it unchanged: the
// smallest stage, enough to show the seam carries speech end to end.
type holdStage struct {
	mu       sync.Mutex
	held     []held
	accepted atomic.Int64
	ticks    atomic.Int64
}

type held struct {
	sender uint32
	a      voice.Audio
}

func (h *holdStage) Accept(sender uint32, a *voice.Audio) {
	c := *a
	c.Opus = bytes.Clone(a.Opus)
	h.mu.Lock()
	h.held = append(h.held, held{sender, c})
	h.mu.Unlock()
	h.accepted.Add(1)
}

func (h *holdStage) Tick(now time.Time, out stage.Emitter) bool {
	h.ticks.Add(1)
	h.mu.Lock()
	held := h.held
	h.held = nil
	h.mu.Unlock()
	for i := range held {
		out.Speech(held[i].sender, &held[i].a)
	}
	return len(held) > 0
}

func TestChannelStageCarriesSpeechOnTheTick(t *testing.T) {
	s := startServer(t, nil)
	a, b, c := s.trio(t)
	st := &holdStage{}
	s.SetStage(a.channelID("Plenary"), st)
	for _, p := range []*peer{a, b, c} {
		p.moveTo("Plenary", a, b, c)
	}
	c.SetSelfMute(true, true)
	b.waitFor("carol deaf", func(cl *client.Client) bool { return cl.Users()[c.Session()].GetSelfDeaf() })

	start := time.Now()
	a.SendAudio(0, 1, opus, false, nil)
	got := b.expectFrame(1)
	if got.Sender != a.Session() || got.Context != voice.ContextNormal || !bytes.Equal(got.Opus, opus) {
		t.Fatalf("staged speech arrived as %+v", got)
	}
	if st.accepted.Load() != 1 {
		t.Fatalf("the stage accepted %d packets, want 1", st.accepted.Load())
	}
	t.Logf("one packet through the stage in %v", time.Since(start))

	// Whispers bypass the stage; the deaf listener and the sender heard
	// nothing: their first packet is the loopback fence.
	a.SendAudio(voice.TargetLoopback, 2, opus, false, nil)
	a.expectFrame(2)
	c.SetSelfMute(false, false)
	b.waitFor("carol hears", func(cl *client.Client) bool { return !cl.Users()[c.Session()].GetSelfDeaf() })
	a.SendAudio(0, 3, opus, false, nil)
	c.expectFrame(3)

	// With nothing to do the clock stops ticking the stage.
	time.Sleep(100 * time.Millisecond)
	before := st.ticks.Load()
	time.Sleep(100 * time.Millisecond)
	if after := st.ticks.Load(); after != before {
		t.Fatalf("an idle stage was ticked %d more times", after-before)
	}
}
