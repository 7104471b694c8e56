package server

// Connection abuse control: a cap on connections from one address that
// have not authenticated yet, and an automatic ban for addresses that
// flood the server with failed connection attempts. Both act at accept
// time, before any TLS work, so refusing costs next to nothing. A few
// refusals a second are explained to the client (explainRefusal).
//
// Plenaries put hundreds of people behind one venue NAT address, which a
// Murmur-style autoban (every connection counts) would lock out the moment
// the Wi-Fi hiccups and everyone reconnects. Here only failures count, a
// refusal by the cap is not a failure, and every user online from an
// address raises the number of failures it may have.

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// maxTrackedHosts bounds the addresses remembered only for their recent
// failures (those with live connections or a ban are always kept), so a
// flood from very many addresses cannot grow the table without limit.
const maxTrackedHosts = 1 << 16

// sweepEvery is how often idle addresses are forgotten.
const sweepEvery = 10 * time.Second

// hostGuard keeps the per-address state of abuse control, in memory only
// (nothing about addresses is ever written to disk).
type hostGuard struct {
	mu        sync.Mutex
	hosts     map[netip.Addr]*hostState // by hostKey
	nextSweep time.Time
	pending   int // connections not yet authenticated, all addresses

	// The autoban_exempt list, parsed once per settings version.
	exemptOf *conf.Server
	exempt   []netip.Prefix

	refusedBanned  atomic.Uint64
	refusedPending atomic.Uint64
	failed         atomic.Uint64
	bans           atomic.Uint64
}

// hostState is what the guard knows about one address.
type hostState struct {
	pending int // connections not yet authenticated
	users   int // authenticated connections
	// failures is a leaky count of failed attempts: it drains at
	// autoban_attempts per autoban_window, so it exceeds the limit only
	// when failures come faster than that.
	failures    float64
	drained     time.Time // when failures was last drained
	bannedUntil time.Time
}

// hostKey is the unit abuse control counts by: an IPv4 address, or the
// /64 network of an IPv6 address, since one IPv6 host usually has a whole
// /64 to pick addresses from.
func hostKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.Addr()
	}
	return a
}

// refusal is why a connection was closed at accept.
type refusal int

const (
	admitted refusal = iota
	refusedBanned
	refusedBusy // too many unauthenticated connections from the address
)

// admit decides at accept time whether a connection from addr may proceed
// and, if so, counts it as unauthenticated until promote or release.
func (g *hostGuard) admit(addr netip.Addr, now time.Time, cfg *conf.Server) refusal {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweepLocked(now, cfg)
	key := hostKey(addr)
	h := g.hosts[key]
	if h != nil && g.bannedLocked(h, addr, now, cfg) {
		g.refusedBanned.Add(1)
		return refusedBanned
	}
	if limit := cfg.MaxUnauthenticatedPerIP; limit > 0 && h != nil && h.pending >= limit {
		g.refusedPending.Add(1)
		return refusedBusy
	}
	if h == nil {
		if g.hosts == nil {
			g.hosts = make(map[netip.Addr]*hostState)
		}
		h = &hostState{}
		g.hosts[key] = h
	}
	h.pending++
	g.pending++
	return admitted
}

// bannedLocked reports whether h's autoban is in force. Turning autoban
// off or exempting the address lifts a ban at once (on reload).
func (g *hostGuard) bannedLocked(h *hostState, addr netip.Addr, now time.Time, cfg *conf.Server) bool {
	return now.Before(h.bannedUntil) && cfg.AutobanAttempts > 0 && !g.exemptLocked(addr, cfg)
}

// promote moves an admitted connection from addr to the authenticated.
func (g *hostGuard) promote(addr netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hosts[hostKey(addr)]
	h.pending--
	h.users++
	g.pending--
}

// release forgets an admitted connection from addr when it ends. A
// connection that failed counts towards an autoban; release reports
// whether that started one.
func (g *hostGuard) release(addr netip.Addr, promoted, failed bool, now time.Time, cfg *conf.Server) (banned bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := hostKey(addr)
	h := g.hosts[key]
	if promoted {
		h.users--
	} else {
		h.pending--
		g.pending--
	}
	if failed {
		g.failed.Add(1)
		banned = g.countFailureLocked(h, addr, now, cfg)
	}
	if h.idle(now, cfg) || (len(g.hosts) > maxTrackedHosts && h.live() == 0 && !now.Before(h.bannedUntil)) {
		delete(g.hosts, key)
	}
	return banned
}

// countFailureLocked adds one failed attempt to h and bans the address
// when its failures exceed autoban_attempts times one plus its users
// online: a venue with people connected may fail far more often than a
// lone address, since its failures are most likely its people's.
func (g *hostGuard) countFailureLocked(h *hostState, addr netip.Addr, now time.Time, cfg *conf.Server) bool {
	attempts, window := cfg.AutobanAttempts, cfg.AutobanWindow.Duration
	if attempts <= 0 || window <= 0 || g.exemptLocked(addr, cfg) {
		return false
	}
	h.failures = h.drainedFailures(now, attempts, window) + 1
	h.drained = now
	if h.failures <= float64(attempts*(1+h.users)) {
		return false
	}
	h.failures = 0
	h.bannedUntil = now.Add(cfg.AutobanDuration.Duration)
	g.bans.Add(1)
	return true
}

// drainedFailures is h's failure count at now.
func (h *hostState) drainedFailures(now time.Time, attempts int, window time.Duration) float64 {
	leaked := now.Sub(h.drained).Seconds() * float64(attempts) / window.Seconds()
	return max(0, h.failures-leaked)
}

// live is the number of h's connections.
func (h *hostState) live() int { return h.pending + h.users }

// idle reports whether h holds nothing worth remembering: no
// connections, no ban, and no failures left to drain (with autoban off,
// failures do not matter).
func (h *hostState) idle(now time.Time, cfg *conf.Server) bool {
	if h.live() > 0 || now.Before(h.bannedUntil) {
		return false
	}
	attempts, window := cfg.AutobanAttempts, cfg.AutobanWindow.Duration
	return attempts <= 0 || window <= 0 || h.drainedFailures(now, attempts, window) == 0
}

// sweepLocked forgets idle addresses every sweepEvery.
func (g *hostGuard) sweepLocked(now time.Time, cfg *conf.Server) {
	if now.Before(g.nextSweep) {
		return
	}
	g.nextSweep = now.Add(sweepEvery)
	for key, h := range g.hosts {
		if h.idle(now, cfg) {
			delete(g.hosts, key)
		}
	}
}

// exemptLocked reports whether addr is on the autoban_exempt list.
func (g *hostGuard) exemptLocked(addr netip.Addr, cfg *conf.Server) bool {
	if len(cfg.AutobanExempt) == 0 {
		return false
	}
	if g.exemptOf != cfg {
		g.exemptOf, g.exempt = cfg, g.exempt[:0]
		for _, s := range cfg.AutobanExempt {
			if p, err := conf.ParsePrefix(s); err == nil { // validated with the config
				g.exempt = append(g.exempt, p)
			}
		}
	}
	addr = addr.Unmap()
	for _, p := range g.exempt {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// unauthenticated is the number of connections not yet authenticated.
func (g *hostGuard) unauthenticated() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pending
}

// admit applies abuse control to a freshly accepted connection. A refused
// one is explained to the client if the budget allows, else closed at
// once: no TLS, no goroutine, and a reset instead of a lingering close so
// that a flood leaves no sockets behind.
func (s *Server) admit(nc *net.TCPConn) bool {
	addr := nc.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
	why := s.guard.admit(addr, time.Now(), s.cfg())
	if why == admitted {
		return true
	}
	reason := reasonAutobanned
	if why == refusedBusy {
		reason = reasonUnauthenticatedCap
	}
	s.log.Debug("connection refused", s.addrAttr([]any{"reason", reason.String()}, addr)...)
	if !s.explainRefusal(nc, why) {
		nc.SetLinger(0)
		nc.Close()
	}
	return false
}

// Explaining a refusal costs a TLS handshake, which is what refusing at
// accept saves; so only this many are explained at once and per second.
// The rest are reset, as before.
const (
	explainedRefusalsAtOnce    = 4
	explainedRefusalsPerSecond = 10
	explainDeadline            = 2 * time.Second
)

// refusalBudget bounds the refusals that are explained. Only the accept
// loop takes from it.
type refusalBudget struct {
	rate  leakyBucket
	slots chan struct{} // a token per refusal being explained
}

// take reports whether one more refusal may be explained at now; the
// caller gives the slot back with done.
func (b *refusalBudget) take(now time.Time) bool {
	select {
	case b.slots <- struct{}{}:
	default:
		return false
	}
	if !b.rate.allow(now, explainedRefusalsPerSecond, explainedRefusalsPerSecond) {
		b.done()
		return false
	}
	return true
}

func (b *refusalBudget) done() { <-b.slots }

// explainRefusal completes TLS with a refused client and sends a Reject
// saying why, which Mumble shows as "Server connection rejected: ...";
// a refused person then knows to wait or to call the tech desk instead of
// seeing a bare "connection reset". It reports false, doing nothing, when
// the budget is spent.
func (s *Server) explainRefusal(nc *net.TCPConn, why refusal) bool {
	if !s.refusals.take(time.Now()) {
		return false
	}
	reason := why.reason(s.cfg())
	s.goroutines.Go("refusal", func() {
		defer s.refusals.done()
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(explainDeadline))
		tc := tls.Server(nc, s.tlsConfig)
		if tc.Handshake() != nil {
			nc.SetLinger(0)
			return
		}
		frame, err := control.Marshal(&mumblepb.Reject{Type: mumblepb.Reject_None.Enum(), Reason: &reason})
		if err != nil {
			return
		}
		if _, err := tc.Write(frame); err != nil {
			return
		}
		// Let the client read the Reject and hang up: closing with its
		// Version and Authenticate unread would reset the connection,
		// and a reset may discard the Reject before the client reads it.
		tc.CloseWrite()
		io.Copy(io.Discard, io.LimitReader(tc, 64<<10))
	})
	return true
}

// inWords says d as people do: "5 minutes", "90 seconds".
func inWords(d time.Duration) string {
	unit, name := time.Second, "second"
	if d >= 2*time.Minute {
		unit, name = time.Minute, "minute"
	}
	n := int64((d + unit - 1) / unit)
	if n == 1 {
		return "1 " + name
	}
	return fmt.Sprintf("%d %ss", n, name)
}

// reason is what a refused client is told.
func (r refusal) reason(cfg *conf.Server) string {
	switch r {
	case refusedBanned:
		return fmt.Sprintf("Too many failed connection attempts came from your network; it is refused for up to %s. Check the server password, or ask the organisers", inWords(cfg.AutobanDuration.Duration))
	default:
		return "Too many connections from your network are logging in at this moment. Please try again in a few seconds"
	}
}

// releaseConn tells the guard that c has ended, counting it as a failed
// attempt when it never authenticated for reasons of its own.
func (s *Server) releaseConn(c *conn) {
	failed := c.user == nil && !c.blameless && c.ended != reasonShutdown
	cfg := s.cfg()
	addr := c.remote.Addr()
	if s.guard.release(addr, c.promoted, failed, time.Now(), cfg) {
		s.log.Warn("autoban: refusing an address after repeated failed connection attempts",
			s.addrAttr([]any{"for", cfg.AutobanDuration.Duration}, hostKey(addr))...)
	}
}

// promoteConn moves c to the authenticated once it logged in.
func (s *Server) promoteConn(c *conn) {
	if c.user != nil && !c.promoted {
		c.promoted = true
		s.guard.promote(c.remote.Addr())
	}
}
