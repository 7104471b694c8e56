package server_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/audiotest"
	"github.com/plenum-voice/plenum/internal/webpeer"
	"github.com/plenum-voice/plenum/server"
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
	l, err := audiotest.NewListener()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packets {
		if err := l.Add(p.payload); err != nil {
			t.Fatal(err)
		}
	}
	return l.PCM
}

// speakWeb sends a tone from a simulated browser in 20 ms frames, in real
// time, for d.
func (b *browser) speak(freq float64, d time.Duration) {
	b.t.Helper()
	sp, err := audiotest.NewSpeaker(freq, 0.3, 20)
	if err != nil {
		b.t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range int(d / (20 * time.Millisecond)) {
		pkt, err := sp.Next()
		if err != nil {
			b.t.Fatal(err)
		}
		if err := b.SendOpus(pkt, 960); err != nil {
			b.t.Fatal(err)
		}
		<-tick.C
	}
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
