package server

import (
	"errors"
	"maps"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plenum-voice/plenum/crypto"
	"github.com/plenum-voice/plenum/internal/udpbatch"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/voice"
)

// peerTable maps UDP source addresses to users. Lookups, one per datagram,
// read an immutable map without locking; the rare changes (a client's
// first datagram binds its address, a disconnect unbinds it) copy the map
// under a mutex that only writers take.
type peerTable struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[netip.AddrPort]*user]
}

func (p *peerTable) init() {
	m := make(map[netip.AddrPort]*user)
	p.m.Store(&m)
}

func (p *peerTable) lookup(a netip.AddrPort) *user {
	return (*p.m.Load())[a]
}

// bind points addr at u, replacing u's previous address (a NAT rebinding or
// a client that reopened its socket).
func (p *peerTable) bind(a netip.AddrPort, u *user) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if u.gone.Load() {
		return // disconnected while we were decrypting: do not resurrect it
	}
	m := maps.Clone(*p.m.Load())
	if old := u.udpAddr.Load(); old != nil && m[*old] == u {
		delete(m, *old)
	}
	if prev := m[a]; prev != nil && prev != u {
		prev.udpAddr.Store(nil) // the address now belongs to someone else
	}
	m[a] = u
	p.m.Store(&m)
	u.udpAddr.Store(&a)
}

func (p *peerTable) remove(u *user) {
	u.gone.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	old := u.udpAddr.Load()
	if cur := *p.m.Load(); old != nil && cur[*old] == u {
		m := maps.Clone(cur)
		delete(m, *old)
		p.m.Store(&m)
	}
}

// udpCounters count what the UDP transport drops before the engine sees
// it; the engine counts the rest (voice.Counters).
type udpCounters struct {
	unmatched atomic.Uint64 // datagrams that matched no one
	stale     atomic.Uint64 // datagrams shed unread because they waited too long

	// Datagrams dropped as invalid, by reason.
	replayed   atomic.Uint64 // from a known address with a nonce already used, or too far behind to tell
	badMAC     atomic.Uint64 // from a known address, but failing authentication: forged or corrupt
	oversized  atomic.Uint64 // longer than any voice packet or ping
	undersized atomic.Uint64 // too short to be one
}

// controlCounters count connections and what went wrong with them.
type controlCounters struct {
	accepted       atomic.Uint64 // TCP connections accepted
	tlsFailed      atomic.Uint64 // TLS handshakes that failed or timed out
	banned         atomic.Uint64 // connections refused by a ban
	rejected       [rejectKinds]atomic.Uint64
	queueOverflows atomic.Uint64 // clients disconnected because their control queue was full
	tunnelLate     atomic.Uint64 // tunnelled copies dropped after waiting too long in a client's voice queue
	floodDropped   atomic.Uint64 // control messages dropped by the rate limiter
	departedCrypt  cryptTotals   // UDP crypt statistics of users who have left, under Server.mu
}

// rejectKinds bounds the Reject types counted (Mumble's are 0 to 8).
const rejectKinds = 16

// cryptTotals sum the decrypt-side statistics of many users.
type cryptTotals struct{ good, late, lost, resync uint64 }

func (t *cryptTotals) add(st crypto.Stats) {
	t.good += uint64(st.Good)
	t.late += uint64(st.Late)
	t.lost += uint64(st.Lost)
	t.resync += uint64(st.Resync)
}

// udpLoop reads datagrams from sock in batches until it closes. Each
// socket has its own reader, which owns its router and out batch and
// flushes the replies and forwarded voice of a whole read batch at once.
// Reads that keep failing are retried after a growing pause, and logged
// once per run of failures.
func (s *Server) udpLoop(sock udpSocket) {
	r := s.voice.NewRouter(sock, readerBatchMsgs, readerBatchSlots, maxDatagram)
	defer r.Close()
	ds := make([]udpbatch.Datagram, batchSize)
	for i := range ds {
		// One spare byte tells an oversized datagram from a full one.
		ds[i].Buf = make([]byte, wire.MaxPacket+1)
	}
	plain := make([]byte, 0, wire.MaxPacket)
	var overloaded bool
	var backoff udpbatch.Backoff
	for {
		n, err := sock.ReadBatch(ds)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if backoff.Failures() == 0 {
				s.log.Warn("udp read failed, retrying", "err", err)
			}
			time.Sleep(backoff.Failed())
			continue
		}
		if failed := backoff.Succeeded(); failed > 0 {
			s.log.Info("udp reads work again", "failed_reads", failed)
		}
		overloaded = backlogged(overloaded, n, len(ds))
		for i := range ds[:n] {
			d := &ds[i]
			if !d.From.IsValid() {
				continue
			}
			pkt := d.Bytes()
			if overloaded && stale(d.At, pkt) {
				s.udpStats.stale.Add(1)
			} else if s.handleDatagram(r, pkt, d.From, plain) && !d.At.IsZero() {
				r.Observe(time.Since(d.At))
			}
		}
		r.Flush()
		if overloaded {
			// This loop never blocks while the socket is backlogged; let
			// the control plane (pings, logins) run between batches rather
			// than only when the scheduler preempts us.
			runtime.Gosched()
		}
	}
}

// backlogged is the overload state of a UDP reader after a read of n of
// max datagrams: a full read means the socket is backlogged; only a read
// well short of full ends it. The hysteresis matters: under overload,
// reads alternate between full batches and partial ones (what arrived
// while the last batch was forwarded), and voice in the partial ones is
// just as late. Stale voice is shed only while overloaded, so a lone
// packet delayed by a scheduling hiccup is still forwarded.
func backlogged(was bool, n, max int) bool {
	switch {
	case n == max:
		return true
	case n <= max/4:
		return false
	}
	return was
}

// maxQueueDelay is how long a datagram may wait in the socket before the
// server sheds it unread. Under overload (more speakers than the machine
// can forward) this keeps the voice that is forwarded fresh: old voice is
// worse than none. Large voice packets are all that is shed; small ones
// (pings, short frames) are cheap and keep UDP alive.
const maxQueueDelay = 5 * time.Millisecond

// stale reports whether a datagram that arrived at at waited in the
// kernel longer than maxQueueDelay.
func stale(at time.Time, pkt []byte) bool {
	return len(pkt) >= 40 && !at.IsZero() && time.Since(at) > maxQueueDelay
}

// handleDatagram processes one datagram: find its sender (by address, or by
// trial decryption against every client from that IP), decrypt, then answer
// a ping or hand audio to the engine. Replies and copies are queued in r's
// batch. It reports whether voice was routed.
func (s *Server) handleDatagram(r *voice.Router, pkt []byte, from netip.AddrPort, plain []byte) bool {
	if !s.plausibleSize(pkt) {
		return false
	}
	now := time.Now()
	var pl []byte
	u := s.peers.lookup(from)
	if u != nil {
		var err error
		if pl, err = s.decrypt(u, pkt, plain, now, false); err != nil {
			if !s.answerServerPing(r, pkt, from) { // a server-list ping from a known address is fine
				s.countUndecryptable(err)
			}
			return false
		}
	} else {
		if s.answerServerPing(r, pkt, from) {
			return false
		}
		if u, pl = s.findSender(pkt, plain, from, now); u == nil {
			s.udpStats.unmatched.Add(1) // forged, stray, or a replay from elsewhere
			return false
		}
		s.peers.bind(from, u)
		s.log.Debug("udp bound", "session", u.session)
	}
	nowNano := now.UnixNano()
	u.lastUDP.Store(nowNano)
	u.udpPackets.Add(1)
	switch wire.Peek(pl, u.format) {
	case wire.KindPing:
		s.echoPing(r, u, pl, from)
	case wire.KindAudio:
		if !u.udpFlag.Load() {
			u.udpFlag.Store(true)
		}
		return s.voice.Route(r, u.session, u, pl, nowNano)
	}
	return false
}

// plausibleSize reports whether pkt has the size of a voice packet or
// ping, counting the ones that do not.
func (s *Server) plausibleSize(pkt []byte) bool {
	switch {
	case len(pkt) > wire.MaxPacket:
		s.udpStats.oversized.Add(1)
		return false
	case len(pkt) < 5:
		s.udpStats.undersized.Add(1)
		return false
	}
	return true
}

// findSender finds the client a datagram from an unknown address came
// from by trial decryption against every client from that IP (a NAT that
// gave a client a new port, or a client's first datagram).
func (s *Server) findSender(pkt, plain []byte, addr netip.AddrPort, now time.Time) (*user, []byte) {
	for _, cand := range (*s.udpCandidates.Load())[addr.Addr().Unmap()] {
		if pl, err := s.decrypt(cand, pkt, plain, now, true); err == nil {
			return cand, pl
		}
	}
	return nil, nil
}

// countUndecryptable counts a datagram from a known address that did
// not decrypt.
func (s *Server) countUndecryptable(err error) {
	if isReplay(err) {
		s.udpStats.replayed.Add(1)
	} else {
		s.udpStats.badMAC.Add(1)
	}
}

// isReplay reports whether a decrypt error means the packet's nonce was
// used before or lies too far behind to tell: a replay, or a packet
// delayed beyond the window, which is as useless. (The nonce is checked
// before authentication, as in Mumble, so a forgery reusing a nonce
// counts here too.)
func isReplay(err error) bool {
	return err == crypto.ErrReplay || err == crypto.ErrLate // plain sentinels: no errors.Is on the hot path
}

// decrypt opens pkt with u's state. On a real peer's failure it may ask the
// client to resync; trial decrypts of candidates never do.
func (s *Server) decrypt(u *user, pkt, plain []byte, now time.Time, trial bool) ([]byte, error) {
	u.decMu.Lock()
	out, err := u.crypt.Decrypt(plain[:0], pkt)
	if err != nil && !trial {
		s.requestResyncLocked(u, now)
	}
	u.decMu.Unlock()
	return out, err
}

// echoPing answers an encrypted UDP ping over UDP, re-encoded in the
// client's format.
func (s *Server) echoPing(r *voice.Router, u *user, pl []byte, to netip.AddrPort) {
	ts, err := wire.DecodePing(pl, u.format)
	if err != nil {
		return
	}
	var scratch [maxPingSize]byte
	plain := wire.AppendPing(scratch[:0], u.format, ts)
	out := r.Batch()
	out.AddSealed(append(out.Slot()[:crypto.Overhead], plain...), to, u)
}

// maxPingSize bounds a ping's plaintext: a timestamp in either format.
const maxPingSize = 32

// answerServerPing replies to an unencrypted server-list ping and reports
// whether pkt was one.
func (s *Server) answerServerPing(r *voice.Router, pkt []byte, to netip.AddrPort) bool {
	cfg := s.cfg()
	info := wire.ServerInfo{
		Version:      Version,
		Users:        uint32(s.userCount.Load() + s.remoteCount.Load()),
		MaxUsers:     uint32(cfg.MaxUsers),
		MaxBandwidth: uint32(cfg.Bandwidth),
	}
	out := r.Batch()
	reply, isPing := wire.AnswerServerPing(out.Slot(), pkt, info, cfg.LegacyPingReply)
	if isPing && len(reply) > 0 {
		out.Add(reply, to)
	}
	return isPing
}
