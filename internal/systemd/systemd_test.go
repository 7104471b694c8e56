package systemd_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/internal/systemd"
)

// listen opens a unixgram socket at name, as the service manager does, and
// points NOTIFY_SOCKET at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("nothing arrived at the notify socket: %v", err)
	}
	return string(buf[:n])
}

// TestNotifyPathSocket: each state arrives as one datagram at the socket
// that NOTIFY_SOCKET names.
func TestNotifyPathSocket(t *testing.T) {
	conn := listen(t, filepath.Join(t.TempDir(), "notify"))
	for _, state := range []string{systemd.Ready, systemd.Status("listening on [::]:64738"), systemd.Stopping} {
		sent, err := systemd.Notify(state)
		if !sent || err != nil {
			t.Fatalf("Notify(%q) = %v, %v", state, sent, err)
		}
		if got := receive(t, conn); got != state {
			t.Errorf("received %q, want %q", got, state)
		}
	}
}

// TestNotifyAbstractSocket: a name starting with '@' is a socket in the
// abstract namespace, which is what systemd usually hands out.
func TestNotifyAbstractSocket(t *testing.T) {
	conn := listen(t, fmt.Sprintf("@plenum-notify-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if sent, err := systemd.Notify(systemd.Ready); !sent || err != nil {
		t.Fatalf("Notify = %v, %v", sent, err)
	}
	if got := receive(t, conn); got != systemd.Ready {
		t.Errorf("received %q, want %q", got, systemd.Ready)
	}
}

// TestNotifyWithoutSystemd: without NOTIFY_SOCKET nothing is sent and
// nothing fails; a socket that is gone is an error.
func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := systemd.Notify(systemd.Ready); sent || err != nil {
		t.Errorf("without NOTIFY_SOCKET: Notify = %v, %v; want false, nil", sent, err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	if _, err := systemd.Notify(systemd.Ready); err == nil {
		t.Error("Notify to a socket that does not exist reported no error")
	}
	t.Setenv("NOTIFY_SOCKET", "relative")
	if _, err := systemd.Notify(systemd.Ready); err == nil {
		t.Error("Notify to a relative name reported no error")
	}
}

// TestReloadingCarriesMonotonicTime: RELOADING=1 comes with the moment in
// CLOCK_MONOTONIC microseconds, which grows.
func TestReloadingCarriesMonotonicTime(t *testing.T) {
	usec := func(s string) int64 {
		rest, ok := strings.CutPrefix(s, "RELOADING=1\nMONOTONIC_USEC=")
		if !ok {
			t.Fatalf("Reloading() = %q", s)
		}
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("Reloading() = %q: %v", s, err)
		}
		return n
	}
	first := usec(systemd.Reloading())
	time.Sleep(2 * time.Millisecond)
	if second := usec(systemd.Reloading()); second-first < 2000 {
		t.Errorf("MONOTONIC_USEC went from %d to %d over 2 ms", first, second)
	}
}

// TestIsJournal: a stream is the journal only when JOURNAL_STREAM names
// its own device and inode.
func TestIsJournal(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	other, err := os.Create(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if !systemd.IsJournal(f) {
		t.Error("the stream JOURNAL_STREAM names is not recognised")
	}
	if systemd.IsJournal(other) {
		t.Error("another file on the same device is taken for the journal")
	}
	for _, v := range []string{"", "garbage", fmt.Sprintf("%d:x", st.Dev), fmt.Sprintf("%d:%d", st.Dev+1, st.Ino)} {
		t.Setenv("JOURNAL_STREAM", v)
		if systemd.IsJournal(f) {
			t.Errorf("JOURNAL_STREAM=%q is taken for this stream", v)
		}
	}
}
