package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// The tests share one Chromium (its microphone 1000 Hz) and one Firefox,
// each test in a tab of its own (Chromium) or navigating the one page
// (Firefox), so that browsers start once per test binary. The tests that
// need a browser of their own (another microphone tone, a network
// namespace) start it themselves.
var shared struct {
	chromeOnce sync.Once
	chrome     context.Context
	chromeStop func()
	chromeSkip string
	chromeErr  error

	foxOnce sync.Once
	fox     *foxTab
	foxStop func()
	foxSkip string
	foxErr  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.chromeStop != nil {
		shared.chromeStop()
	}
	if shared.foxStop != nil {
		shared.foxStop()
	}
	os.Exit(code)
}

// sharedChromium returns a new tab of the shared Chromium, closed at the
// test's end.
func sharedChromium(t testing.TB) context.Context {
	t.Helper()
	shared.chromeOnce.Do(func() {
		path, err := exec.LookPath("chromium")
		if err != nil {
			shared.chromeSkip = "chromium not installed (apt-get install chromium); scripts/test installs it"
			return
		}
		dir, err := os.MkdirTemp("", "plenum-chromium")
		if err != nil {
			shared.chromeErr = err
			return
		}
		wav := filepath.Join(dir, "mic.wav")
		if err := writeWAV(wav, 1000, 2); err != nil {
			shared.chromeErr = err
			return
		}
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromiumFlags(path, wav, "en-US", filepath.Join(dir, "profile"))...)
		ctx, cancel := chromedp.NewContext(actx)
		shared.chromeStop = func() { cancel(); cancelAlloc(); os.RemoveAll(dir) }
		if err := chromedp.Do(ctx); err != nil {
			shared.chromeErr = fmt.Errorf("starting chromium: %w", err)
			return
		}
		shared.chrome = ctx
	})
	if shared.chromeSkip != "" {
		t.Skip(shared.chromeSkip)
	}
	if shared.chromeErr != nil {
		t.Fatal(shared.chromeErr)
	}
	ctx, cancel := chromedp.NewContext(shared.chrome)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return ctx
}

// firefox returns the shared Firefox's page (English), or skips the test
// when Firefox cannot run here.
func firefox(t testing.TB) *foxTab {
	t.Helper()
	shared.foxOnce.Do(func() {
		shared.fox, shared.foxStop, shared.foxSkip, shared.foxErr = startFirefox("en-US")
	})
	if shared.foxSkip != "" {
		t.Skip(shared.foxSkip)
	}
	if shared.foxErr != nil {
		t.Fatal(shared.foxErr)
	}
	t.Cleanup(func() { shared.fox.open(t, "about:blank") }) // leaves the server before it stops
	return shared.fox
}
