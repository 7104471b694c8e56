// Package statuspagetest checks the admin listener's status page in a real
// browser, Debian's headless Chromium driven with chromedp: that the
// header's counts are the server's, that the filter finds one person,
// that members are listed in natural order, and how large the page is and
// how long it takes to render. The admin package's tests run it on a fake
// server, the server's on a real one with real clients, and
// scripts/status-page-1000.sh on a server with 1000 clients of the load
// generator. Only tests import it.
package statuspagetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plenum-voice/plenum/admin"
)

// Browser starts a headless Chromium with a fresh profile for the test
// and returns the context to drive it with; the test's end stops it. It
// skips the test when chromium is not installed.
func Browser(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium); scripts/test installs it")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// Limits are what the page must stay within.
type Limits struct {
	PageBytes int           // the page's HTML as it first opens
	Render    time.Duration // from asking for the page until it has loaded
	OpenBytes int           // the page with the largest channel's members shown
	Open      time.Duration // from opening the largest channel until its members show
}

// Options say what to check on which page.
type Options struct {
	Base    string // the admin listener, http://HOST:PORT
	Token   string
	Lang    string // "en" or "de": the browser's Accept-Language
	FindOne string // a name the filter must find alone
	Limits  Limits
	// Shots, if set, is a directory for screenshots, named with
	// ShotPrefix: a laptop's and a tablet's width, German, and the bad
	// connections.
	Shots, ShotPrefix string
	// StreamFor, if set, is how long to count the bytes of the event
	// streams: the JSON one, the page's, and the page's with the largest
	// channel open.
	StreamFor time.Duration
}

// Numbers are what the check measured.
type Numbers struct {
	Participants int
	PageBytes    int
	Render       time.Duration
	Largest      string // the largest channel
	OpenBytes    int
	Open         time.Duration
	EventBytes   int // the first update of the event stream for the page
	StatusBytes  int // /api/status
	// What the event streams sent in StreamFor: the JSON status, the
	// page as it opens and the page with the largest channel open.
	JSONStream, PageStream, OpenStream int
	StreamedFor                        time.Duration
	Shots                              []string
}

func (n Numbers) String() string {
	s := fmt.Sprintf("%d participants: page %d bytes, loaded in %v; %s opened: %d bytes, members shown in %v; first stream update %d bytes",
		n.Participants, n.PageBytes, n.Render.Round(time.Millisecond),
		n.Largest, n.OpenBytes, n.Open.Round(time.Millisecond), n.EventBytes)
	if n.JSONStream > 0 {
		s += fmt.Sprintf("; /api/status %d bytes; in %v streamed: JSON %d bytes, page %d bytes, page with %s open %d bytes", n.StatusBytes, n.StreamedFor, n.JSONStream, n.PageStream, n.Largest, n.OpenStream)
	}
	return s
}

// Check opens the page in the browser of ctx and checks it as o says.
func Check(t testing.TB, ctx context.Context, o Options) Numbers {
	t.Helper()
	var n Numbers
	st := apiStatus(t, o)
	largest := largestChannel(st)
	n.Participants, n.Largest = st.Summary.Participants, largest.Path

	page := get(t, o, "/")
	n.PageBytes = len(page)
	if strings.Contains(page, "⟦") {
		t.Errorf("the page shows a text missing from the table: %s", regexp.MustCompile(`⟦[^⟧]*⟧`).FindString(page))
	}
	n.OpenBytes = len(get(t, o, "/?t="+strconv.FormatUint(uint64(largest.ID), 10)))

	// The browser presents the token once and has the cookie from then on.
	run(t, ctx, chromedp.Navigate(o.Base+"/?token="+o.Token+"&lang="+o.Lang))
	waitFor(t, ctx, "the header", `document.getElementById("h-participants") !== null`)
	// The page as the desk reopens it: timed from the request.
	run(t, ctx, chromedp.Navigate(o.Base+"/?lang="+o.Lang))
	waitFor(t, ctx, "the page to load", `document.readyState === "complete" && document.getElementById("h-participants") !== null`)
	n.Render = eval[duration](t, ctx, `(() => { const e = performance.getEntriesByType("navigation")[0]; return e.loadEventEnd - e.startTime })()`).d()

	checkHeader(t, ctx, o)
	n.EventBytes = eval[int](t, ctx, `new Promise(done => { const check = () => window.plenumUpdate ? done(window.plenumUpdate.bytes) : setTimeout(check, 50); check() })`, chromedp.EvalAwaitPromise)
	checkFilter(t, ctx, o)
	n.Open = openLargest(t, ctx, largest)
	checkNaturalOrder(t, ctx, largest)
	n.Shots = screenshots(t, ctx, o, largest)
	if o.StreamFor > 0 {
		n.StatusBytes, n.StreamedFor = len(get(t, o, "/api/status")), o.StreamFor
		n.JSONStream = streamBytes(t, o, "/api/events")
		n.PageStream = streamBytes(t, o, "/api/events?view=page")
		n.OpenStream = streamBytes(t, o, "/api/events?view=page&t="+strconv.FormatUint(uint64(largest.ID), 10))
	}

	lim := o.Limits
	if lim.PageBytes > 0 && n.PageBytes > lim.PageBytes {
		t.Errorf("the page is %d bytes, over its limit of %d", n.PageBytes, lim.PageBytes)
	}
	if lim.Render > 0 && n.Render > lim.Render {
		t.Errorf("the page took %v to load, over its limit of %v", n.Render, lim.Render)
	}
	if lim.OpenBytes > 0 && n.OpenBytes > lim.OpenBytes {
		t.Errorf("the page with %s open is %d bytes, over its limit of %d", largest.Path, n.OpenBytes, lim.OpenBytes)
	}
	if lim.Open > 0 && n.Open > lim.Open {
		t.Errorf("opening %s took %v, over its limit of %v", largest.Path, n.Open, lim.Open)
	}
	return n
}

// checkHeader compares the header's counts with the server's, taken just
// before and after reading them: someone may start or stop talking in
// between, so it tries again for a few seconds until both agree.
func checkHeader(t testing.TB, ctx context.Context, o Options) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		before := apiStatus(t, o).Summary
		shown := eval[map[string]string](t, ctx, `Object.fromEntries(["participants", "udp", "tcp", "talking", "bad"].map(k => [k, document.getElementById("h-" + k).textContent.replace(/[.,\s]/g, "")]))`)
		after := apiStatus(t, o).Summary
		want := func(s admin.Summary) map[string]string {
			return map[string]string{"participants": strconv.Itoa(s.Participants), "udp": strconv.Itoa(s.UDP), "tcp": strconv.Itoa(s.TCP),
				"talking": strconv.Itoa(s.Talking), "bad": strconv.Itoa(s.Bad)}
		}
		last = fmt.Sprintf("the page shows %v, the server had %v before and %v after", shown, want(before), want(after))
		if fmt.Sprint(shown) == fmt.Sprint(want(before)) && fmt.Sprint(shown) == fmt.Sprint(want(after)) {
			return
		}
	}
	t.Errorf("the header's counts are not the server's: %s", last)
}

// checkFilter types the name into the filter and expects it alone.
func checkFilter(t testing.TB, ctx context.Context, o Options) {
	t.Helper()
	if o.FindOne == "" {
		return
	}
	run(t, ctx, chromedp.SendKeys(chromedp.CSS(`#tools input[name="q"]`), o.FindOne))
	names := waitFor(t, ctx, "the filter to find "+o.FindOne,
		`(() => { const rows = document.querySelectorAll("#matches tr"); return rows.length > 1 && [...rows].slice(1).map(r => r.cells[1].textContent).join("|") })()`)
	if names != o.FindOne {
		t.Errorf("filtering for %q finds %q", o.FindOne, names)
	}
	if !strings.Contains(eval[string](t, ctx, `location.search`), "q="+o.FindOne) {
		t.Errorf("the filter is not in the page's address: %s", eval[string](t, ctx, `location.search`))
	}
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`(() => { const q = document.querySelector('#tools input[name="q"]'); q.value = ""; q.dispatchEvent(new Event("input", {bubbles: true})) })()`))
	waitFor(t, ctx, "the channels after the filter", `document.querySelector("#matches") === null && document.querySelector("section.channel") !== null`)
}

// openLargest opens the largest channel and returns how long its members
// took to show.
func openLargest(t testing.TB, ctx context.Context, ch admin.ChannelStatus) time.Duration {
	t.Helper()
	sel := fmt.Sprintf("#ch-%d", ch.ID)
	if eval[bool](t, ctx, fmt.Sprintf(`document.querySelector(%q) !== null && document.querySelector(%q) !== null`, sel+" table.users", sel+" a.toggle")) {
		return 0 // open already: a channel no larger than the collapse size
	}
	ms := eval[float64](t, ctx, fmt.Sprintf(`new Promise(done => {
		const t0 = performance.now();
		document.querySelector(%q).click();
		const check = () => document.querySelectorAll(%q).length >= %d ? requestAnimationFrame(() => done(performance.now() - t0)) : setTimeout(check, 10);
		check();
	})`, sel+" a.toggle", sel+" table.users tr", len(ch.Users)), chromedp.EvalAwaitPromise)
	return time.Duration(ms * float64(time.Millisecond))
}

// checkNaturalOrder reads the members of ch as listed and checks that
// names differing only in their number come in the order of the number.
func checkNaturalOrder(t testing.TB, ctx context.Context, ch admin.ChannelStatus) {
	t.Helper()
	names := eval[[]string](t, ctx, fmt.Sprintf(`[...document.querySelectorAll("#ch-%d table.users tr td:first-child")].map(td => td.textContent)`, ch.ID))
	if len(names) != len(ch.Users) {
		t.Errorf("%s lists %d members, the server %d", ch.Path, len(names), len(ch.Users))
	}
	numbered := regexp.MustCompile(`^(.*?)(\d+)$`)
	last := map[string]int{}
	for _, name := range names {
		m := numbered.FindStringSubmatch(name)
		if m == nil || len(m[2]) > 1 && m[2][0] == '0' {
			continue // no number, or zero-padded (whose text order is natural)
		}
		v, _ := strconv.Atoi(m[2])
		if prev, ok := last[m[1]]; ok && v < prev {
			t.Errorf("%s lists %s%d before %s: not in natural order", ch.Path, m[1], prev, name)
			return
		}
		last[m[1]] = v
	}
}

// screenshots takes the page as a laptop shows it (the last hour), as a
// tablet shows it and in German (the whole session), whole; and the
// largest channel open, sorted by ping, as much as a laptop's screen
// shows.
func screenshots(t testing.TB, ctx context.Context, o Options, largest admin.ChannelStatus) []string {
	t.Helper()
	if o.Shots == "" {
		return nil
	}
	var files []string
	for _, s := range []struct {
		name          string
		width, height int64
		query         string
		whole         bool
	}{
		{"laptop", 1366, 800, "lang=en", true},
		{"tablet", 820, 1180, "lang=en&range=session", true},
		{"de", 1366, 800, "lang=de&range=session", true},
		{"open", 1366, 800, fmt.Sprintf("lang=en&sort=ping&t=%d#ch-%d", largest.ID, largest.ID), false},
	} {
		file := filepath.Join(o.Shots, o.ShotPrefix+s.name+".png")
		run(t, ctx, chromedp.EmulateViewport(s.width, s.height))
		run(t, ctx, chromedp.Navigate(o.Base+"/?"+s.query))
		waitFor(t, ctx, "the page", `document.readyState === "complete" && window.plenumUpdate !== undefined`)
		shot := chromedp.CaptureScreenshot()
		if s.whole {
			shot = chromedp.FullScreenshot(100)
		}
		png, err := chromedp.Run(ctx, shot)
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, file)
	}
	return files
}

// streamBytes counts what the event stream at path sends in o.StreamFor.
func streamBytes(t testing.TB, o Options, path string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), o.StreamFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", o.Base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+o.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body) // ends with the context
	return int(n)
}

func largestChannel(st admin.Status) admin.ChannelStatus {
	var best admin.ChannelStatus
	for _, ch := range st.Channels {
		if len(ch.Users) > len(best.Users) {
			best = ch
		}
	}
	return best
}

func apiStatus(t testing.TB, o Options) admin.Status {
	t.Helper()
	var st admin.Status
	if err := json.Unmarshal([]byte(get(t, o, "/api/status")), &st); err != nil {
		t.Fatalf("/api/status: %v", err)
	}
	return st
}

// get fetches path from the listener with the token, in the options'
// language.
func get(t testing.TB, o Options, path string) string {
	t.Helper()
	req, err := http.NewRequest("GET", o.Base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+o.Token)
	req.Header.Set("Accept-Language", o.Lang)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %v", path, resp.StatusCode, err)
	}
	return string(body)
}

func run(t testing.TB, ctx context.Context, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, a); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t testing.TB, ctx context.Context, js string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// waitFor waits up to 30 s until the expression is truthy, and returns
// its value as text.
func waitFor(t testing.TB, ctx context.Context, what, js string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Poll[any](js, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return fmt.Sprint(v)
}

// duration is milliseconds as the browser measures them.
type duration float64

func (d duration) d() time.Duration { return time.Duration(float64(d) * float64(time.Millisecond)) }

// Open opens the page in the browser of ctx, presenting the token once,
// and waits until the event stream has updated it; query is the view
// ("" for the default, else e.g. "lang=de").
func Open(t testing.TB, ctx context.Context, base, token, query string) {
	t.Helper()
	run(t, ctx, chromedp.Navigate(base+"/?token="+token+"&"+query))
	waitFor(t, ctx, "the page to be updated", `document.readyState === "complete" && window.plenumUpdate !== undefined`)
}

// WaitFor waits up to 30 s until the JavaScript expression is truthy.
func WaitFor(t testing.TB, ctx context.Context, what, js string) {
	t.Helper()
	waitFor(t, ctx, what, js)
}

// HTML is the page as the browser shows it now.
func HTML(t testing.TB, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `document.documentElement.outerHTML`)
}

// Screenshot writes the whole page, at width by height, to file as PNG.
func Screenshot(t testing.TB, ctx context.Context, file string, width, height int64) {
	t.Helper()
	run(t, ctx, chromedp.EmulateViewport(width, height))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
