package server

// Browsers as users (docs/WEB.md). A browser's WebSocket on the web
// listener (package web) becomes a conn like a Mumble client's TCP
// connection, without TLS of its own and without client certificates: it
// logs in, gets the same messages and goes through the same handlers,
// ACLs, limits, bans and floor control. Its voice is not the Mumble UDP
// or the tunnel but WebRTC (web/rtc): the browser's RTP becomes Mumble
// voice of its session, routed by the engine like any (webConn.Audio);
// what the engine hands its peer goes to the listener mix
// (stage.ListenerMix), whose one Opus stream per browser is written to
// its track on the mix clock's tick.

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/udpbatch"
	"github.com/plenum-voice/plenum/proto/control"
	wire "github.com/plenum-voice/plenum/proto/voice"
	"github.com/plenum-voice/plenum/stage"
	"github.com/plenum-voice/plenum/voice"
	"github.com/plenum-voice/plenum/web"
	"github.com/plenum-voice/plenum/web/page"
	"github.com/plenum-voice/plenum/web/rtc"
	"github.com/plenum-voice/plenum/web/signal"
)

// NoWeb as Options.WebListen turns the web listener off whatever the
// configuration says.
const NoWeb = "off"

// WebMarker is the comment a browser user gets, so that Mumble users see
// who is on the web.
const WebMarker = "on the web (browser)"

// webSide is the web listener, the WebRTC endpoint and the listener mix;
// all nil when web_listen is off. Set up by Listen.
type webSide struct {
	webLn   net.Listener
	webHTTP *http.Server
	webRTC  *rtc.Endpoint
	webMix  *stage.ListenerMix // ticked by the web mix clock only
	// The mix clock's worst: how late it woke, how long a tick took.
	webLate, webLongestTick atomic.Int64
}

// listenWeb binds the web listener and the WebRTC sockets if web_listen
// is set.
func (s *Server) listenWeb() error {
	sc := s.cfg()
	if sc.WebListen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(sc.WebListen)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", sc.WebListen)
	if err != nil {
		return errors.New("web_listen: " + err.Error())
	}
	ep, err := rtc.Listen(rtc.Config{Host: host, UDPPort: sc.WebUDPPort, TCPPort: sc.WebTCPPort,
		Addresses: sc.WebAddresses, Go: s.goroutines.Go})
	if err != nil {
		ln.Close()
		return err
	}
	codecs, err := stage.NewCodecPool()
	if err != nil {
		ln.Close()
		ep.Close()
		return err
	}
	s.webLn, s.webRTC, s.webMix = ln, ep, stage.NewListenerMix(codecs)
	h := &web.Handler{
		Page:       page.FS,
		Origins:    s.webOrigins,
		Admit:      s.admitWeb,
		Serve:      s.serveBrowser,
		MaxMessage: control.HeaderSize + control.MaxPayload,
	}
	s.addWebSignIn(h)
	s.webHTTP = web.NewServer(h)
	return nil
}

// serveWeb starts the web listener and the mix clock.
func (s *Server) serveWeb() {
	if s.webLn == nil {
		return
	}
	// Browsers get the server's certificate (ACME's, once there is one),
	// but are never asked for one of their own (a browser would show a
	// dialog); a CA's TLS-ALPN-01 check is answered here too (acme.go).
	ln := web.DualListener{Listener: s.webLn, TLS: s.TLSConfig("http/1.1")}
	s.goroutines.Go("web listener", func() {
		if err := s.webHTTP.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("web listener failed", "err", err)
		}
	})
	s.goroutines.Go("web mix clock", s.webMixLoop)
}

// WebAddr is the web listener's address, or the zero AddrPort without one.
func (s *Server) WebAddr() netip.AddrPort {
	if s.webLn == nil {
		return netip.AddrPort{}
	}
	return s.webLn.Addr().(*net.TCPAddr).AddrPort()
}

// WebRTCAddrs are the WebRTC endpoint's UDP and TCP addresses.
func (s *Server) WebRTCAddrs() (udp, tcp net.Addr) {
	if s.webRTC == nil {
		return nil, nil
	}
	return s.webRTC.UDPAddr(), s.webRTC.TCPAddr()
}

// WebMixStats are the listener mix's totals (zero without web).
func (s *Server) WebMixStats() stage.MixStats {
	if s.webMix == nil {
		return stage.MixStats{}
	}
	return s.webMix.Stats()
}

// WebListeners is how many browsers the listener mix serves.
func (s *Server) WebListeners() int {
	if s.webMix == nil {
		return 0
	}
	return s.webMix.Listeners()
}

// stopWebListener stops taking new browsers; those connected are told
// goodbye with everyone else.
func (s *Server) stopWebListener() {
	if s.webHTTP != nil {
		s.webHTTP.Close()
	}
}

// closeWebRTC closes the WebRTC sockets once the browsers are gone.
func (s *Server) closeWebRTC() {
	if s.webRTC != nil {
		s.webRTC.Close()
		st := s.webMix.Stats()
		s.log.Info("web mix", "ticks", st.Ticks, "encodes", st.Encodes, "frames", st.Frames, "decodes", st.Decodes,
			"most_encodes_in_a_tick", st.MostEncodes, "late_ticks_given_up", st.Late,
			"latest_wake", time.Duration(s.webLate.Load()), "longest_tick", time.Duration(s.webLongestTick.Load()))
	}
}

func (s *Server) webOrigins() []string {
	var out []string
	for _, o := range s.cfg().WebOrigins {
		if norm, err := conf.WebOrigin(o); err == nil {
			out = append(out, norm)
		}
	}
	return out
}

// admitWeb applies the TLS side's abuse control to a WebSocket about to
// open: not from an autobanned address, not beyond
// max_unauthenticated_per_ip (browsers and Mumble clients count
// together).
func (s *Server) admitWeb(addr netip.AddrPort) bool {
	select {
	case <-s.closing:
		return false
	default:
	}
	why := s.guard.admit(addr.Addr(), time.Now(), s.cfg())
	if why == admitted {
		return true
	}
	reason := reasonAutobanned
	if why == refusedBusy {
		reason = reasonUnauthenticatedCap
	}
	s.log.Debug("web connection refused", s.addrAttr([]any{"reason", reason.String()}, addr.Addr())...)
	return false
}

// serveBrowser runs a browser's connection as a conn; nc is nil when the
// upgrade failed after admitWeb let it in.
func (s *Server) serveBrowser(nc net.Conn, remote netip.AddrPort) {
	if nc == nil {
		s.guard.release(remote.Addr(), false, false, time.Now(), s.cfg())
		return
	}
	c := &conn{
		s:      s,
		nc:     nc,
		remote: remote,
		ctrl:   ctrlQueue{ready: make(chan struct{}, 1)},
		voice:  make(chan *voiceFrame, 1), // never used: no voice over the WebSocket
		done:   make(chan struct{}),
	}
	c.web = &webConn{s: s, c: c}
	if fc, ok := nc.(*web.FrameConn); ok {
		c.signInToken = fc.SignInToken
		if fc.RejoinKey != "" {
			c.web.identity = web.RejoinIdentity(fc.RejoinKey)
		}
	}
	s.mu.Lock()
	select {
	case <-s.closing:
		s.unlock()
		nc.Close()
		s.guard.release(remote.Addr(), false, false, time.Now(), s.cfg())
		return
	default:
	}
	s.conns[c] = struct{}{}
	s.goroutines.Go("connection", c.serve)
	s.unlock()
}

// webMixLoop ticks the listener mix every 20 ms of the wall clock while
// it has listeners, and sleeps while it has none. A tick that comes late
// (the machine was busy) is caught up at once, so no browser misses a
// frame; beyond maxCatchUp ticks behind it gives up the missed ones (the
// browsers' RTP timestamps then show the gap).
func (s *Server) webMixLoop() {
	const maxCatchUp = 5
	const interval = 20 * time.Millisecond
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		if s.webMix.Listeners() == 0 {
			select {
			case <-s.closing:
				return
			case <-s.webMix.Joined():
			}
		}
		next := time.Now().Add(interval)
		timer.Reset(interval)
		for s.webMix.Listeners() > 0 {
			select {
			case <-s.closing:
				return
			case <-timer.C:
			}
			late := time.Since(next)
			s.webLate.Store(max(s.webLate.Load(), int64(late)))
			due := int(late/interval) + 1
			if due > maxCatchUp {
				s.webMix.Skip(due-1, true)
				next = next.Add(time.Duration(due-1) * interval)
				due = 1
			}
			for range due {
				start := time.Now()
				s.webMix.Tick()
				s.webLongestTick.Store(max(s.webLongestTick.Load(), int64(time.Since(start))))
				next = next.Add(interval)
			}
			timer.Reset(time.Until(next))
		}
	}
}

// webConn is a browser's side of its conn: its WebRTC session, its voice
// into the engine, and its peer for the voice out.
type webConn struct {
	s *Server
	c *conn
	// identity stands for the certificate hash a browser cannot have:
	// from the page's rejoin key (web/rejoin.go), or "" without one.
	identity string

	// Set once at login (joinWeb), before the snapshot that routes to it.
	session atomic.Uint32
	format  atomic.Uint32 // a wire.Format

	rtc atomic.Pointer[rtc.Session] // the current WebRTC session; nil before the offer

	// The voice in, under inMu: the session's reader goroutine, and the
	// end of the session.
	inMu    sync.Mutex
	router  *voice.Router
	talking bool
	frame   uint64
	lastTS  uint32
	buf     []byte
}

// joinWeb is called under mu when the browser's user is made: it marks
// the user and makes it a listener of the mix.
func (w *webConn) joinWeb(u *user) {
	w.session.Store(u.session)
	w.format.Store(uint32(u.format))
	if !strings.Contains(u.comment, WebMarker) {
		if u.comment == "" {
			u.comment = WebMarker
		} else {
			u.comment = WebMarker + "<br/>" + u.comment
		}
	}
	w.s.webMix.Add(u.session, w)
}

// close ends the browser's WebRTC and its place in the mix; the conn has
// ended.
func (w *webConn) close() {
	if session := w.session.Load(); session != 0 {
		w.s.webMix.Remove(session, w)
	}
	if r := w.rtc.Swap(nil); r != nil {
		r.Close()
	}
	w.inMu.Lock()
	if w.router != nil {
		w.router.Close()
		w.router = nil
	}
	w.inMu.Unlock()
}

// SendVoice implements voice.Peer: the browser's copy goes into the mix.
func (w *webConn) SendVoice(_ *udpbatch.Batch, pl []byte, _ int64) voice.Path {
	var a wire.Audio
	if wire.DecodeAudio(pl, wire.Format(w.format.Load()), true, &a) != nil {
		return voice.Dropped
	}
	if !w.s.webMix.Deliver(w.session.Load(), &a) {
		return voice.Dropped
	}
	return voice.Web
}

// WriteMix implements stage.MixOutput: the browser's mixed frame of the
// tick goes out on its track.
func (w *webConn) WriteMix(opus []byte, tick uint64) {
	if r := w.rtc.Load(); r != nil {
		r.WriteOpus(opus, tick)
	}
}

// handleSignal answers a browser's offer. Bad signalling gets an error
// message and the connection is closed.
func (s *Server) handleSignal(c *conn, payload []byte) {
	m, err := signal.Parse(payload)
	if err != nil {
		s.refuseSignal(c, err.Error())
		return
	}
	w := c.web
	ev := &webEvents{w: w}
	sess, answer, err := s.webRTC.Answer(m.SDP, ev)
	if err != nil {
		s.refuseSignal(c, "cannot answer this offer: "+err.Error())
		return
	}
	ev.sess.Store(sess)
	if old := w.rtc.Swap(sess); old != nil {
		old.Close() // a new offer (the page reconnected its audio) replaces the old session
	}
	c.sendFrame(control.AppendFrame(nil, signal.Type, signal.Marshal(signal.Message{Type: signal.Answer, SDP: answer})))
}

// refuseSignal tells the browser what was wrong and closes its connection.
func (s *Server) refuseSignal(c *conn, why string) {
	c.part(reasonSignalling)
	c.sendFrame(control.AppendFrame(nil, signal.Type, signal.Marshal(signal.Message{Type: signal.Error, Message: why})))
	c.enqueue(queued{mark: markClose})
	s.log.Debug("bad signalling from a browser", s.logUser("user", c.user), "err", why)
}

// webEvents are one WebRTC session's events; sess tells the current
// session's end from that of one replaced or never installed.
type webEvents struct {
	w    *webConn
	sess atomic.Pointer[rtc.Session]
}

// Audio turns one RTP packet of the browser's voice into a Mumble voice
// packet of its session and routes it: no transcoding, the Opus frame is
// passed as it is.
func (e *webEvents) Audio(p *rtp.Packet, arrival int64) {
	w := e.w
	if len(p.Payload) <= 2 {
		e.Silence() // DTX or comfort noise: no speech
		return
	}
	w.inMu.Lock()
	defer w.inMu.Unlock()
	s := w.s
	if w.router == nil {
		if len(s.udpSocks) == 0 {
			return
		}
		w.router = s.newRouter(s.udpSocks[0]) // any socket: they share the port
	}
	// Mumble numbers frames in 10 ms; RTP counts samples at 48 kHz.
	step := uint64(2)
	if d := p.Timestamp - w.lastTS; w.talking && d > 0 && d < 48000 {
		step = uint64(d / 480)
	}
	w.frame += step
	w.lastTS, w.talking = p.Timestamp, true
	a := wire.Audio{Frame: w.frame, Opus: p.Payload}
	w.route(&a, arrival)
}

// Silence ends the browser's talk burst with a terminator, as a Mumble
// client does when its user stops talking.
func (e *webEvents) Silence() {
	w := e.w
	w.inMu.Lock()
	defer w.inMu.Unlock()
	if !w.talking || w.router == nil {
		return
	}
	w.talking = false
	w.frame += 2
	a := wire.Audio{Frame: w.frame, Opus: w.s.codecs.Silence(), Terminator: true}
	w.route(&a, time.Now().UnixNano())
}

// route hands a packet of the browser's voice to the engine. Under inMu.
func (w *webConn) route(a *wire.Audio, arrival int64) {
	session := w.session.Load()
	if session == 0 {
		return
	}
	w.buf = wire.AppendAudio(w.buf[:0], wire.Format(w.format.Load()), a, false)
	w.s.voice.Route(w.router, session, w, w.buf, arrival)
	w.router.Flush()
}

// Ended closes the browser's connection when its current WebRTC session
// failed or closed: a browser without voice is gone (the page reconnects).
func (e *webEvents) Ended() {
	if s := e.sess.Load(); s != nil && e.w.rtc.Load() == s {
		e.w.c.close(reasonWebRTCEnded)
	}
}
