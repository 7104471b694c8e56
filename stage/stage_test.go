package stage

import (
	"testing"
	"time"

	"github.com/plenum-voice/plenum/proto/voice"
)

// countdownStage emits one packet from sender per tick and stays busy
// while it has ticks left.
type countdownStage struct {
	sender uint32
	left   int
}

func (c *countdownStage) Accept(uint32, *voice.Audio) {}

func (c *countdownStage) Tick(_ time.Time, out Emitter) bool {
	out.Speech(c.sender, &voice.Audio{})
	c.left--
	return c.left > 0
}

// TestIdleStageKeepsLateActivation: a stage that reported itself idle just
// as a packet arrived stays on the clock, so that packet is still ticked.
func TestIdleStageKeepsLateActivation(t *testing.T) {
	c := NewClock()
	st := &countdownStage{left: 1}
	c.Activate(7, st)
	due := c.due(nil)
	c.Activate(7, st) // a packet arrives while the stage is being ticked
	c.idle(7, due[0].entry)
	if !c.anyActive() {
		t.Fatal("the stage was dropped from the clock with a packet in it")
	}
	due = c.due(nil)
	c.idle(7, due[0].entry)
	if c.anyActive() {
		t.Fatal("an idle stage with nothing accepted since stayed on the clock")
	}
}
