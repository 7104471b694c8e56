package server

import (
	"bufio"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/voice"
)

// writeTimeout is how long one flush to a client may take before the
// client counts as stuck and is disconnected. A variable for tests.
var writeTimeout = 10 * time.Second

// Limits of a connection.
const (
	// controlQueueBytes bounds the control frames queued for one client.
	// A full login to a 1000-user server queues about 100 KB (UserStates
	// and channels); a client that lets a megabyte pile up is stuck.
	controlQueueBytes = 1 << 20
	// voiceQueueLen bounds queued tunnelled voice frames: about 1 s of 4
	// speakers. Voice beyond it is shed first, long before control.
	voiceQueueLen = 256
)

// handshakeTimeout bounds TLS plus Authenticate (handshake_timeout), so
// half-open or idle connections never hold resources for long.
func (s *Server) handshakeTimeout() time.Duration {
	if d := s.cfg().HandshakeTimeout.Duration; d > 0 {
		return d
	}
	return conf.DefaultHandshakeTimeout // a Config built in code without it
}

// conn is one control connection: a Mumble client's TCP/TLS connection,
// or a browser's WebSocket (web.go). Its serve goroutine (the reader) owns
// the connection's life; the writer goroutine it starts drains the queues.
type conn struct {
	s *Server
	// nc is the transport: the TCP connection, or the WebSocket's
	// net.Conn for a browser.
	nc net.Conn
	tc *tls.Conn // TLS over nc; nil for a browser (its TLS is the web listener's)
	// web is the browser's side (WebRTC); nil for a Mumble client.
	web *webConn
	// signInToken is a browser's single sign-on token (signin.go).
	signInToken string
	// remote is the client's address; it is kept for UDP matching and never
	// logged unless the admin enabled log_ips.
	remote netip.AddrPort

	ctrl  ctrlQueue        // marshalled control frames, read-only once queued
	voice chan *voiceFrame // tunnelled voice frames from framePool

	done      chan struct{}
	closeOnce sync.Once
	ended     closeReason // set before done is closed
	// tlsDetail is what went wrong when it ended with reasonTLS, without
	// addresses (see tlsDetail); set before done is closed.
	tlsDetail string
	// parting is the closeReason once the server decided to close after a
	// final message (Reject, kick, goodbye): nothing the client sends
	// counts any more, and however the connection then ends, this is why.
	parting atomic.Uint32

	// held is the hold the writer goroutine waits at (see durable.go);
	// owned by the writer.
	held *ticket

	// Owned by the reader goroutine.
	clientVersion *mumblepb.Version
	flood         leakyBucket   // Murmur's rate limit of text, channel creation and self state
	aclFlood      leakyBucket   // the same limit, for the ACL editor's messages
	user          *user         // set once authenticated; also read under Server.mu
	router        *voice.Router // for its tunnelled voice, made on the first packet
	// promoted: abuse control counts the connection as authenticated.
	promoted bool
	// blameless: refused for the server's reasons (it is full), so it is
	// no failed attempt of the client's.
	blameless bool
}

// stream is what Mumble frames are read from and written to.
func (c *conn) stream() io.ReadWriter {
	if c.tc != nil {
		return c.tc
	}
	return c.nc
}

// peerCertificates are the client's certificates; a browser has none.
func (c *conn) peerCertificates() []*x509.Certificate {
	if c.tc == nil {
		return nil
	}
	return c.tc.ConnectionState().PeerCertificates
}

func newConn(s *Server, nc *net.TCPConn) *conn {
	return &conn{
		s:      s,
		nc:     nc,
		remote: nc.RemoteAddr().(*net.TCPAddr).AddrPort(),
		ctrl:   ctrlQueue{ready: make(chan struct{}, 1)},
		voice:  make(chan *voiceFrame, voiceQueueLen),
		done:   make(chan struct{}),
	}
}

// close ends the connection; the first reason wins. Safe from any goroutine.
func (c *conn) close(reason closeReason) { c.end(reason, "") }

// closeHandshake ends a connection whose TLS handshake failed, keeping
// what went wrong, without addresses, for the debug log.
func (c *conn) closeHandshake(err error) {
	reason := handshakeReason(err)
	detail := ""
	if reason == reasonTLS {
		detail = tlsDetail(err)
	}
	c.end(reason, detail)
}

func (c *conn) end(reason closeReason, detail string) {
	c.closeOnce.Do(func() {
		c.ended, c.tlsDetail = reason, detail
		close(c.done)
		if c.nc != nil { // an API actor's has none (api.go)
			c.nc.Close()
		}
	})
}

// part records that the server ends the connection after a final message,
// and why; the first reason wins. It reports whether this was the first.
func (c *conn) part(reason closeReason) bool {
	return c.parting.CompareAndSwap(uint32(reasonNone), uint32(reason))
}

// partingReason is the reason given to part, or reasonNone.
func (c *conn) partingReason() closeReason { return closeReason(c.parting.Load()) }

// send queues a control message. It never blocks: a client whose queue is
// full is not reading and is disconnected.
func (c *conn) send(m proto.Message) {
	frame, err := control.Marshal(m)
	if err != nil {
		c.s.log.Error("marshal failed", "type", fmt.Sprintf("%T", m), "err", err)
		return
	}
	c.sendFrame(frame)
}

func (c *conn) sendFrame(frame []byte) {
	c.enqueue(queued{frame: frame})
}

func (c *conn) enqueue(e queued) {
	if !c.ctrl.push(e) {
		c.s.control.queueOverflows.Add(1)
		c.close(reasonQueueOverflow)
	}
}

// sendAndClose queues m and then closes the connection for reason once the
// writer has flushed it (used for Reject and kicks).
func (c *conn) sendAndClose(m proto.Message, reason closeReason) {
	c.part(reason)
	c.send(m)
	c.enqueue(queued{mark: markClose})
}

// hold makes whatever is queued after this point wait until t has
// finished (see durable.go).
func (c *conn) hold(t *ticket) {
	if !c.ctrl.pushHold(t) {
		c.close(reasonQueueOverflow)
	}
}

// unsentLimit bounds the data a client's TCP socket holds that it has not
// yet sent (TCP_NOTSENT_LOWAT). Without it the kernel buffers megabytes
// for a slow tunnelling client, seconds of voice that can no longer be
// shed; with it the backlog stays in our queues, where old voice is
// dropped.
const unsentLimit = 16 << 10

// limitUnsent applies unsentLimit; failure only costs latency.
func limitUnsent(nc *net.TCPConn) {
	const tcpNotSentLowat = 25 // Linux TCP_NOTSENT_LOWAT
	if rc, err := nc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, unsentLimit)
		})
	}
}

// voiceFrame is a tunnelled voice packet waiting for a client, with the
// time it was queued so that voice too old to be useful is dropped.
type voiceFrame struct {
	buf    []byte
	queued int64 // unix nanoseconds
}

var framePool = sync.Pool{New: func() any {
	return &voiceFrame{buf: make([]byte, 0, control.HeaderSize+1024)}
}}

// maxTunnelDelay is how long tunnelled voice may wait for its client's
// TCP connection before it is dropped: late voice is worthless, and
// dropping it keeps a congested client's audio close to live.
const maxTunnelDelay = 60 * time.Millisecond

// sendVoice queues a tunnelled voice packet, dropping it when the voice queue
// is full: late voice is worthless, and shedding it keeps control flowing.
func (c *conn) sendVoice(plain []byte, now int64) bool {
	f := framePool.Get().(*voiceFrame)
	f.buf = control.AppendFrame(f.buf[:0], control.UDPTunnel, plain)
	f.queued = now
	select {
	case c.voice <- f:
		return true
	default:
		framePool.Put(f)
		return false
	}
}

// writeBatch bounds how many frames are written between flushes, so one
// busy client's batch never grows without limit.
const writeBatch = 256

// writeLoop drains the queues into the TLS connection, control before
// voice, and flushes once per batch so a burst costs few TLS writes. Every
// batch gets a fresh write deadline; a client that cannot take a batch
// within writeTimeout is stuck and is disconnected.
func (c *conn) writeLoop() {
	for {
		e, pooled, ok := c.next(true)
		if !ok {
			return
		}
		// The write buffer is borrowed per batch, so a thousand idle
		// clients hold none.
		bw := writerPool.Get().(*bufio.Writer)
		bw.Reset(c.stream())
		done := !c.writeBatch(bw, e, pooled)
		bw.Reset(nil)
		writerPool.Put(bw)
		if done {
			return
		}
	}
}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16*1024) }}

// writeBatch writes e and whatever else is queued, up to writeBatch
// frames, under one fresh write deadline, and flushes. It reports false
// when the connection is finished.
func (c *conn) writeBatch(bw *bufio.Writer, e queued, pooled *voiceFrame) bool {
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	for n := 1; ; n++ {
		switch e.mark {
		case markClose: // sendAndClose
			c.flush(bw)
			c.close(c.partingReason())
			return false
		case markGoodbye: // the server is shutting down
			if c.flush(bw) {
				c.goodbye()
			}
			return false
		}
		if !c.write(bw, e.frame, pooled) {
			return false
		}
		if n == writeBatch {
			break
		}
		var more bool
		if e, pooled, more = c.next(false); !more {
			break
		}
	}
	return c.flush(bw)
}

// next takes the next frame, control first. A control frame or marker
// comes back in e, a tunnelled voice frame in pooled. Control frames
// behind a hold wait until its ticket has finished, voice does not. With
// block it waits for something (ok is false once the connection is done);
// without, ok is false when nothing can be written now.
func (c *conn) next(block bool) (e queued, pooled *voiceFrame, ok bool) {
	for {
		if c.held != nil && c.held.finished() {
			c.held = nil
		}
		var ready, held <-chan struct{}
		if c.held == nil {
			if e, ok := c.ctrl.pop(); ok {
				if e.hold != nil {
					c.held = e.hold
					continue
				}
				return e, nil, true
			}
			ready = c.ctrl.ready
		} else {
			held = c.held.done
		}
		if !block {
			select {
			case pooled = <-c.voice:
				return queued{}, pooled, true
			default:
				return queued{}, nil, false
			}
		}
		select {
		case <-ready: // something was queued: pop it above
		case <-held: // the write finished: go on behind the hold
		case pooled = <-c.voice:
			return queued{}, pooled, true
		case <-c.done:
			return queued{}, nil, false
		}
	}
}

// queued is one entry of a connection's control queue: a marshalled
// frame, a hold or a marker.
type queued struct {
	frame []byte
	hold  *ticket // entries behind it wait until the ticket has finished
	mark  mark
}

// mark ends a connection once everything before it has been written.
type mark uint8

const (
	markNone    mark = iota
	markClose        // flush and close (Reject, kick)
	markGoodbye      // flush, end TLS cleanly and let the client hang up (shutdown)
)

// holdCost is what a hold counts towards controlQueueBytes, so a client
// that does not read cannot collect them without bound.
const holdCost = 64

// ctrlQueue holds the control frames waiting for one client, bounded by
// their total size. Unlike a buffered channel it costs nothing while
// empty, which matters with a thousand idle clients.
type ctrlQueue struct {
	mu       sync.Mutex
	frames   []queued
	bytes    int
	lastHold *ticket       // the newest hold queued, so a ticket is queued once
	ready    chan struct{} // capacity 1: frames may be waiting
}

// push queues e and reports false when the queue is over its limit.
func (q *ctrlQueue) push(e queued) bool {
	q.mu.Lock()
	size := e.size()
	if q.bytes+size > controlQueueBytes {
		q.mu.Unlock()
		return false
	}
	q.frames = append(q.frames, e)
	q.bytes += size
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default: // already signalled
	}
	return true
}

// pushHold queues a hold on t, unless t has finished or is already the
// newest hold in the queue (everything after that one waits for t
// anyway).
func (q *ctrlQueue) pushHold(t *ticket) bool {
	q.mu.Lock()
	dup := q.lastHold == t
	q.lastHold = t
	q.mu.Unlock()
	if dup || t.finished() {
		return true
	}
	return q.push(queued{hold: t})
}

func (e queued) size() int {
	if e.hold != nil {
		return holdCost
	}
	return len(e.frame)
}

// pop takes the oldest entry.
func (q *ctrlQueue) pop() (queued, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 {
		return queued{}, false
	}
	e := q.frames[0]
	q.frames[0] = queued{}
	q.frames = q.frames[1:]
	q.bytes -= e.size()
	if len(q.frames) == 0 {
		q.frames = nil // give the backing array back once drained
	}
	return e, true
}

func (c *conn) write(bw *bufio.Writer, frame []byte, pooled *voiceFrame) bool {
	if pooled != nil {
		defer framePool.Put(pooled)
		if time.Now().UnixNano()-pooled.queued > int64(maxTunnelDelay) {
			c.s.control.tunnelLate.Add(1)
			return true // too late to be worth sending
		}
		frame = pooled.buf
	}
	if _, err := bw.Write(frame); err != nil {
		c.close(writeReason(err))
		return false
	}
	return true
}

func (c *conn) flush(bw *bufio.Writer) bool {
	if bw.Buffered() == 0 {
		return true
	}
	if err := bw.Flush(); err != nil {
		c.close(writeReason(err))
		return false
	}
	return true
}

// serve runs the connection: handshake, then the read loop. It owns the
// writer goroutine and waits for it before cleaning up.
func (c *conn) serve() {
	s := c.s
	var writers goroutines
	defer func() {
		if c.router != nil {
			c.router.Close() // its counts go to the engine's totals
		}
		c.close(reasonEOF) // every way out has closed already
		writers.Wait()
		s.disconnect(c)
		if c.web != nil {
			c.web.close()
		}
		s.releaseConn(c)
	}()

	c.nc.SetDeadline(time.Now().Add(s.handshakeTimeout()))
	if c.web == nil {
		c.tc = tls.Server(c.nc, s.tlsConfig)
		if err := c.tc.Handshake(); err != nil {
			s.control.tlsFailed.Add(1)
			c.closeHandshake(err)
			return
		}
		if IsACMEChallenge(c.tc.ConnectionState()) {
			c.blameless = true // the CA checks from several places, often: never an autoban
			c.close(reasonACMEChallenge)
			return
		}
	}

	s.mu.Lock()
	banned := s.bannedLocked(c.remote.Addr(), c.certHash())
	s.unlock()
	if banned {
		s.control.banned.Add(1)
		c.close(reasonBanned) // as Murmur: no Reject, the connection just ends
		return
	}
	writers.Go("connection writer", c.writeLoop)

	c.send(s.versionMessage())

	r := control.NewReader(c.stream())
	for {
		// Before authentication the handshake deadline keeps running;
		// afterwards any message within the timeout keeps the client alive.
		if c.user != nil {
			c.nc.SetReadDeadline(time.Now().Add(s.cfg().Timeout.Duration))
		}
		t, payload, err := r.Read()
		if err != nil {
			if r := c.partingReason(); r != reasonNone {
				c.close(r) // e.g. the client hung up after its Reject
			} else {
				c.close(readReason(err, c.user != nil))
			}
			return
		}
		if c.partingReason() != reasonNone {
			continue // read on until the writer has flushed and closed
		}
		s.handle(c, t, payload)
		s.promoteConn(c)
		select {
		case <-c.done:
			return
		default:
		}
	}
}

// certHash returns the Mumble identity of the client certificate: the hex
// SHA-1 of the leaf's DER, or "" without a certificate. A browser's is
// the identity of its page's rejoin key.
func (c *conn) certHash() string {
	if c.web != nil {
		return c.web.identity
	}
	certs := c.peerCertificates()
	if len(certs) == 0 {
		return ""
	}
	sum := sha1.Sum(certs[0].Raw)
	return hex.EncodeToString(sum[:])
}
