package server

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/udpbatch"
)

// scriptedSocket answers reads from a script: an error, or nil for a read
// that returns nothing; when the script ends the socket is closed.
type scriptedSocket struct {
	recordingBatch
	script []error
	reads  int
}

func (s *scriptedSocket) ReadBatch([]udpbatch.Datagram) (int, error) {
	s.reads++
	if s.reads > len(s.script) {
		return 0, net.ErrClosed
	}
	return 0, s.script[s.reads-1]
}

// TestUDPReadErrorsAreLoggedOncePerRun: a reader whose reads keep failing
// keeps trying, logs one warning per run of failures (without the
// socket's address) and one line when reads work again, and stops when
// the socket closes.
func TestUDPReadErrorsAreLoggedOncePerRun(t *testing.T) {
	var log bytes.Buffer
	s, err := New(Options{
		Config: conf.Default(),
		Listen: "127.0.0.1:0", WebListen: NoWeb,
		AdminListen: NoAdmin,
		DataDir:     t.TempDir(),
		Logger:      slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.store.Close()
	// What a read on a socket fails with: the text names the local address.
	fail := &net.OpError{Op: "raw-read", Net: "udp", Addr: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 64738},
		Err: os.NewSyscallError("recvmmsg", syscall.ENOBUFS)}
	sock := &scriptedSocket{script: []error{fail, fail, fail, fail, nil, fail, fail, nil}}
	s.udpLoop(sock) // returns when the script ends with a closed socket

	if sock.reads != len(sock.script)+1 {
		t.Errorf("%d reads, want %d: the reader stopped early", sock.reads, len(sock.script)+1)
	}
	out := log.String()
	if n := strings.Count(out, "udp read failed"); n != 2 {
		t.Errorf("%d warnings for two runs of failures, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "failed_reads=4") || !strings.Contains(out, "failed_reads=2") {
		t.Errorf("the ends of the runs are not logged with their lengths:\n%s", out)
	}
	if strings.Contains(out, "192.0.2.7") {
		t.Errorf("the log names an address:\n%s", out)
	}
}

// TestUDPGSOSetting: with udp_gso off the sockets send every datagram on
// its own, and a reload that changes udp_gso applies to the open sockets.
func TestUDPGSOSetting(t *testing.T) {
	cfg := conf.Default()
	cfg.Server.UDPGSO = false
	s := newBareServerWith(t, cfg)
	gso := func() (on int) {
		for _, sock := range s.udpSocks {
			if sock.GSO() {
				on++
			}
		}
		return on
	}
	if n := gso(); n != 0 {
		t.Fatalf("udp_gso = false, yet %d sockets coalesce", n)
	}
	apply := func(on bool) {
		s.mu.Lock()
		next := *s.cfg()
		next.UDPGSO = on
		s.applySettingsLocked(next, nil)
		s.unlock()
	}
	apply(true)
	if n := gso(); n != len(s.udpSocks) {
		if n == 0 && !newBareServer(t).udpSocks[0].GSO() {
			t.Skip("this kernel cannot segment UDP (UDP_SEGMENT)")
		}
		t.Fatalf("after a reload to udp_gso = true, %d of %d sockets coalesce", n, len(s.udpSocks))
	}
	apply(false)
	if n := gso(); n != 0 {
		t.Fatalf("after a reload to udp_gso = false, %d sockets coalesce", n)
	}
}

func TestBackloggedHysteresis(t *testing.T) {
	const max = 64
	steps := []struct {
		n    int
		want bool
	}{
		{3, false},  // light load
		{40, false}, // a burst, but the socket was not full
		{64, true},  // full: backlogged
		{25, true},  // what arrived while a full batch was forwarded: still backlogged
		{64, true},
		{16, false}, // well short of full: caught up
		{40, false},
	}
	state := false
	for i, s := range steps {
		state = backlogged(state, s.n, max)
		if state != s.want {
			t.Fatalf("step %d (read %d): overloaded %v, want %v", i, s.n, state, s.want)
		}
	}
}
