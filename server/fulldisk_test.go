package server_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/fulldisk"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// logBuffer collects a server's log for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// talk makes p send a voice frame every 20 ms until stop is closed,
// counting them in sent.
func talk(p *peer, sent *atomic.Int64, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for frame := uint64(0); ; frame++ {
		select {
		case <-stop:
			return
		case <-tick.C:
			if p.SendAudio(0, frame, opus, false, nil) == nil {
				sent.Add(1)
			}
		}
	}
}

// listen counts what p hears over UDP until stop is closed.
func listen(p *peer, heard *atomic.Int64, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-stop:
			return
		case a := <-p.audio:
			if a.ViaUDP {
				heard.Add(1)
			}
		}
	}
}

// TestFullDisk runs a server whose data directory (with the configuration
// file it writes back and its database) is a small tmpfs, fills it while
// two users talk over UDP, and checks that edits that cannot be saved are
// reported to the log and to the editor, that the file stays the last
// good version with no temporary files left, that voice goes on, and that
// the change is saved once there is space again.
func TestFullDisk(t *testing.T) {
	dir := fulldisk.Mount(t, 2<<20)
	var logs logBuffer
	s := startTestServer(t, testOpts{dataDir: dir, policy: grantAll{}, logger: slog.New(slog.NewTextHandler(&logs, nil))})
	path := filepath.Join(dir, server.DefaultConfigFile)
	alice, bob := s.join(t, "alice", nil), s.join(t, "bob", nil)
	admin := s.join(t, "admin", withCert(t))
	alice.waitUDP()
	bob.waitUDP()

	var aliceSent, bobSent, aliceHeard, bobHeard atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(4)
	go talk(alice, &aliceSent, stop, &wg)
	go talk(bob, &bobSent, stop, &wg)
	go listen(alice, &aliceHeard, stop, &wg)
	go listen(bob, &bobHeard, stop, &wg)
	defer func() {
		close(stop)
		wg.Wait()
	}()
	// heardWithin checks that what each sent during d reached the other
	// (give or take the few frames on their way at either end).
	heardWithin := func(what string, d time.Duration) {
		t.Helper()
		as0, bs0, ah0, bh0 := aliceSent.Load(), bobSent.Load(), aliceHeard.Load(), bobHeard.Load()
		time.Sleep(d)
		as, bs, ah, bh := aliceSent.Load()-as0, bobSent.Load()-bs0, aliceHeard.Load()-ah0, bobHeard.Load()-bh0
		if as < 5 || bs < 5 || bh < as-5 || ah < bs-5 {
			t.Errorf("%s: alice sent %d frames and bob heard %d; bob sent %d and alice heard %d", what, as, bh, bs, ah)
		}
		t.Logf("%s, %v: alice sent %d frames and bob heard %d; bob sent %d and alice heard %d", what, d, as, bh, bs, ah)
	}

	for _, name := range []string{"Before", "Before 2"} { // two writes, so there is a .bak
		admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String(name)})
		admin.waitFor(name, func(c *client.Client) bool { _, ok := channelByName(c, name); return ok })
	}
	waitFile(t, path, "Before 2", func(c *conf.Config) bool { return c.Lookup("Before 2") != nil })
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	heardWithin("before the disk is full", 500*time.Millisecond)

	free := fulldisk.Fill(t, dir)
	t.Logf("disk filled: %d bytes free", fulldisk.Avail(t, dir))

	// A channel edit: in effect and confirmed, but the editor is told it
	// is not saved, and so is the log.
	admin.Send(&mumblepb.ChannelState{Parent: proto.Uint32(0), Name: proto.String("During")})
	admin.waitFor("the notice that the edit is not saved", func(*client.Client) bool {
		return hasText(admin, "not saved: the server's disk is full")
	})
	if _, ok := channelByName(admin.Client, "During"); !ok {
		t.Error("the edit was not confirmed")
	}
	if l := logs.String(); !strings.Contains(l, "writing the configuration failed") || !strings.Contains(l, "no space left on device") {
		t.Errorf("the log does not say what failed:\n%s", l)
	}

	// A registration: refused with the reason, and not in effect.
	carol := s.join(t, "carol", withCert(t))
	carol.Send(&mumblepb.UserState{Session: proto.Uint32(carol.Session()), UserId: proto.Uint32(0)})
	carol.waitFor("the refused registration", func(*client.Client) bool {
		for _, d := range messagesOf[*mumblepb.PermissionDenied](carol) {
			if d.GetType() == mumblepb.PermissionDenied_Text && strings.Contains(d.GetReason(), "could not be saved: the server's disk is full") {
				return true
			}
		}
		return false
	})
	if carol.Users()[carol.Session()].UserId != nil {
		t.Error("carol counts as registered although that was not saved")
	}
	heardWithin("while the disk is full", time.Second)

	// The file is still the last good version, complete, with nothing
	// half-written beside it.
	if now, _ := os.ReadFile(path); !bytes.Equal(now, good) {
		t.Errorf("the file changed on a full disk:\n%s", now)
	}
	if _, err := conf.Load(path + ".bak"); err != nil {
		t.Errorf("the .bak does not load: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}

	// Space again: the retry saves the edit and the editor hears of it.
	free()
	waitFile(t, path, "During, once there is space", func(c *conf.Config) bool { return c.Lookup("During") != nil })
	admin.waitFor("the notice that the edit is saved", func(*client.Client) bool {
		return hasText(admin, "now saved")
	})
	carol.Send(&mumblepb.UserState{Session: proto.Uint32(carol.Session()), UserId: proto.Uint32(0)})
	carol.waitFor("the registration", func(c *client.Client) bool { return c.Users()[c.Session()].UserId != nil })
	heardWithin("after space was freed", 500*time.Millisecond)
}

func hasText(p *peer, part string) bool {
	for _, m := range messagesOf[*mumblepb.TextMessage](p) {
		if strings.Contains(m.GetMessage(), part) {
			return true
		}
	}
	return false
}
