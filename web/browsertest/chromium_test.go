package browsertest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// writeToneWAV writes seconds of a sine at freq Hz, 48 kHz mono 16 bit, for
// Chromium's fake microphone (which plays it in a loop).
func writeToneWAV(t testing.TB, path string, freq float64, seconds int) {
	if err := writeWAV(path, freq, seconds); err != nil {
		t.Fatal(err)
	}
}

func writeWAV(path string, freq float64, seconds int) error {
	const rate = 48000
	n := rate * seconds
	b := make([]byte, 44+2*n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], rate)
	binary.LittleEndian.PutUint32(b[28:], rate*2)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	for i := range n {
		v := 0.5 * math.Sin(2*math.Pi*freq*float64(i)/rate)
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(int16(v*32767)))
	}
	return os.WriteFile(path, b, 0o644)
}

// chromium starts a headless Chromium whose microphone plays a tone of
// micHz, and returns a context for its first tab; more tabs come from
// chromedp.NewContext on it. extra flags are added (a remote-debugging
// address for one in another network namespace is done elsewhere).
func chromium(t testing.TB, micHz float64, lang string) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium); scripts/test installs it")
	}
	wav := filepath.Join(t.TempDir(), "mic.wav")
	writeToneWAV(t, wav, micHz, 2)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromiumFlags(path, wav, lang, t.TempDir())...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

func chromiumFlags(path, wav, lang, profile string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("lang", lang),
		chromedp.Flag("accept-lang", lang),
		chromedp.Env("LANGUAGE=" + lang),
	}
}

// joinPage opens the join link in the tab of ctx and joins as name.
func joinPage(ctx context.Context, base, channel, name string) error {
	return chromedp.Do(ctx,
		chromedp.Navigate(base+"/?channel="+channel),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SetValue(chromedp.ID("name"), name),
		chromedp.Click(chromedp.ID("join")),
		chromedp.WaitVisible(chromedp.ID("room-view")),
	)
}

// waitJS polls expr in the page until it is true.
func waitJS(t testing.TB, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	t.Fatalf("the page never showed %s; it shows:\n%s", what, body)
}

func pageText(ctx context.Context, t testing.TB) string {
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

// TestChromiumControl: the page in Chromium joins the hall from the link;
// shows the tree with a Mumble user; text goes both ways, in the channel
// and privately; a recording Mumble client shows as the channel
// recording; its raised hand reaches the chair's queue and its place
// is shown; self-mute reaches Mumble clients; changing channel works; the
// page is German for a German browser.
func TestChromiumControl(t *testing.T) {
	ctx := sharedChromium(t)
	inGerman(t, ctx)
	e := startServer(t, hallConfig(t))
	chair := e.dial("chair", "chair")
	chair.join(t, "Hall")

	if err := joinPage(ctx, e.base, "Hall", "webby"); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the chair in the tree", `[...document.querySelectorAll("#tree .user-name")].some(b => b.textContent == "chair")`)
	hall := chair.channel(t, "Hall")
	var web uint32
	chair.waitFor(t, "webby in the hall", func(c *client.Client) bool {
		for s, u := range c.Users() {
			if u.GetName() == "webby" && u.GetChannelId() == hall {
				web = s
				return true
			}
		}
		return false
	})
	if got := pageText(ctx, t); !strings.Contains(got, "Melden") || !strings.Contains(got, "Stumm") {
		t.Errorf("the page is not German for a German browser:\n%s", got)
	}

	// Text both ways: the channel, then privately.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("chat-input"), "Hallo <aus> dem Browser"),
		chromedp.Click(chromedp.CSS("#chat-form button[type=submit]"))); err != nil {
		t.Fatal(err)
	}
	chair.told(t, "Hallo &lt;aus&gt; dem Browser")
	if err := chair.SendText("to the <b>hall</b>", nil, []uint32{hall}, nil); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the chair's channel message", `document.getElementById("chat-log").innerText.includes("chair: to the hall")`)
	if err := chair.SendText("just for you", []uint32{web}, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the private message", `document.getElementById("chat-log").innerText.includes("just for you")`)

	// A Mumble client that records (its client's recording button) is
	// shown: the channel records.
	if err := chair.Send(&mumblepb.UserState{Session: proto.Uint32(chair.Session()), Recording: proto.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the recording banner", `!document.getElementById("banner-recording").hidden && document.getElementById("banner-recording").textContent.includes("aufgenommen")`)

	// The floor: the page raises its hand; the chair is told the queue.
	waitJS(t, ctx, "the floor buttons", `!document.getElementById("floor").hidden`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("hand"))); err != nil {
		t.Fatal(err)
	}
	chair.told(t, "Queue: 1. webby.")
	waitJS(t, ctx, "the place in the queue", `document.getElementById("place").textContent.includes("Nummer 1")`)
	if hidden, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("chair").hidden`)); !hidden {
		t.Error("a member is shown the chair's buttons")
	}
	waitJS(t, ctx, "being suppressed", `!document.getElementById("banner-suppressed").hidden`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("hand"))); err != nil {
		t.Fatal(err)
	}
	chair.told(t, "Queue: empty.")

	// Self-mute reaches the Mumble client; changing channel too.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("mute"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "self-muted", `plenum.selfMute`)
	chair.waitFor(t, "webby self-muted", func(c *client.Client) bool { return c.Users()[web].GetSelfMute() })
	plenary := chair.channel(t, "Plenary")
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#tree .channel-name")].find(b => b.textContent == "Plenary").click()`)); err != nil {
		t.Fatal(err)
	}
	chair.waitFor(t, "webby in Plenary", func(c *client.Client) bool { return c.Users()[web].GetChannelId() == plenary })
	waitJS(t, ctx, "Plenary as its channel", `document.getElementById("room-channel").textContent == "Plenary"`)

	// Push-to-talk with the space bar: the microphone is sent only while
	// it is held.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("mute"))); err != nil {
		t.Fatal(err)
	}
	chair.waitFor(t, "webby unmuted", func(c *client.Client) bool { return !c.Users()[web].GetSelfMute() })
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("mode"), "ptt"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("mode").dispatchEvent(new Event("change"))`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "nothing sent in push-to-talk", `!plenum.transmitting && plenum.sender && plenum.sender.track === null`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`dispatchEvent(new KeyboardEvent("keydown", { code: "Space" }))`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the microphone sent while space is held", `plenum.transmitting && plenum.sender.track !== null && document.getElementById("ptt").classList.contains("talking")`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`dispatchEvent(new KeyboardEvent("keyup", { code: "Space" }))`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "nothing sent after space is let go", `!plenum.transmitting && plenum.sender.track === null`)
}

// TestChromiumTalksAndHears runs browserAndMumble in Chromium, whose fake
// microphone plays a 1000 Hz WAV file.
func TestChromiumTalksAndHears(t *testing.T) {
	ctx := sharedChromium(t)
	e := startServer(t, hallConfig(t))
	browserAndMumble(t, e, chromeTab{ctx}, "chrome")
	reconnects(t, e, chromeTab{ctx}, "chrome")
	if dir := os.Getenv("PLENUM_PAGE_SHOTS"); dir != "" {
		screenshots(t, ctx, dir)
	}
}

// screenshots saves the page as a laptop and a phone show it, for the
// README (PLENUM_PAGE_SHOTS=$PWD/docs/img go test -run TestChromiumTalksAndHears
// ./web/browsertest; the directory must be absolute).
func screenshots(t testing.TB, ctx context.Context, dir string) {
	for _, s := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"web-page-laptop", 1280, 760, false}, {"web-page-phone", 390, 844, true}} {
		var opts []chromedp.EmulateViewportOption
		if s.mobile {
			opts = append(opts, chromedp.EmulateScale(2), chromedp.EmulateMobile)
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(s.width, s.height, opts...)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the layout and the meters settle
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, s.name+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", file)
	}
}

// TestChromiumChair: a page joining the hall with the chair's access
// token gets the chair's buttons; its "Next" gives the floor to a Mumble
// member who raised a hand.
func TestChromiumChair(t *testing.T) {
	ctx := sharedChromium(t)
	e := startServer(t, hallConfig(t))
	member := e.dial("member")
	member.join(t, "Hall")
	if err := member.SendText("!hand", nil, []uint32{member.channel(t, "Hall")}, nil); err != nil {
		t.Fatal(err)
	}
	member.told(t, "number 1 in the queue")

	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/?channel=Hall"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SetValue(chromedp.ID("name"), "chairweb"),
		chromedp.SetValue(chromedp.ID("token"), "chair"),
		chromedp.Click(chromedp.ID("join")),
		chromedp.WaitVisible(chromedp.ID("room-view"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the chair's buttons", `!document.getElementById("chair").hidden`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-cmd="!next"]`))); err != nil {
		t.Fatal(err)
	}
	member.told(t, "You have the floor.")
	me := member.Session()
	member.waitFor(t, "the member unsuppressed", func(c *client.Client) bool { return !c.Users()[me].GetSuppress() })
}

// inGerman makes the tab's browser German: navigator.language follows
// the Accept-Language that Emulation.setUserAgentOverride sets.
func inGerman(t testing.TB, ctx context.Context) {
	t.Helper()
	ua, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		return chromedp.Void{}, tg.Call(ctx, "Emulation.setUserAgentOverride", map[string]any{"userAgent": ua, "acceptLanguage": "de-DE"}, nil)
	}); err != nil {
		t.Fatal(err)
	}
}
