package browsertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDesktopPeer is the browser's half of scripts/desktop-client-web.sh,
// skipped unless PLENUM_WEB_PEER_URL names a running server's join link:
// Chromium (fake microphone PLENUM_WEB_PEER_TONE Hz, default 1000) joins
// there as "webpeer", waits to hear PLENUM_WEB_PEER_HEAR Hz (the desktop
// client's tone), keeps talking for PLENUM_WEB_PEER_SECONDS, and writes
// its measurement and a screenshot into PLENUM_WEB_PEER_OUT.
func TestDesktopPeer(t *testing.T) {
	link := os.Getenv("PLENUM_WEB_PEER_URL")
	if link == "" {
		t.Skip("run by scripts/desktop-client-web.sh (PLENUM_WEB_PEER_URL)")
	}
	num := func(name string, def float64) float64 {
		if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
			return v
		}
		return def
	}
	out := os.Getenv("PLENUM_WEB_PEER_OUT")
	ctx := chromium(t, num("PLENUM_WEB_PEER_TONE", 1000), "en-US")
	tb := chromeTab{ctx}
	start := time.Now()
	tb.open(t, link)
	tb.eval(t, `document.getElementById("name").value = "webpeer"`)
	tb.click(t, "#join")
	waitTab(t, tb, "the room", `!document.getElementById("room-view").hidden`)
	hear := num("PLENUM_WEB_PEER_HEAR", 523)
	p := hears(t, tb, hear, 20*time.Second)
	took := time.Since(start)
	time.Sleep(time.Duration(num("PLENUM_WEB_PEER_SECONDS", 8) * float64(time.Second)))
	p2, _ := measure(t, tb)
	report := fmt.Sprintf("browser: heard %.0f Hz %v after opening the link: %v; at the end: %v; talk bursts sent: %s\n",
		hear, took.Round(time.Millisecond), p, p2, tb.eval(t, `plenum.bursts`))
	t.Log(report)
	if out != "" {
		if err := os.WriteFile(filepath.Join(out, "browser.txt"), []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1100, 700)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "browser.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
