package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/plenum-voice/plenum/client"
)

// The soak's activities: a director that starts churn, moves and texts at
// their rates, and the speaker loop that rotates who talks.

// take hands a random idle user to a new owner, or nil if nobody is idle.
func (g *soak) take(as soakState) *soakUser {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.users)
	first := rand.IntN(n)
	for i := range n {
		if u := g.users[(first+i)%n]; u.state == stIdle {
			u.state = as
			return u
		}
	}
	return nil
}

// release gives a user back: idle if its connection is up, down otherwise.
func (g *soak) release(u *soakUser) {
	g.mu.Lock()
	defer g.mu.Unlock()
	u.state = stIdle
	if !u.alive() {
		u.state = stDown
	}
}

// down retires a user after an error: its window closes and nobody uses it
// again.
func (g *soak) down(u *soakUser) {
	u.closeWindow(g.now(), "error")
	g.mu.Lock()
	u.state = stDown
	g.mu.Unlock()
}

// reapDead retires idle users whose connection ended without us closing
// it (server timeout, kick, crash).
func (g *soak) reapDead() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, u := range g.users {
		if u.state == stIdle && !u.alive() {
			g.errorf("disconnected", "%s: connection ended: %v", u.name, u.c.Err())
			u.closeWindow(g.now(), "disconnect")
			u.state = stDown
		}
	}
}

// direct starts churn, moves and texts at their rates until ctx ends, then
// waits for the actions under way: they bring their users back to the
// hall, so that every client is in place for the final count.
func (g *soak) direct(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	const step = 100 * time.Millisecond
	tick := time.NewTicker(step)
	defer tick.Stop()
	var churn, move, text float64 // accumulated credit, in actions
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		g.reapDead()
		churn += g.opt.ChurnPerSec * step.Seconds()
		move += g.opt.MovesPerSec * step.Seconds()
		text += g.opt.TextsPerSec * step.Seconds()
		for ; churn >= 1; churn-- {
			g.start1(&wg, g.churn)
		}
		for ; move >= 1; move-- {
			g.start1(&wg, func(u *soakUser) { g.roundTrip(ctx, u) })
		}
		for ; text >= 1; text-- {
			g.start1(&wg, g.text)
		}
	}
}

// start1 runs action on a random idle user, if there is one.
func (g *soak) start1(wg *sync.WaitGroup, action func(u *soakUser)) {
	if u := g.take(stBusy); u != nil {
		wg.Go(func() { action(u) })
	} else {
		g.skipped.Add(1)
	}
}

// Churn kinds: how a user leaves and comes back.
const (
	churnSame  = "same identity"     // disconnect, rejoin with the same certificate and name
	churnFresh = "fresh identity"    // disconnect, rejoin as a new person (new certificate and name)
	churnGhost = "ghost replacement" // rejoin with the same certificate while still connected
)

func (g *soak) churnKind() string {
	switch r := rand.Float64(); {
	case r < g.opt.FreshShare:
		return churnFresh
	case r < g.opt.FreshShare+g.opt.GhostShare:
		return churnGhost
	}
	return churnSame
}

// churn takes a user away and back. Accounting stops first, a guard
// before it leaves, and restarts once it is back in the hall with UDP.
func (g *soak) churn(u *soakUser) {
	kind := g.churnKind()
	u.closeWindow(g.now(), "leave ("+kind+")")
	time.Sleep(g.opt.Guard)
	old := u.c
	if kind == churnGhost {
		u.expectKick.Store(true)
	} else {
		old.Close()
		old = nil
		g.leaves.Add(1)
		away := g.opt.AwayMin + rand.N(g.opt.AwayMax-g.opt.AwayMin+1)
		time.Sleep(away)
	}
	if kind == churnFresh {
		if err := u.newIdentity(); err != nil {
			g.errorf("certificate", "%v", err)
		}
	}
	c, err := u.dial(g.life)
	if old != nil {
		g.retireGhost(u, old, err == nil)
	}
	if err != nil {
		g.errorf("rejoin_failed", "%v", err)
		g.down(u)
		return
	}
	g.countRejoin(kind)
	u.arrive(c, "rejoin ("+kind+")")
	g.release(u)
}

// retireGhost closes the connection a ghost login replaced; the server
// must have ended it already.
func (g *soak) retireGhost(u *soakUser, old *client.Client, replaced bool) {
	if replaced {
		select {
		case <-old.Done():
			g.leaves.Add(1)
		case <-time.After(5 * time.Second):
			g.errorf("ghost_kept", "%s: old connection still up 5 s after a login with its certificate", u.name)
		}
	}
	old.Close()
	u.expectKick.Store(false)
}

// roundTrip moves a user to a random room, keeps it there a while (less
// once ctx ends) and brings it back. In the room it must hear nothing.
func (g *soak) roundTrip(ctx context.Context, u *soakUser) {
	u.closeWindow(g.now(), "move to a room")
	time.Sleep(g.opt.Guard)
	room := g.rooms[rand.IntN(len(g.rooms))]
	if err := u.moveTo(room); err != nil {
		g.errorf("move_failed", "%s to room %d: %v", u.name, room, err)
		g.down(u)
		return
	}
	u.openRoom(g.now())
	stay := g.opt.StayMin + rand.N(g.opt.StayMax-g.opt.StayMin+1)
	sleepCtx(ctx, stay)
	// Whatever was sent before now must not reach the user; a guard lets
	// it arrive (or not) before the user is back where it would count.
	u.closeWindow(g.now(), "")
	time.Sleep(g.opt.Guard)
	if err := u.moveTo(g.hall); err != nil {
		g.errorf("move_failed", "%s back to the hall: %v", u.name, err)
		g.down(u)
		return
	}
	u.openHall(g.now(), "return from a room")
	g.release(u)
}

// text sends one message to the hall and logs it for the accounting.
func (g *soak) text(u *soakUser) {
	defer g.release(u)
	at := g.now()
	if err := u.c.SendText(textBody(u.idx, at), nil, []uint32{g.hall}, nil); err != nil {
		g.errorf("text_send", "%s: %v", u.name, err)
		return
	}
	g.textMu.Lock()
	g.texts = append(g.texts, textSent{at: at, who: u.idx})
	g.textMu.Unlock()
}

// slot is one speaking role; its holder changes every RotateEvery.
type slot struct {
	u     *soakUser
	due   time.Duration // next frame
	until time.Duration // end of the tenure
	buf   []byte
}

// speak drives K slots from one goroutine on a 1 ms ticker, 50 frames a
// second each, as the udp mode does, handing each slot to a new speaker
// every RotateEvery (the slots' turns are staggered). It returns when ctx
// ends, with every speaker back in the hall.
func (g *soak) speak(ctx context.Context) {
	k := g.opt.K
	base := g.now() + 10*time.Millisecond
	slots := make([]slot, k)
	for i := range slots {
		slots[i] = slot{due: base + time.Duration(i)*frameInterval/time.Duration(k),
			until: base + time.Duration(i+1)*g.opt.RotateEvery/time.Duration(k), buf: make([]byte, g.opt.Payload)}
	}
	defer func() {
		for i := range slots {
			g.endTenure(&slots[i])
		}
	}()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	last := g.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := g.now()
		if gap := now - last; gap > time.Duration(g.maxTickGap.Load()) {
			g.maxTickGap.Store(int64(gap))
		}
		last = now
		for i := range slots {
			s := &slots[i]
			if s.u == nil && !g.beginTenure(s, now) {
				continue
			}
			for s.u != nil && s.due <= now {
				g.sendFrame(s)
			}
		}
	}
}

// beginTenure gives a vacant slot to a random idle user, who stops
// listening (a speaker does not hear itself) for the tenure.
func (g *soak) beginTenure(s *slot, now time.Duration) bool {
	u := g.take(stSpeaking)
	if u == nil {
		return false
	}
	u.closeWindow(now, "speaking")
	u.speakSession.Store(u.c.Session())
	s.u = u
	if s.until <= now {
		s.until = now + g.opt.RotateEvery
	}
	if s.due < now { // keep the slot's phase
		s.due += (now - s.due + frameInterval - 1) / frameInterval * frameInterval
	}
	return true
}

// endTenure hands the slot's speaker back to the hall.
func (g *soak) endTenure(s *slot) {
	if u := s.u; u != nil {
		s.u = nil
		u.openHall(g.now(), "spoke")
		g.release(u)
	}
}

// sendFrame sends the slot's due frame; the last one of a tenure carries
// the terminator flag, as a real client's does when the talker stops.
func (g *soak) sendFrame(s *slot) {
	u := s.u
	ts := g.now()
	if ts-s.due > lateAfter {
		g.late++
	}
	last := s.due+frameInterval >= s.until
	encodePayload(s.buf, uint32(u.idx), u.seq, ts)
	err := u.c.SendAudio(0, frameNumber(u.seq), s.buf, last, nil)
	u.seq++
	s.due += frameInterval
	switch {
	case err == nil:
		g.sent = append(g.sent, ts)
		g.sentCount.Add(1)
	case !u.alive():
		g.errorf("speaker_disconnected", "%s: %v", u.name, err)
		s.u = nil
		g.down(u)
		return
	default:
		g.sendErrors++
	}
	if last {
		g.endTenure(s)
	}
}
