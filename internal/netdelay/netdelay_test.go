//go:build linux

package netdelay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// lab is a network namespace of its own whose loopback's UDP output goes
// to netfilter queue labQueue (bypassed while nobody binds it), with a
// UDP echo server and a client inside.
type lab struct {
	netns  string // path, /run/netns/NAME
	client *net.UDPConn
	server *net.UDPConn
	echoed chan uint32 // the sequence number of each datagram the server got
}

const labQueue = 7

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and nftables")
	}
	if _, err := os.Stat("/proc/net/netfilter/nfnetlink_queue"); err != nil {
		t.Skipf("the kernel has no nfnetlink_queue: %v", err)
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

func run(t *testing.T, stdin string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// newLab makes the namespace; deleting it at the end also deletes its
// nftables table.
func newLab(t *testing.T) *lab {
	needRoot(t)
	name := fmt.Sprintf("pnd%d-%s", os.Getpid()%100000, strings.ReplaceAll(t.Name(), "/", "-"))
	name = name[:min(len(name), 40)]
	run(t, "", "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "", "ip", "-n", name, "link", "set", "lo", "up")
	run(t, `table ip netdelaytest {
  chain out { type filter hook output priority 0; oifname "lo" meta l4proto udp goto delay; }
  chain delay { }
}`, "ip", "netns", "exec", name, "nft", "-f", "-")
	l := &lab{netns: "/run/netns/" + name, echoed: make(chan uint32, 4096)}
	if err := AppendQueueRule(l.netns, "netdelaytest", "delay", labQueue); err != nil {
		t.Fatal(err)
	}
	inNetns(t, l.netns, func() {
		var err error
		if l.server, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
		// Room for a whole burst, which the releaser lets go at once.
		if err = forceReadBuffer(l.server, 8<<20); err != nil {
			t.Fatal(err)
		}
		if l.client, err = net.DialUDP("udp4", nil, l.server.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go l.echo(&wg)
	t.Cleanup(func() {
		l.client.Close()
		l.server.Close()
		wg.Wait()
	})
	return l
}

// inNetns runs f on a thread in the namespace at path: the sockets it
// opens stay there.
func inNetns(t *testing.T, path string, f func()) {
	t.Helper()
	ns, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ns)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		f()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func forceReadBuffer(c *net.UDPConn, n int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) }); err != nil {
		return err
	}
	return serr
}

// echo sends every datagram back until the server is closed.
func (l *lab) echo(wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 64)
	for {
		n, from, err := l.server.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if n >= 4 {
			select {
			case l.echoed <- binary.BigEndian.Uint32(buf):
			default:
			}
		}
		l.server.WriteToUDP(buf[:n], from)
	}
}

func (l *lab) send(t *testing.T, seq uint32) {
	t.Helper()
	if _, err := l.client.Write(binary.BigEndian.AppendUint32(nil, seq)); err != nil {
		t.Fatal(err)
	}
}

// rtts pings n times, one at a time, and returns the round trips of the
// answers that came within wait, sorted.
func (l *lab) rtts(t *testing.T, n int, wait time.Duration) []time.Duration {
	var out []time.Duration
	buf := make([]byte, 64)
	for i := range n {
		start := time.Now()
		l.send(t, uint32(i))
		l.client.SetReadDeadline(start.Add(wait))
		for {
			k, err := l.client.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if k >= 4 && binary.BigEndian.Uint32(buf) == uint32(i) {
				out = append(out, time.Since(start))
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func start(t *testing.T, l *lab, delay time.Duration, drop float64) *Delayer {
	t.Helper()
	d, err := Start(l.netns, labQueue, delay, drop)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func checkClean(t *testing.T, d *Delayer) {
	t.Helper()
	if err := d.Close(); err != nil {
		t.Error(err)
	}
	if s := d.Stats(); s.Errors != 0 || s.Overruns != 0 {
		t.Errorf("stats %+v: %v", s, d.Err())
	}
}

// The round trip crosses loopback's output twice: it grows by twice the
// delay, and nothing is lost.
func TestDelayAddsToTheRoundTrip(t *testing.T) {
	l := newLab(t)
	const n, delay = 40, 15 * time.Millisecond
	before := l.rtts(t, n, time.Second)
	d := start(t, l, delay, 0)
	after := l.rtts(t, n, time.Second)
	p50b, p50a := before[len(before)/2], after[len(after)/2]
	t.Logf("round trip on loopback: p50 %v without, %v with %v each way", p50b, p50a, delay)
	if len(before) != n || len(after) != n {
		t.Fatalf("%d and %d of %d answers: the delay lost packets", len(before), len(after), n)
	}
	if p50a < 2*delay || p50a > 2*delay+p50b+20*time.Millisecond {
		t.Errorf("p50 %v with a delay of %v each way, %v without", p50a, delay, p50b)
	}
	if after[0] < 2*delay {
		t.Errorf("an answer after %v, under twice the delay", after[0])
	}
	// The releaser counts a verdict once it is written, which can be after
	// the packet it let through came back.
	waitFor(t, "every verdict counted", func() bool { return d.Stats().Accepted >= 2*n })
	if s := d.Stats(); s.Accepted != 2*n || s.Dropped != 0 {
		t.Errorf("stats %+v, want %d accepted", s, 2*n)
	}
	checkClean(t, d)
}

func TestDropEverything(t *testing.T) {
	l := newLab(t)
	d := start(t, l, 0, 100)
	for i := range 50 {
		l.send(t, uint32(i))
	}
	time.Sleep(300 * time.Millisecond)
	if len(l.echoed) != 0 {
		t.Errorf("the server got %d of 50 datagrams with all dropped", len(l.echoed))
	}
	if s := d.Stats(); s.Dropped != 50 || s.Accepted != 0 {
		t.Errorf("stats %+v, want 50 dropped", s)
	}
	checkClean(t, d)
}

// A burst keeps its order and loses nothing.
func TestOrderKept(t *testing.T) {
	l := newLab(t)
	d := start(t, l, 5*time.Millisecond, 0)
	const n = 1000
	for i := range n {
		l.send(t, uint32(i))
	}
	got := receive(t, l, n, 3*time.Second)
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("datagram %d after datagram %d", got[i], got[i-1])
		}
	}
	if len(got) != n {
		t.Errorf("%d of %d datagrams", len(got), n)
	}
	checkClean(t, d)
}

// receive collects what the server gets until it has n or wait passes.
func receive(t *testing.T, l *lab, n int, wait time.Duration) []uint32 {
	t.Helper()
	var got []uint32
	timeout := time.After(wait)
	for len(got) < n {
		select {
		case seq := <-l.echoed:
			got = append(got, seq)
		case <-timeout:
			return got
		}
	}
	return got
}

// Close lets go of the packets it holds at once, and afterwards the
// rule's bypass lets packets through.
func TestCloseAcceptsHeldPackets(t *testing.T) {
	l := newLab(t)
	goroutines := runtime.NumGoroutine()
	d := start(t, l, time.Minute, 0)
	for i := range 5 {
		l.send(t, uint32(i))
	}
	time.Sleep(200 * time.Millisecond)
	if len(l.echoed) != 0 {
		t.Fatalf("%d datagrams through before a minute's delay", len(l.echoed))
	}
	closed := time.Now()
	checkClean(t, d)
	if got := receive(t, l, 5, time.Second); len(got) != 5 {
		t.Errorf("%d of 5 held datagrams released by Close", len(got))
	}
	t.Logf("Close took %v", time.Since(closed))
	l.send(t, 99)
	if got := receive(t, l, 1, time.Second); len(got) != 1 {
		t.Error("nothing passes the queue after Close")
	}
	waitFor(t, "the Delayer's goroutines gone", func() bool { return runtime.NumGoroutine() <= goroutines })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
	}
}

// A queue has one owner: a second Delayer is refused, and the first
// keeps working.
func TestSecondBinderRefused(t *testing.T) {
	l := newLab(t)
	d := start(t, l, 0, 0)
	if d2, err := Start(l.netns, labQueue, 0, 0); err == nil {
		d2.Close()
		t.Fatal("two Delayers bound the same queue")
	} else {
		t.Logf("the second: %v", err)
	}
	if got := l.rtts(t, 5, time.Second); len(got) != 5 {
		t.Errorf("%d of 5 answers after a second Delayer was refused", len(got))
	}
	checkClean(t, d)
}

func TestAppendQueueRuleErrors(t *testing.T) {
	if err := AppendQueueRule("", "", "delay", 1); err == nil {
		t.Error("a rule without a table was not refused")
	}
	l := newLab(t)
	err := AppendQueueRule(l.netns, "netdelaytest", "no-such-chain", labQueue)
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("a rule for a missing chain: %v, want ENOENT", err)
	}
}

// One UDP_SEGMENT send of eight datagrams is eight datagrams on the wire,
// and the drop share is of those, not of the send.
func TestDropShareCountsDatagrams(t *testing.T) {
	l := newLab(t)
	d := start(t, l, 0, 100)
	const segments, size = 8, 100
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], size)
	if _, _, err := l.client.WriteMsgUDP(make([]byte, segments*size), oob, nil); err != nil {
		t.Skipf("no UDP segmentation offload: %v", err)
	}
	waitFor(t, "every datagram dropped", func() bool { return d.Stats().Dropped >= segments })
	time.Sleep(50 * time.Millisecond)
	if s := d.Stats(); s.Dropped != segments {
		t.Errorf("stats %+v after one send of %d datagrams", s, segments)
	}
	checkClean(t, d)
}
