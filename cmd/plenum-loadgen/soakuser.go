package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// soakState says who may act on a soak user. Only the owner named by the
// state touches the user's connection and windows; the state itself
// changes under soak.mu.
type soakState int

const (
	stIdle     soakState = iota // in the hall; owned by nobody, so anyone may take it
	stBusy                      // owned by one action (churn, move, text)
	stSpeaking                  // owned by the speaker loop
	stDown                      // gone for good (an error was recorded)
)

// window is the span of send times in which a user is accounted: in the
// hall it must receive every packet and text sent in it; in a room it must
// receive none. A window is replaced, never changed, so the receive
// goroutines read it with one atomic load.
type window struct {
	start, end time.Duration
	inHall     bool
	tally      *tally // shared by the open window and its closed version
}

// tally is what one hall window received, so that a shortfall can be
// traced to the transitions around it.
type tally struct {
	opened, closed string // by what
	voice, text    atomic.Uint64
}

const forever = time.Duration(math.MaxInt64)

// soakUser is one simulated participant across all its connections.
type soakUser struct {
	g    *soak
	idx  int
	name string
	cert *tls.Certificate
	c    *client.Client // current connection, owner only

	state soakState // under soak.mu

	win   atomic.Pointer[window]
	spans []span // closed hall windows, owner only

	channel      atomic.Uint32 // where the server last put the current connection
	speakSession atomic.Uint32 // session of the last speaking tenure, for the sender check
	seq          uint64        // next frame number, speaker loop only
	identities   int           // fresh certificates so far, owner only
	expectKick   atomic.Bool   // a ghost login is replacing the old connection

	received, outside, misrouted, dup, bad, all atomic.Uint64
	textIn, textOutside, textMisrouted          atomic.Uint64
	lastSeq                                     []atomic.Uint64 // per speaking user: last frame + 1
}

// link is what the callbacks know about one connection of a user.
type link struct{ session atomic.Uint32 }

// onAudio checks and accounts one voice packet: O(1), no allocation.
func (u *soakUser) onAudio(p *client.AudioPacket) {
	g := u.g
	u.all.Add(1)
	idx, seq, sent, ok := decodePayload(p.Opus)
	if !ok || int(idx) >= len(g.users) || g.users[idx].speakSession.Load() != p.Sender || p.Frame != frameNumber(seq) {
		u.bad.Add(1)
		return
	}
	w := u.win.Load()
	switch {
	case w == nil || sent < w.start || sent > w.end:
		u.outside.Add(1)
		return
	case !w.inHall:
		u.misrouted.Add(1)
		g.incident("voice heard in a room: %s, packet of user %d sent at %.3f s, room window %.3f–%.3f s, received at %.3f s",
			u.name, idx, sent.Seconds(), w.start.Seconds(), endSec(w.end), p.Received.Sub(g.start).Seconds())
		return
	}
	last := &u.lastSeq[idx]
	if seq+1 <= last.Load() {
		u.dup.Add(1)
		return
	}
	last.Store(seq + 1)
	u.received.Add(1)
	w.tally.voice.Add(1)
	if sec := int(sent / time.Second); sec < len(g.recvBySec) {
		g.recvBySec[sec].Add(1)
	}
	g.latency.Add(p.Received.Sub(g.start) - sent)
}

// onMessage follows the server's control messages for one connection.
func (u *soakUser) onMessage(l *link, m proto.Message) {
	switch m := m.(type) {
	case *mumblepb.ServerSync:
		l.session.Store(m.GetSession())
	case *mumblepb.UserState:
		if s := l.session.Load(); s != 0 && m.GetSession() == s && m.ChannelId != nil {
			u.channel.Store(m.GetChannelId())
		}
	case *mumblepb.UserRemove:
		if s := l.session.Load(); s != 0 && m.GetSession() == s && !u.expectKick.Load() {
			u.g.errorf("kicked", "%s: removed by the server: %s", u.name, m.GetReason())
		}
	case *mumblepb.TextMessage:
		u.onText(m)
	case *mumblepb.PermissionDenied:
		u.g.errorf("permission_denied", "%s: %v %s", u.name, m.GetType(), m.GetReason())
	}
}

// The text a soak user sends: who sent it and when, so that receivers can
// account it like voice.
const textPrefix = "soak-text "

func textBody(who int, at time.Duration) string {
	return textPrefix + strconv.Itoa(who) + " " + strconv.FormatInt(int64(at), 10)
}

func parseText(s string) (who int, at time.Duration, ok bool) {
	rest, found := strings.CutPrefix(s, textPrefix)
	a, b, found2 := strings.Cut(rest, " ")
	w, err1 := strconv.Atoi(a)
	t, err2 := strconv.ParseInt(b, 10, 64)
	if !found || !found2 || err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return w, time.Duration(t), true
}

func (u *soakUser) onText(m *mumblepb.TextMessage) {
	who, at, ok := parseText(m.GetMessage())
	switch {
	case !ok:
		u.g.errorf("text_garbled", "%s: %.40q", u.name, m.GetMessage())
		return
	case who == u.idx:
		u.g.errorf("text_echoed", "%s got its own message back", u.name)
		return
	}
	g := u.g
	now := g.now()
	g.textLatency.Add(now - at)
	w := u.win.Load()
	switch {
	case w == nil || at < w.start || at > w.end:
		u.textOutside.Add(1)
	case !w.inHall:
		u.textMisrouted.Add(1)
		g.incident("text heard in a room: %s, from user %d sent at %.3f s, room window %.3f–%.3f s, received at %.3f s",
			u.name, who, at.Seconds(), w.start.Seconds(), endSec(w.end), now.Seconds())
	default:
		u.textIn.Add(1)
		w.tally.text.Add(1)
	}
}

// endSec shows a window's end in seconds, -1 while it is open.
func endSec(end time.Duration) float64 {
	if end == forever {
		return -1
	}
	return end.Seconds()
}

// openHall starts accounting in the hall, a guard after now: what was sent
// before may have been routed by the server's view before the move. why
// says what brought the user there.
func (u *soakUser) openHall(now time.Duration, why string) {
	u.win.Store(&window{start: now + u.g.opt.Guard, end: forever, inHall: true, tally: &tally{opened: why}})
}

// openRoom starts the misrouting check in a room, a guard after now.
func (u *soakUser) openRoom(now time.Duration) {
	u.win.Store(&window{start: now + u.g.opt.Guard, end: forever, tally: &tally{opened: "move"}})
}

// closeWindow ends the current window at now, for the reason why. The
// window stays in place, so that what was sent before now and is still on
// its way is accounted; the caller waits a guard before the user leaves.
func (u *soakUser) closeWindow(now time.Duration, why string) {
	w := u.win.Load()
	if w == nil || w.end != forever {
		return
	}
	u.win.Store(&window{start: w.start, end: now, inHall: w.inHall, tally: w.tally})
	if w.inHall && now >= w.start {
		w.tally.closed = why
		u.spans = append(u.spans, span{start: w.start, end: now, tally: w.tally})
	}
}

// newIdentity gives the user a fresh certificate and a name to go with it,
// as a new participant would have.
func (u *soakUser) newIdentity() error {
	cert, err := newCert()
	if err != nil {
		return err
	}
	u.identities++
	u.cert = cert
	u.name = fmt.Sprintf("%s%04d-%d", u.g.opt.NamePrefix, u.idx, u.identities)
	return nil
}

// newCert makes a self-signed client certificate, as every Mumble client
// has one (the server keys identity on its hash).
func newCert() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "plenum-loadgen soak"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// dial logs the user in, retrying for a while: after a churn the server
// may not yet have seen the old connection go, and refuses the name.
// It returns the connection, already in its channel.
func (u *soakUser) dial(ctx context.Context) (*client.Client, error) {
	g := u.g
	for attempt := 0; ; attempt++ {
		l := new(link)
		cfg := client.Config{
			Address: g.opt.Addr, Username: u.name, Certificate: u.cert,
			OnAudio: u.onAudio, BorrowAudio: true,
			OnMessage: func(_ control.Type, m proto.Message) { u.onMessage(l, m) },
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		c, err := client.Dial(dctx, cfg)
		cancel()
		g.countDial(err)
		if err == nil {
			u.channel.Store(channelOf(c))
			return c, nil
		}
		if ctx.Err() != nil || attempt >= 20 {
			return nil, fmt.Errorf("%s: %w", u.name, err)
		}
		g.retries.Add(1)
		if !sleepCtx(ctx, time.Duration(100+mrand.IntN(200))*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// channelOf is where the server put c at login.
func channelOf(c *client.Client) uint32 {
	return c.Users()[c.Session()].GetChannelId()
}

// isTCPRefusal reports whether a Dial failed before reaching the server, so
// that the server never counted the connection.
func isTCPRefusal(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// arrive finishes a login: the user must be in the hall and have UDP, and
// from then on it is accounted there.
func (u *soakUser) arrive(c *client.Client, why string) {
	g := u.g
	u.c = c
	if ch := u.channel.Load(); ch != g.hall {
		g.errorf("wrong_channel", "%s joined channel %d, not the hall", u.name, ch)
	}
	ctx, cancel := context.WithTimeout(g.life, 10*time.Second)
	if err := c.WaitUDP(ctx); err != nil {
		g.errorf("no_udp", "%s: no UDP within 10 s: %v", u.name, err)
	}
	cancel()
	u.openHall(g.now(), why)
}

// alive reports whether the user's connection is still up.
func (u *soakUser) alive() bool {
	if u.c == nil {
		return false
	}
	select {
	case <-u.c.Done():
		return false
	default:
		return true
	}
}

// moveTo moves the user and waits until the server confirms it: a Ping
// answered after the move means the move was handled, and the UserState
// it caused arrived first.
func (u *soakUser) moveTo(ch uint32) error {
	if err := u.c.Move(ch); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(u.g.life, 10*time.Second)
	defer cancel()
	if _, err := u.c.Ping(ctx); err != nil {
		return err
	}
	if got := u.channel.Load(); got != ch {
		return fmt.Errorf("asked for channel %d, server says %d", ch, got)
	}
	u.g.moves.Add(1)
	return nil
}

// sleepCtx sleeps for d or until ctx ends; it reports whether it slept
// the whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
