package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/rtp"
	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/audiotest"
	"github.com/plenum-voice/plenum/internal/webpeer"
	"github.com/plenum-voice/plenum/proto/control"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
	"github.com/plenum-voice/plenum/stage"
	"github.com/plenum-voice/plenum/web"
	"github.com/plenum-voice/plenum/web/signal"
)

// browser is a simulated browser in a test, with what its track brought.
type browser struct {
	*webpeer.Peer
	t testing.TB

	mu      sync.Mutex
	packets []heardRTP
}

type heardRTP struct {
	payload []byte
	seq     uint16
	at      time.Time
}

func startWebServer(t testing.TB, edit func(*conf.Config)) *testServer {
	t.Helper()
	return startTestServer(t, testOpts{edit: edit, web: true})
}

func (s *testServer) browser(t testing.TB, name string, edit func(*webpeer.Config)) *browser {
	t.Helper()
	b := &browser{t: t}
	cfg := webpeer.Config{
		URL:      "ws://" + s.WebAddr().String() + "/ws",
		Username: name,
		OnRTP: func(p *rtp.Packet, at time.Time) {
			b.mu.Lock()
			b.packets = append(b.packets, heardRTP{payload: append([]byte(nil), p.Payload...), seq: p.SequenceNumber, at: at})
			b.mu.Unlock()
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := webpeer.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { p.Close() })
	b.Peer = p
	return b
}

// heard returns the packets received so far and forgets them.
func (b *browser) take() []heardRTP {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.packets
	b.packets = nil
	return out
}

// decode decodes packets into PCM.
func decodeRTP(t testing.TB, packets []heardRTP) []int16 {
	t.Helper()
	payloads := make([][]byte, len(packets))
	for i, p := range packets {
		payloads[i] = p.payload
	}
	pcm, err := audiotest.Decode(payloads)
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

// speak sends a tone from the simulated browser in 20 ms frames, in real
// time, for d; safe from any goroutine.
func (b *browser) speak(freq float64, d time.Duration) {
	sp, err := audiotest.NewSpeaker(freq, 0.3, 20)
	if err != nil {
		b.t.Error(err)
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range int(d / (20 * time.Millisecond)) {
		pkt, err := sp.Next()
		if err != nil {
			b.t.Error(err)
			return
		}
		if err := b.SendOpus(pkt, 960); err != nil {
			b.t.Error(err)
			return
		}
		<-tick.C
	}
}

// speakTogether has each browser speak its tone at the same time.
func speakTogether(browsers []*browser, freqs []float64, d time.Duration) {
	var wg sync.WaitGroup
	for i, b := range browsers {
		wg.Go(func() { b.speak(freqs[i], d) })
	}
	wg.Wait()
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// TestWebBrowserAndMumbleHearEachOther: a simulated browser's 1000 Hz
// tone reaches a Mumble client as Mumble voice of the browser's session,
// decoded at 1000 Hz, and the Mumble client's 1500 Hz tone reaches the
// browser's mixed track, decoded at 1500 Hz.
func TestWebBrowserAndMumbleHearEachOther(t *testing.T) {
	s := startWebServer(t, nil)
	m := s.join(t, "mumble", nil)
	b := s.browser(t, "webuser", nil)
	bs := b.Session()
	m.waitFor("the browser user", func(c *client.Client) bool {
		u, ok := c.Users()[bs]
		return ok && u.GetComment() == server.WebMarker
	})

	b.speak(1000, time.Second)
	h := collect(m, 300*time.Millisecond)
	pcm := h.decoded(t, bs, time.Time{})
	f := audiotest.Frequency(pcm[len(pcm)/4:])
	t.Logf("browser -> Mumble: %d packets, %.2f Hz", len(h.packets[bs]), f)
	if !near(f, 1000, 2) {
		t.Errorf("the Mumble client decoded the browser's tone at %.1f Hz, want 1000", f)
	}
	if n := len(h.packets[bs]); n < 45 {
		t.Errorf("the Mumble client got %d packets of the browser's 50", n)
	}
	if last := h.packets[bs][len(h.packets[bs])-1]; !last.Terminator {
		t.Error("the browser's burst did not end with a terminator")
	}

	b.take()
	speak(t, []*peer{m}, []tone{{"mumble", 1500, 0.3}}, 20, time.Second)
	time.Sleep(200 * time.Millisecond)
	got := b.take()
	if len(got) < 45 {
		t.Fatalf("the browser got %d packets of the Mumble client's 50", len(got))
	}
	pcm = decodeRTP(t, got)
	f = audiotest.Frequency(pcm[len(pcm)/4:])
	t.Logf("Mumble -> browser: %d packets, %.2f Hz", len(got), f)
	if !near(f, 1500, 2) {
		t.Errorf("the browser decoded the Mumble client's tone at %.1f Hz, want 1500", f)
	}
}

// TestWebMixMinus: two browsers speaking at once each hear the other and
// not themselves.
func TestWebMixMinus(t *testing.T) {
	s := startWebServer(t, nil)
	a := s.browser(t, "alice", nil)
	b := s.browser(t, "bob", nil)
	speakTogether([]*browser{a, b}, []float64{1000, 1500}, time.Second)
	time.Sleep(200 * time.Millisecond)
	for _, c := range []struct {
		who        *browser
		own, other float64
	}{{a, 1000, 1500}, {b, 1500, 1000}} {
		pcm := decodeRTP(t, c.who.take())
		if len(pcm) < 48000*3/4 {
			t.Fatalf("the %.0f Hz speaker heard %d samples, want about a second", c.own, len(pcm))
		}
		mid := pcm[len(pcm)/4 : len(pcm)*3/4]
		own, other := audiotest.Level(mid, c.own), audiotest.Level(mid, c.other)
		t.Logf("%.0f Hz speaker: own tone %.4f, other tone %.4f", c.own, own, other)
		if other < 0.1 {
			t.Errorf("the %.0f Hz speaker hears the other at level %.4f, want about 0.3", c.own, other)
		}
		if own > 0.01 {
			t.Errorf("the %.0f Hz speaker hears itself at level %.4f", c.own, own)
		}
	}
}

// TestWebSharedEncodes: ten silent browsers and two speaking ones in one
// channel need three encodes a tick (the ten share the mix of both, each
// speaker hears the other alone), not twelve.
func TestWebSharedEncodes(t *testing.T) {
	s := startWebServer(t, nil)
	var listeners []*browser
	for i := range 10 {
		listeners = append(listeners, s.browser(t, "listener"+string(rune('a'+i)), nil))
	}
	a := s.browser(t, "speaker1", nil)
	b := s.browser(t, "speaker2", nil)
	var before, after stage.MixStats
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(400 * time.Millisecond) // both are playing by then
		before = s.WebMixStats()
		time.Sleep(time.Second)
		after = s.WebMixStats()
	}()
	speakTogether([]*browser{a, b}, []float64{1000, 1500}, 2*time.Second)
	<-done
	ticks := after.Ticks - before.Ticks
	encodes := float64(after.Encodes-before.Encodes) / float64(ticks)
	frames := float64(after.Frames-before.Frames) / float64(ticks)
	t.Logf("%d ticks: %.2f encodes and %.2f frames a tick; at most %d encodes in one", ticks, encodes, frames, after.MostEncodes)
	if ticks < 40 {
		t.Fatalf("only %d mixing ticks in a second", ticks)
	}
	// Three sets are heard: both speakers (the ten), and each speaker
	// alone (by the other). A tick in which one speaker's audio is
	// missing (a busy machine) has fewer, never more.
	if encodes > 3 || encodes < 2.5 || after.MostEncodes != 3 {
		t.Errorf("%.2f encodes a tick (at most %d), want 3", encodes, after.MostEncodes)
	}
	if frames < 11 || frames > 12 {
		t.Errorf("%.2f frames a tick, want 12 (every browser hears something)", frames)
	}
	for _, l := range listeners {
		pcm := decodeRTP(t, l.take())
		mid := pcm[len(pcm)/4 : len(pcm)*3/4]
		if audiotest.Level(mid, 1000) < 0.1 || audiotest.Level(mid, 1500) < 0.1 {
			t.Errorf("a listener hears 1000 Hz at %.3f and 1500 Hz at %.3f, want both about 0.3",
				audiotest.Level(mid, 1000), audiotest.Level(mid, 1500))
		}
	}
}

// TestWebRemovedOnDisconnect: a browser user leaves the tree when its
// page closes (the WebSocket ends) and when only its WebRTC connection
// dies.
func TestWebRemovedOnDisconnect(t *testing.T) {
	s := startWebServer(t, nil)
	m := s.join(t, "mumble", nil)
	for _, how := range []string{"page closed", "WebRTC gone"} {
		b := s.browser(t, "web", nil)
		session := b.Session()
		m.waitFor("the browser user", func(c *client.Client) bool { _, ok := c.Users()[session]; return ok })
		if n := s.WebListeners(); n != 1 {
			t.Fatalf("%s: %d listeners in the mix, want 1", how, n)
		}
		if how == "page closed" {
			b.Close()
		} else {
			b.ClosePeerConnection()
		}
		m.waitFor(how+": the browser user gone", func(c *client.Client) bool { _, ok := c.Users()[session]; return !ok })
		deadline := time.Now().Add(5 * time.Second)
		for s.WebListeners() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := s.WebListeners(); n != 0 {
			t.Errorf("%s: %d listeners left in the mix", how, n)
		}
		b.Close()
	}
}

// TestWebSpeakerSuppressed: a browser user is bound by the channel's
// ACL and by floor control like anyone: without Speak, or in a hall
// whose floor they do not hold, nobody hears them.
func TestWebSpeakerSuppressed(t *testing.T) {
	s := startWebServer(t, func(c *conf.Config) {
		c.Channels = append(c.Channels,
			conf.Channel{Name: "Quiet", ACL: []conf.ACLEntry{{Group: "all", Deny: []string{"Speak"}}}},
			conf.Channel{Name: "Hall", Floor: true})
	})
	m := s.join(t, "mumble", nil)
	b := s.browser(t, "web", nil)
	for _, name := range []string{"Quiet", "Hall"} {
		id := m.channelID(name)
		session := b.Session()
		if err := b.Move(id); err != nil {
			t.Fatal(err)
		}
		if err := m.Move(id); err != nil {
			t.Fatal(err)
		}
		m.waitFor("both in "+name, func(c *client.Client) bool {
			u := c.Users()[session]
			me := c.Users()[c.Session()]
			return u.GetChannelId() == id && me.GetChannelId() == id && u.GetSuppress()
		})
		b.speak(1000, 500*time.Millisecond)
		h := collect(m, 300*time.Millisecond)
		if n := len(h.packets[session]); n != 0 {
			t.Errorf("%s: the Mumble client heard %d packets of the suppressed browser user", name, n)
		}
	}
}

// TestWebICETCP: a browser that can only use ICE over TCP talks and
// hears.
func TestWebICETCP(t *testing.T) {
	s := startWebServer(t, nil)
	m := s.join(t, "mumble", nil)
	b := s.browser(t, "web", func(c *webpeer.Config) { c.TCPOnly = true })
	bs := b.Session()
	b.speak(1000, 500*time.Millisecond)
	h := collect(m, 300*time.Millisecond)
	if n := len(h.packets[bs]); n < 20 {
		t.Errorf("over ICE-TCP the Mumble client heard %d packets of 25", n)
	}
	speak(t, []*peer{m}, []tone{{"mumble", 1500, 0.3}}, 20, 500*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	if n := len(b.take()); n < 20 {
		t.Errorf("over ICE-TCP the browser got %d packets of 25", n)
	}
}

// TestWebListenerServesHTTPAndHTTPS: one port answers plain HTTP and
// HTTPS, serving the page for any path without a dot, and the WebSocket
// refuses foreign origins.
func TestWebListenerServesHTTPAndHTTPS(t *testing.T) {
	s := startWebServer(t, func(c *conf.Config) { c.Server.WebOrigins = []string{"https://join.example.org"} })
	addr := s.WebAddr().String()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 5 * time.Second}
	for _, url := range []string{"http://" + addr + "/", "https://" + addr + "/?channel=Plenary", "http://" + addr + "/Plenary"} {
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "<html") {
			t.Errorf("GET %s: %d, %d bytes", url, resp.StatusCode, len(body))
		}
		if wantTLS := strings.HasPrefix(url, "https"); (resp.TLS != nil) != wantTLS {
			t.Errorf("GET %s: TLS %v", url, resp.TLS != nil)
		}
	}
	if resp, err := hc.Get("http://" + addr + "/missing.js"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET a missing file: %v, %v", resp.StatusCode, err)
	}
	for origin, want := range map[string]bool{
		"http://" + addr:           true,
		"https://join.example.org": true,
		"https://evil.example.com": false,
		"http://" + addr + ".evil": false,
		"https://" + addr:          false, // the page came over http
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ws, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		cancel()
		if got := err == nil; got != want {
			t.Errorf("Origin %s: allowed %v, want %v", origin, got, want)
		}
		if err == nil {
			ws.CloseNow()
		} else if resp != nil && resp.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %s refused with %d, want 403", origin, resp.StatusCode)
		}
	}
}

// TestWebBadSignalling: an offer that is not one gets an error message
// and a closed socket; signalling from a Mumble client is ignored.
func TestWebBadSignalling(t *testing.T) {
	s := startWebServer(t, nil)
	m := s.join(t, "mumble", nil)
	if err := m.SendRaw(signal.Type, []byte(`{"type":"offer","sdp":"v=0"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ping(context.Background()); err != nil {
		t.Fatalf("the Mumble client was disconnected for signalling: %v", err)
	}
	for i, bad := range []string{`{"type":"offer"`, `{"type":"answer","sdp":"v=0"}`, `{"type":"offer","sdp":"v=0\r\nnonsense"}`} {
		errs := make(chan signal.Message, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ws, _, err := websocket.Dial(ctx, "ws://"+s.WebAddr().String()+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(ctx, client.Config{
			Conn: websocket.NetConn(context.Background(), ws, websocket.MessageBinary), Username: fmt.Sprint("web", i),
			OnUnknown: func(_ control.Type, p []byte) {
				var msg signal.Message
				json.Unmarshal(p, &msg)
				errs <- msg
			},
		})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		c.SendRaw(signal.Type, []byte(bad))
		select {
		case msg := <-errs:
			if msg.Type != signal.Error || msg.Message == "" {
				t.Errorf("%s: got %+v, want an error", bad, msg)
			}
			t.Logf("%s: %s", bad, msg.Message)
		case <-time.After(5 * time.Second):
			t.Errorf("%s: no error message", bad)
		}
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Errorf("%s: the socket stayed open", bad)
		}
		c.Close()
	}
}

// TestWebUnauthenticatedLimit: WebSockets that have not logged in count
// against max_unauthenticated_per_ip like TLS connections.
func TestWebUnauthenticatedLimit(t *testing.T) {
	s := startWebServer(t, func(c *conf.Config) { c.Server.MaxUnauthenticatedPerIP = 2 })
	url := "ws://" + s.WebAddr().String() + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var open []*websocket.Conn
	for range 2 {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, ws)
	}
	_, resp, err := websocket.Dial(ctx, url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third unauthenticated WebSocket: %v, want 503", err)
	}
	open[0].CloseNow()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err == nil {
			ws.CloseNow()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after one closed, still refused: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	open[1].CloseNow()
}

// TestWebLogsNoAddresses: a browser that logs in, talks, sends bad
// signalling and leaves, with the log at debug level, leaves neither its
// address nor its (unregistered) name in the log.
func TestWebLogsNoAddresses(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := startTestServer(t, testOpts{web: true, logger: logger})
	m := s.join(t, "mumble", nil)
	b := s.browser(t, "Privatperson", nil)
	b.speak(1000, 200*time.Millisecond)
	collect(m, 200*time.Millisecond)
	// An offer that parses, names an address, and cannot be answered.
	b.SendRaw(signal.Type, []byte(`{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 192.0.2.99\r\ns=-\r\nc=IN IP4 192.0.2.99\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n"}`))
	select {
	case <-b.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the bad offer did not close the connection")
	}
	m.waitFor("the browser user gone", func(c *client.Client) bool { return c.NumUsers() == 1 })
	s.stop()
	log := buf.String()
	if !strings.Contains(log, "bad signalling") {
		t.Errorf("the log does not mention the bad signalling:\n%s", log)
	}
	for _, secret := range []string{"127.0.0.1", "192.0.2.99", "Privatperson"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %q:\n%s", secret, log)
		}
	}
}

// syncBuffer is a bytes.Buffer for a logger that writes from many
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestWebICETCPOnAllAddresses: with the listeners on all addresses and the
// public address announced in web_addresses (a server behind a NAT, or
// with several interfaces), a browser that only has TCP is answered on
// the connection it opens to that address, whatever interface took it.
func TestWebICETCPOnAllAddresses(t *testing.T) {
	public := firstNonLoopbackIPv4(t)
	s := startTestServer(t, testOpts{web: true, webListen: "0.0.0.0:0", edit: func(c *conf.Config) {
		c.Server.WebAddresses = []string{public}
	}})
	m := s.join(t, "mumble", nil)
	b := s.browser(t, "web", func(c *webpeer.Config) { c.TCPOnly = true })
	bs := b.Session()
	b.speak(1000, 500*time.Millisecond)
	h := collect(m, 300*time.Millisecond)
	if n := len(h.packets[bs]); n < 20 {
		t.Errorf("over ICE-TCP to %s the Mumble client heard %d packets of 25", public, n)
	}
}

// firstNonLoopbackIPv4 returns an IPv4 address of one of the machine's
// interfaces other than loopback, or skips the test.
func firstNonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("no interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("the machine has no IPv4 address besides loopback")
	return ""
}

// TestWebBannedBrowserStaysOut: a moderator's kick-ban ends a browser's
// session, and a browser from the banned address is refused afterwards,
// as a Mumble client would be (everyone here is 127.0.0.1).
func TestWebBannedBrowserStaysOut(t *testing.T) {
	s := startTestServer(t, testOpts{policy: grantAll{}, web: true})
	mod := s.join(t, "mod", nil)
	b := s.browser(t, "web", nil)
	mod.Send(&mumblepb.UserRemove{Session: proto.Uint32(b.Session()), Ban: proto.Bool(true), Reason: proto.String("spam")})
	select {
	case <-b.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the banned browser is still connected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if p, err := webpeer.Dial(ctx, webpeer.Config{URL: "ws://" + s.WebAddr().String() + "/ws", Username: "again"}); err == nil {
		p.Close()
		t.Fatal("a browser from the banned address got in")
	}
}

// TestWebRejoinKey: a page comes back with its tab's rejoin key while
// its old session is still listed (its network changed and the server has
// not noticed): the new connection replaces the old one at once. Another
// tab (another key), a malformed key or none finds the name in use. A
// browser cannot register: its identity lasts as long as the tab.
func TestWebRejoinKey(t *testing.T) {
	s := startWebServer(t, nil)
	m := s.join(t, "mumble", nil)
	wsURL := "ws://" + s.WebAddr().String() + "/ws"
	const key = "0123456789abcdef0123456789abcdef"
	withKey := func(k string) func(*webpeer.Config) {
		return func(c *webpeer.Config) { c.URL = wsURL + "?rejoin=" + k }
	}
	first := s.browser(t, "tab", withKey(key))
	for _, k := range []string{"fedcba9876543210fedcba9876543210", "0123456789ABCDEF0123456789ABCDEF", "short", ""} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := webpeer.Dial(ctx, webpeer.Config{URL: wsURL + "?rejoin=" + k, Username: "tab"})
		cancel()
		var rej *client.RejectError
		if !errors.As(err, &rej) || rej.Type != mumblepb.Reject_UsernameInUse {
			t.Errorf("key %q: %v, want the name in use", k, err)
		}
	}

	denied := make(chan mumblepb.PermissionDenied_DenyType, 8)
	again := s.browser(t, "tab", func(c *webpeer.Config) {
		withKey(key)(c)
		c.OnMessage = func(_ control.Type, m proto.Message) {
			if d, ok := m.(*mumblepb.PermissionDenied); ok {
				denied <- d.GetType()
			}
		}
	})
	select {
	case <-first.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the old session was not ended")
	}
	m.waitFor("one tab, the new session", func(c *client.Client) bool {
		n := 0
		for _, u := range c.Users() {
			if u.GetName() == "tab" {
				n++
			}
		}
		u, ok := c.Users()[again.Session()]
		return n == 1 && ok && u.GetHash() == web.RejoinIdentity(key)
	})

	if err := again.Send(&mumblepb.UserState{Session: proto.Uint32(again.Session()), UserId: proto.Uint32(0)}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-denied:
		if d != mumblepb.PermissionDenied_MissingCertificate {
			t.Errorf("a browser's registration was refused with %v, want MissingCertificate", d)
		}
	case <-time.After(5 * time.Second):
		t.Error("a browser's registration was not refused")
	}
}
