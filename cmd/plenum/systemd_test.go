package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestRunsAsSystemdNotifyService runs the server the way plenum.service
// does (Type=notify, standard error to the journal): it reports READY=1
// once it listens, RELOADING=1 and READY=1 around a SIGHUP reload and
// STOPPING=1 on SIGTERM, and its log leaves the time to the journal.
func TestRunsAsSystemdNotifyService(t *testing.T) {
	bin := plenumBinary(t)
	dir := t.TempDir()
	notifySocket := filepath.Join(dir, "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifySocket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	states := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				close(states)
				return
			}
			states <- string(buf[:n])
		}
	}()

	// The journal is a pipe whose device and inode JOURNAL_STREAM names.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := w.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	cmd := exec.Command(bin, "-data", filepath.Join(dir, "data"), "-listen", "127.0.0.1:0", "-admin-listen", "off", "-web-listen", "off")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifySocket, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var (
		mu    sync.Mutex
		lines []string
	)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	log := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(lines, "\n")
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case s := <-states:
			return s
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s from the server within 20 s; its log:\n%s", what, log())
			return ""
		}
	}

	ready := next("READY=1")
	if !strings.HasPrefix(ready, "READY=1\nSTATUS=listening on 127.0.0.1:") {
		t.Fatalf("first notification %q, want READY=1 with the listening address", ready)
	}
	// The server writes its "listening" line before it sends READY=1, but
	// our reader of the pipe may not have taken it yet: give it a moment.
	if !eventually(5*time.Second, func() bool { return strings.Contains(log(), `msg="plenum listening"`) }) {
		t.Errorf("READY=1 came, but the server never logged that it listens:\n%s", log())
	}
	// Ready means ready: the port READY=1 names takes a connection now.
	addr := strings.TrimPrefix(ready, "READY=1\nSTATUS=listening on ")
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
		t.Errorf("READY=1 names %s, which takes no connection: %v", addr, err)
	} else {
		c.Close()
	}

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if s := next("RELOADING=1"); !strings.HasPrefix(s, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("after SIGHUP the server reported %q, want RELOADING=1 with MONOTONIC_USEC", s)
	}
	if s := next("READY=1 after the reload"); s != "READY=1" {
		t.Errorf("after the reload the server reported %q, want READY=1", s)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if s := next("STOPPING=1"); s != "STOPPING=1" {
		t.Errorf("after SIGTERM the server reported %q, want STOPPING=1", s)
	}
	<-logged
	if err := cmd.Wait(); err != nil {
		t.Fatalf("server exited with %v:\n%s", err, log())
	}
	out := log()
	if !strings.Contains(out, "plenum stopped") {
		t.Fatalf("the log is incomplete:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "time=") || strings.Contains(line, " time=") {
			t.Errorf("a line to the journal has a time of its own: %s", line)
		}
		if !strings.HasPrefix(line, "level=") {
			t.Errorf("a line to the journal does not start with its level: %s", line)
		}
	}
}

// TestLogsTimeOutsideTheJournal: with standard error elsewhere (a
// terminal, a file), each line keeps its time, even when JOURNAL_STREAM
// was inherited from a service.
func TestLogsTimeOutsideTheJournal(t *testing.T) {
	bin := plenumBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "-data", filepath.Join(dir, "data"), "-listen", "127.0.0.1:0", "-admin-listen", "off", "-web-listen", "off")
	cmd.Env = append(os.Environ(), "JOURNAL_STREAM=1:1", "NOTIFY_SOCKET=")
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatalf("the server logged nothing: %v", sc.Err())
	}
	if line := sc.Text(); !strings.HasPrefix(line, "time=") {
		t.Errorf("first line %q has no time", line)
	}
}

// eventually reports whether cond holds within d, checking every 10 ms.
func eventually(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}
