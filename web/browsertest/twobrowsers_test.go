package browsertest

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plenum-voice/plenum/client"
)

// TestChromiumTwoBrowsersDoNotHearThemselves: two tabs of Chromium in
// one channel with a Mumble client speaking 1500 Hz. Tab A talks (its
// microphone's 1000 Hz), tab B is muted. B hears A's 1000 Hz; A hears
// the Mumble client but not its own voice.
func TestChromiumTwoBrowsersDoNotHearThemselves(t *testing.T) {
	ctx := chromium(t, 1000, "en-US")
	e := startServer(t, hallConfig(t))
	m := e.dial("mumble")
	m.join(t, "Plenary")
	speaker(t, m, 1500)

	a := chromeTab{ctx}
	bctx, cancel := chromedp.NewContext(ctx)
	defer cancel()
	b := chromeTab{bctx}
	joinTab(t, b, e.base, "Plenary", "bee")
	b.click(t, "#mute")
	m.waitFor(t, "bee muted", func(c *client.Client) bool {
		for _, u := range c.Users() {
			if u.GetName() == "bee" && u.GetSelfMute() {
				return true
			}
		}
		return false
	})
	joinTab(t, a, e.base, "Plenary", "ay")
	hears(t, a, 1500, 20*time.Second)
	m.waitHeard(t, m.sessionOf(t, "ay"), 50) // A talks
	pb := hearsBoth(t, b)
	pa := settle(t, a)
	t.Logf("A (talking) hears %v; B (muted) hears %v", pa, pb)
	if pa.DB1000 > pa.DB1500-30 {
		t.Errorf("A hears its own 1000 Hz at %.0f dB beside the Mumble client's 1500 Hz at %.0f dB", pa.DB1000, pa.DB1500)
	}
}

// hearsBoth waits until the page receives both 1000 and 1500 Hz loudly.
func hearsBoth(t testing.TB, tb tab) probe {
	t.Helper()
	var last probe
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if p, ok := measure(t, tb); ok {
			last = p
			if p.DB1000 > -70 && p.DB1500 > -70 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the page never heard both tones; last: %v", last)
	return last
}

// settle measures the page after a second more of listening.
func settle(t testing.TB, tb tab) probe {
	t.Helper()
	time.Sleep(time.Second)
	p, ok := measure(t, tb)
	if !ok {
		t.Fatal("the page has no received stream")
	}
	return p
}
