package browsertest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// tab is one page in a browser, as the shared scenarios drive it.
type tab interface {
	open(t testing.TB, url string)
	// eval evaluates a JavaScript expression, awaiting a promise, and
	// returns its value as JSON.
	eval(t testing.TB, js string) json.RawMessage
	click(t testing.TB, selector string) // a real (trusted) click
}

// chromeTab is a tab of Chromium driven with chromedp.
type chromeTab struct{ ctx context.Context }

func (c chromeTab) open(t testing.TB, url string) {
	t.Helper()
	if err := chromedp.Do(c.ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
}

func (c chromeTab) eval(t testing.TB, js string) json.RawMessage {
	t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[any](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	b, _ := json.Marshal(v)
	return b
}

func (c chromeTab) click(t testing.TB, selector string) {
	t.Helper()
	if err := chromedp.Do(c.ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		t.Fatalf("clicking %s: %v", selector, err)
	}
}

// foxTab is Firefox ESR driven over WebDriver BiDi by puppeteer-core in
// node (testdata/firefox.cjs), one JSON request and answer per line.
type foxTab struct {
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Scanner
}

// puppeteerDir is where scripts/test installs puppeteer-core.
func puppeteerDir() string {
	if d := os.Getenv("PLENUM_PUPPETEER"); d != "" {
		return d
	}
	home, _ := os.UserCacheDir()
	return filepath.Join(home, "plenum-puppeteer", "node_modules")
}

// startFirefox starts Firefox ESR (headless, its built-in fake
// microphone, a private PulseAudio for its audio output) and returns its
// tab and how to stop it all; skip says why it cannot run here
// (firefox-esr, node, puppeteer-core or pulseaudio missing).
func startFirefox(lang string) (f *foxTab, stop func(), skip string, err error) {
	ff, err := exec.LookPath("firefox-esr")
	if err != nil {
		return nil, nil, "firefox-esr not installed (apt-get install firefox-esr); scripts/test installs it", nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, nil, "node not installed (apt-get install nodejs npm); scripts/test installs it", nil
	}
	mods := puppeteerDir()
	if _, err := os.Stat(filepath.Join(mods, "puppeteer-core")); err != nil {
		return nil, nil, fmt.Sprintf("puppeteer-core not in %s (scripts/test installs it there with npm; PLENUM_PUPPETEER names another node_modules)", mods), nil
	}
	env, stopPulse, skip, err := pulseAudio()
	if skip != "" || err != nil {
		return nil, nil, skip, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "testdata/firefox.cjs", ff, lang)
	cmd.Env = append(append(os.Environ(), env...), "NODE_PATH="+mods)
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		stopPulse()
		return nil, nil, "", err
	}
	f = &foxTab{in: in, out: bufio.NewScanner(out)}
	f.out.Buffer(nil, 16<<20)
	stop = func() {
		in.Close() // the script closes the browser and exits
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
		stopPulse()
	}
	return f, stop, "", nil
}

func (f *foxTab) call(t testing.TB, req map[string]any) json.RawMessage {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(req)
	if _, err := f.in.Write(append(b, '\n')); err != nil {
		t.Fatalf("firefox: %v", err)
	}
	if !f.out.Scan() {
		t.Fatalf("firefox ended: %v", f.out.Err())
	}
	var resp struct {
		OK    bool            `json:"ok"`
		Value json.RawMessage `json:"value"`
		Error string          `json:"error"`
	}
	if err := json.Unmarshal(f.out.Bytes(), &resp); err != nil {
		t.Fatalf("firefox said %q: %v", f.out.Text(), err)
	}
	if !resp.OK {
		t.Fatalf("firefox %s: %s", req["op"], resp.Error)
	}
	return resp.Value
}

func (f *foxTab) open(t testing.TB, url string) {
	t.Helper()
	f.call(t, map[string]any{"op": "goto", "url": url})
}

func (f *foxTab) eval(t testing.TB, js string) json.RawMessage {
	t.Helper()
	return f.call(t, map[string]any{"op": "eval", "js": js})
}

func (f *foxTab) click(t testing.TB, selector string) {
	t.Helper()
	f.call(t, map[string]any{"op": "click", "selector": selector})
}

// pulseAudio runs a private PulseAudio daemon with a null sink
// (Firefox's audio output; without one its AudioContext never runs) and
// returns the environment that points to it and how to stop it.
func pulseAudio() (env []string, stop func(), skip string, err error) {
	pa, err := exec.LookPath("pulseaudio")
	if err != nil {
		return nil, nil, "pulseaudio not installed (apt-get install pulseaudio): headless Firefox needs an audio output for WebAudio; scripts/test installs it", nil
	}
	dir, err := os.MkdirTemp("", "plenum-pa")
	if err != nil {
		return nil, nil, "", err
	}
	run := filepath.Join(dir, "run")
	os.MkdirAll(filepath.Join(run, "pulse"), 0o700)
	os.MkdirAll(filepath.Join(dir, "state"), 0o700)
	script := filepath.Join(dir, "pa.pa")
	os.WriteFile(script, []byte("load-module module-native-protocol-unix\nload-module module-null-sink sink_name=speakers\nset-default-sink speakers\n"), 0o600)
	env = []string{"XDG_RUNTIME_DIR=" + run, "PULSE_RUNTIME_PATH=" + filepath.Join(run, "pulse"),
		"PULSE_STATE_PATH=" + filepath.Join(dir, "state"), "PULSE_SERVER=unix:" + filepath.Join(run, "pulse", "native")}
	cmd := exec.Command(pa, "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disallow-exit", "--disable-shm=yes", "-F", script)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, "", err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	sock := filepath.Join(run, "pulse", "native")
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			return env, stop, "", nil
		}
		if i == 100 {
			stop()
			return nil, nil, "", errors.New("pulseaudio did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitTab polls expr in the tab until it is true.
func waitTab(t testing.TB, tb tab, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if string(tb.eval(t, expr)) == "true" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the page never showed %s; it shows:\n%s", what, tb.eval(t, `document.body.innerText`))
}

// joinTab opens the join link and joins as name.
func joinTab(t testing.TB, tb tab, base, channel, name string) {
	t.Helper()
	tb.open(t, base+"/?channel="+channel)
	tb.eval(t, fmt.Sprintf(`document.getElementById("name").value = %q`, name))
	tb.click(t, "#join")
	waitTab(t, tb, "the room", `!document.getElementById("room-view").hidden`)
}
