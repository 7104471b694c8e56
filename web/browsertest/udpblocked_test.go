package browsertest

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// udpBlockedNetns makes a network namespace joined to this one by a veth
// pair (this side hostAddr, the namespace's side the next address) in
// which nftables drop all UDP, and deletes it at the test's end. It
// skips the test unless we are root with ip and nft.
func udpBlockedNetns(t testing.TB) (name string, hostAddr netip.Addr) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a network namespace needs root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install iproute2 nftables); scripts/test installs it", tool)
		}
	}
	id := os.Getpid() % 250
	name = fmt.Sprintf("plenum-page-%d", os.Getpid())
	veth, peer := fmt.Sprintf("vpg%d", os.Getpid()), fmt.Sprintf("vpn%d", os.Getpid())
	hostAddr = netip.AddrFrom4([4]byte{10, 251, byte(id), 1})
	nsAddr := netip.AddrFrom4([4]byte{10, 251, byte(id), 2})
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", name)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", veth).Run()
		exec.Command("ip", "netns", "del", name).Run()
	})
	run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
	run("ip", "link", "set", peer, "netns", name)
	run("ip", "addr", "add", hostAddr.String()+"/30", "dev", veth)
	run("ip", "link", "set", veth, "up")
	run("ip", "netns", "exec", name, "ip", "addr", "add", nsAddr.String()+"/30", "dev", peer)
	run("ip", "netns", "exec", name, "ip", "link", "set", peer, "up")
	run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
	rules := filepath.Join(t.TempDir(), "drop-udp.nft")
	os.WriteFile(rules, []byte(`table inet plenumtest {
	chain in { type filter hook input priority 0; meta l4proto udp drop; }
	chain out { type filter hook output priority 0; meta l4proto udp drop; }
}
`), 0o600)
	run("ip", "netns", "exec", name, "nft", "-f", rules)
	return name, hostAddr
}

// TestChromiumWithoutUDP: Chromium in a network namespace whose UDP is
// dropped still talks and hears, over ICE-TCP. It is started by chromedp
// through "ip netns exec" and driven over chromedp's pipe, which the
// namespace does not cut; it opens the page on the veth address, which
// it is told to treat as secure. The server listens as a deployment
// does, on all addresses with the address browsers reach in
// web_addresses (before web/rtc's tcpmux.go, Chromium's ICE-TCP checks
// got no answer that way: 23 requests, 0 responses).
func TestChromiumWithoutUDP(t *testing.T) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium); scripts/test installs it")
	}
	ns, host := udpBlockedNetns(t)
	e := startServerAnnouncing(t, hallConfig(t), host)
	base := fmt.Sprintf("http://%s:%d", host, e.srv.WebAddr().Port())

	wav := filepath.Join(t.TempDir(), "mic.wav")
	writeToneWAV(t, wav, 1000, 2)
	opts := append(chromiumFlags(path, wav, "en-US", t.TempDir()),
		chromedp.Flag("unsafely-treat-insecure-origin-as-secure", base),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			ip, _ := exec.LookPath("ip")
			cmd.Args = append([]string{"ip", "netns", "exec", ns}, cmd.Args...)
			cmd.Path = ip
		}))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium in the namespace: %v", err)
	}
	tb := chromeTab{ctx}

	m := e.dial("mumble")
	m.join(t, "Plenary")
	speaker(t, m, 1500)
	joinTab(t, tb, base, "Plenary", "tcponly")
	p := hears(t, tb, 1500, 30*time.Second)
	web := m.sessionOf(t, "tcponly")
	m.waitHeard(t, web, 75)
	f, n := m.heardFrom(t, web, 25)
	pair := tb.eval(t, `(async () => {
  const stats = await plenum.pc.getStats();
  let pair = null;
  stats.forEach((s) => { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s; });
  if (!pair) return "no pair";
  const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
  return local.protocol + " " + remote.protocol;
})()`)
	t.Logf("without UDP: the page hears %v; the Mumble client decoded %d frames at %.1f Hz; the candidate pair is %s", p, n, f, pair)
	if math.Abs(f-1000) > 3 {
		t.Errorf("the Mumble client decoded the browser's tone at %.1f Hz, want 1000", f)
	}
	if string(pair) != `"tcp tcp"` {
		t.Errorf("the selected candidate pair is %s, want TCP on both sides", pair)
	}
}
