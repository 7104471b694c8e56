// Package murmurtest runs Murmur, the reference Mumble server, on a free
// loopback port for tests that check Plenum's pieces against it (the
// client, the Murmur importer). Each server gets its own ini, database and
// directory and is stopped when the test ends.
package murmurtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/internal/freeport"
)

// Path is where Debian's mumble-server package installs murmurd.
const Path = "/usr/sbin/murmurd"

// Config describes a Murmur to start. The zero value runs Debian's murmurd
// in a temporary directory.
type Config struct {
	// Command runs Murmur; "-fg -ini FILE" is appended. A prefix such as
	// "chroot DIR /usr/bin/mumble-server" runs another Murmur. Default: Path.
	Command []string
	// Dir holds the ini, pid file and (by default) the database.
	Dir string
	// Database is the SQLite file; default Dir/murmur.sqlite.
	Database string
	// Ini adds lines to the ini file (they win over the defaults).
	Ini []string
	// SuperUserPassword, if set, is set with -supw before Murmur starts.
	SuperUserPassword string
}

// Murmur is a running Murmur.
type Murmur struct {
	Addr     string // host:port, TCP and UDP
	IniPath  string
	Database string
	stop     func()
}

// Stop ends Murmur (SIGTERM, then SIGKILL after 5 s) and waits for it;
// afterwards its database may be read. Calling it again does nothing; the
// test's cleanup calls it too.
func (m *Murmur) Stop() { m.stop() }

// Start runs Murmur and returns once it accepts TLS. The test is skipped
// when the command is not installed.
func Start(t testing.TB, c Config) *Murmur {
	t.Helper()
	if len(c.Command) == 0 {
		c.Command = []string{Path}
	}
	if _, err := exec.LookPath(c.Command[0]); err != nil {
		t.Skipf("%s not available (%v): apt-get install mumble-server", c.Command[0], err)
	}
	if c.Dir == "" {
		c.Dir = t.TempDir()
	}
	if c.Database == "" {
		c.Database = filepath.Join(c.Dir, "murmur.sqlite")
	}
	port := freeport.Both(t)
	lines := []string{
		"host=127.0.0.1",
		fmt.Sprintf("port=%d", port),
		"database=" + c.Database,
		"logfile=", // with -fg Murmur logs to stdout, which is kept for failures
		"pidfile=" + filepath.Join(c.Dir, "murmur.pid"),
		"welcometext=",
		"users=100",
		"bandwidth=558000",
		"autobanAttempts=0",
		"allowping=true",
		"bonjour=false",
		"registerName=",
	}
	if os.Geteuid() == 0 {
		// As root, Debian's murmurd otherwise switches to the mumble-server
		// user, which cannot open a database in the test's directory.
		lines = append(lines, "uname=root")
	}
	lines = append(lines, c.Ini...)
	m := &Murmur{Addr: fmt.Sprintf("127.0.0.1:%d", port), IniPath: filepath.Join(c.Dir, "murmur.ini"), Database: c.Database}
	if err := os.WriteFile(m.IniPath, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c.SuperUserPassword != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		args := append(append([]string(nil), c.Command[1:]...), "-ini", m.IniPath, "-supw", c.SuperUserPassword)
		if out, err := exec.CommandContext(ctx, c.Command[0], args...).CombinedOutput(); err != nil {
			t.Fatalf("murmurd -supw: %v\n%s", err, out)
		}
	}

	args := append(append([]string(nil), c.Command[1:]...), "-fg", "-ini", m.IniPath)
	cmd := exec.Command(c.Command[0], args...)
	cmd.Dir = c.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig: syscall.SIGKILL, // never outlive a killed test binary
		Setpgid:   true,            // so stopping it also stops what a wrapper command started
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stopped := false
	m.stop = func() {
		if stopped {
			return
		}
		stopped = true
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // first, so a wrapper can clean up
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	t.Cleanup(func() {
		m.stop()
		if t.Failed() {
			t.Logf("murmurd output:\n%s", out.Bytes())
		}
	})

	deadline := time.Now().Add(20 * time.Second) // murmurd generates an RSA certificate first
	for {
		d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := d.DialContext(ctx, "tcp", m.Addr)
		cancel()
		if err == nil {
			conn.Close()
			return m
		}
		select {
		case <-exited:
			t.Fatalf("murmurd exited: %v\n%s", cmd.ProcessState, out.Bytes())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("murmurd does not accept TLS on %s: %v", m.Addr, err)
		}
	}
}
