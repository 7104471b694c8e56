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
	"github.com/plenum-voice/plenum/proto/voice"
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

// voiceCounters are totals across the server, for tests and metrics. The
// voice path only adds to them; Stats and the metrics endpoint read them.
type voiceCounters struct {
	received      atomic.Uint64 // valid voice packets from senders
	receivedBytes atomic.Uint64 // their size (plaintext Mumble voice packets)

	silenced      atomic.Uint64 // voice from muted, suppressed or self-muted senders, dropped
	overBandwidth atomic.Uint64 // voice beyond the per-user bandwidth limit, dropped
	forwardedUDP  atomic.Uint64 // copies sent to receivers over UDP
	sentBytesUDP  atomic.Uint64 // their size (plaintext)
	forwardedTCP  atomic.Uint64 // copies queued for receivers' TCP tunnels
	sentBytesTCP  atomic.Uint64 // their size (plaintext)
	tunnelFull    atomic.Uint64 // tunnelled copies dropped on a full queue
	tunnelLate    atomic.Uint64 // tunnelled copies dropped after waiting too long in the queue
	badUDP        atomic.Uint64 // datagrams that matched no one
	stale         atomic.Uint64 // datagrams shed unread because they waited too long

	// forwardDelay is how long UDP voice spent in the server: from the
	// kernel's arrival time to the moment its copies were queued for
	// sending (at most one send batch before they leave).
	forwardDelay delayHistogram

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
	defer s.wg.Done()
	r := &router{batch: udpbatch.NewBatch(sock, readerBatchMsgs, readerBatchSlots, maxDatagram)}
	ds := make([]udpbatch.Datagram, batchSize)
	for i := range ds {
		// One spare byte tells an oversized datagram from a full one.
		ds[i].Buf = make([]byte, voice.MaxPacket+1)
	}
	plain := make([]byte, 0, voice.MaxPacket)
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
				s.counters.stale.Add(1)
			} else {
				routed := r.routed
				s.handleDatagram(r, pkt, d.From, plain)
				if r.routed != routed && !d.At.IsZero() {
					s.counters.forwardDelay.observe(time.Since(d.At))
				}
			}
		}
		r.batch.Flush()
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
// a ping or route audio. Replies are queued on r.out.
func (s *Server) handleDatagram(r *router, pkt []byte, from netip.AddrPort, plain []byte) {
	if !s.plausibleSize(pkt) {
		return
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
			return
		}
	} else {
		if s.answerServerPing(r, pkt, from) {
			return
		}
		if u, pl = s.findSender(pkt, plain, from, now); u == nil {
			s.counters.badUDP.Add(1) // forged, stray, or a replay from elsewhere
			return
		}
		s.peers.bind(from, u)
		s.log.Debug("udp bound", "session", u.session)
	}
	nowNano := now.UnixNano()
	u.lastUDP.Store(nowNano)
	u.udpPackets.Add(1)
	switch voice.Peek(pl, u.format) {
	case voice.KindPing:
		s.echoPing(r, u, pl, from)
	case voice.KindAudio:
		if !u.udpFlag.Load() {
			u.udpFlag.Store(true)
		}
		s.routeVoice(r, u, pl, nowNano)
	}
}

// plausibleSize reports whether pkt has the size of a voice packet or
// ping, counting the ones that do not.
func (s *Server) plausibleSize(pkt []byte) bool {
	switch {
	case len(pkt) > voice.MaxPacket:
		s.counters.oversized.Add(1)
		return false
	case len(pkt) < 5:
		s.counters.undersized.Add(1)
		return false
	}
	return true
}

// findSender finds the client a datagram from an unknown address came
// from by trial decryption against every client from that IP (a NAT that
// gave a client a new port, or a client's first datagram).
func (s *Server) findSender(pkt, plain []byte, addr netip.AddrPort, now time.Time) (*user, []byte) {
	sn := s.snap.Load()
	for _, cand := range sn.byIP[addr.Addr().Unmap()] {
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
		s.counters.replayed.Add(1)
	} else {
		s.counters.badMAC.Add(1)
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
func (s *Server) echoPing(r *router, u *user, pl []byte, to netip.AddrPort) {
	ts, err := voice.DecodePing(pl, u.format)
	if err != nil {
		return
	}
	r.single = voice.AppendPing(r.single[:0], u.format, ts)
	buf := r.batch.Slot()
	u.encMu.Lock()
	buf = u.crypt.Encrypt(buf, r.single)
	u.encMu.Unlock()
	r.batch.Add(buf, to)
}

// answerServerPing replies to an unencrypted server-list ping and reports
// whether pkt was one.
func (s *Server) answerServerPing(r *router, pkt []byte, to netip.AddrPort) bool {
	cfg := s.cfg()
	info := voice.ServerInfo{
		Version:      Version,
		Users:        uint32(s.userCount.Load()),
		MaxUsers:     uint32(cfg.MaxUsers),
		MaxBandwidth: uint32(cfg.Bandwidth),
	}
	buf := r.batch.Slot()
	reply, isPing := voice.AnswerServerPing(buf, pkt, info, cfg.LegacyPingReply)
	if isPing && len(reply) > 0 {
		r.batch.Add(reply, to)
	}
	return isPing
}

// routeVoice forwards one plaintext audio packet from u to everyone who
// should hear it, reading only the current snapshot.
func (s *Server) routeVoice(r *router, u *user, pl []byte, now int64) {
	sn := s.snap.Load()
	sender, ok := sn.users[u.session]
	if !ok || sender.u != u {
		return
	}
	if sender.silenced {
		s.counters.silenced.Add(1)
		return
	}

	if voice.DecodeAudio(pl, u.format, false, &r.in) != nil || r.in.Target > voice.TargetLoopback {
		return
	}
	if !s.withinBandwidth(u, len(r.in.Opus), now) {
		s.counters.overBandwidth.Add(1)
		return
	}

	r.routed++
	u.lastSpoke.Store(now)
	s.counters.received.Add(1)
	s.counters.receivedBytes.Add(uint64(len(pl)))
	if st := sender.channel.stage; st != nil && r.in.Target == 0 {
		st.Accept(sender.session, &r.in)
		s.clock.Activate(sender.channel.id, st)
		return
	}
	r.resolve(sn, sender, r.in.Target, r.in.HasPosition)
	for i := range r.receivers {
		rc := &r.receivers[i]
		if len(r.in.Opus) == 0 && rc.vu.format == voice.Protobuf {
			continue // a legacy empty frame has no protobuf form: 1.5 clients reject it
		}
		s.deliver(r, rc.vu.u, r.encoded(sender, rc), now)
	}
}

// deliver sends one plaintext to one receiver: encrypted into the out
// batch when the receiver's UDP path is alive, else through its TCP tunnel
// queue.
func (s *Server) deliver(r *router, to *user, pl []byte, now int64) {
	if addr := to.udpTarget(now); addr != nil {
		buf := r.batch.Slot()
		to.encMu.Lock()
		buf = to.crypt.Encrypt(buf, pl)
		to.encMu.Unlock()
		r.batch.Add(buf, *addr)
		s.counters.forwardedUDP.Add(1)
		s.counters.sentBytesUDP.Add(uint64(len(pl)))
		return
	}
	if to.conn.sendVoice(pl, now) {
		s.counters.forwardedTCP.Add(1)
		s.counters.sentBytesTCP.Add(uint64(len(pl)))
	} else {
		s.counters.tunnelFull.Add(1)
	}
}
