package stage

import (
	"fmt"
	"slices"
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

// logOutput records, in order, what a clock asks of its Output and what
// the stages emit to which channel.
type logOutput struct {
	channel uint32
	log     []string
}

func (o *logOutput) BeginTick(time.Time) { o.log = append(o.log, "begin") }
func (o *logOutput) EndTick()            { o.log = append(o.log, "end") }

func (o *logOutput) Channel(channel uint32) Emitter {
	o.channel = channel
	return o
}

func (o *logOutput) Speech(sender uint32, _ *voice.Audio) {
	o.log = append(o.log, fmt.Sprintf("channel %d <- %d", o.channel, sender))
}

func (o *logOutput) SpeechEach(uint32, func(uint32) *voice.Audio) {}

// TestClockTicksEachActiveStageIntoItsChannel: one tick begins, runs every
// active stage with the Emitter of its own channel, and ends; a stage that
// reports itself idle is ticked no more until it is activated again.
func TestClockTicksEachActiveStageIntoItsChannel(t *testing.T) {
	c := NewClock()
	out := &logOutput{}
	c.Activate(1, &countdownStage{sender: 0, left: 1})
	c.Activate(2, &countdownStage{sender: 1, left: 2})

	if !c.Tick(time.Now(), out) {
		t.Fatal("the clock reported no active stage with one still busy")
	}
	if len(out.log) != 4 || out.log[0] != "begin" || out.log[3] != "end" ||
		!slices.Contains(out.log, "channel 1 <- 0") || !slices.Contains(out.log, "channel 2 <- 1") {
		t.Fatalf("first tick: %q, want begin, each stage into its channel in any order, end", out.log)
	}
	out.log = nil
	if c.Tick(time.Now(), out) {
		t.Fatal("the clock reported an active stage after both went idle")
	}
	if want := []string{"begin", "channel 2 <- 1", "end"}; !slices.Equal(out.log, want) {
		t.Fatalf("second tick: %q, want %q (the idle stage is not ticked)", out.log, want)
	}
	out.log = nil
	c.Tick(time.Now(), out)
	if want := []string{"begin", "end"}; !slices.Equal(out.log, want) {
		t.Fatalf("third tick: %q, want %q", out.log, want)
	}
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

// chanOutput tells a test about each tick that ended.
type chanOutput struct {
	logOutput
	ticks chan struct{}
}

func (o *chanOutput) EndTick() { o.ticks <- struct{}{} }

// TestRunTicksWhileActiveAndStops: Run wakes for an activated stage,
// ticks it every 20 ms until it is idle, sleeps, and returns once done is
// closed.
func TestRunTicksWhileActiveAndStops(t *testing.T) {
	c := NewClock()
	out := &chanOutput{ticks: make(chan struct{}, 16)}
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		c.Run(done, out)
	}()
	c.Activate(1, &countdownStage{left: 3})
	for i := range 3 {
		select {
		case <-out.ticks:
		case <-time.After(5 * time.Second):
			t.Fatalf("tick %d never came", i+1)
		}
	}
	select {
	case <-out.ticks:
		t.Fatal("the clock ticked after its only stage went idle")
	case <-time.After(100 * time.Millisecond):
	}
	close(done)
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after done was closed")
	}
}
