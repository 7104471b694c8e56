package main

// Helpers for tests that run the plenum binary as a child process.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// plenumBinary builds cmd/plenum once per test run and returns its path.
func plenumBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	built.once.Do(func() {
		goCmd, err := exec.LookPath("go")
		if err != nil {
			built.err = fmt.Errorf("no go command to build the server with: %w", err)
			return
		}
		if built.dir, err = os.MkdirTemp("", "plenum-bin-"); err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(built.dir, "plenum")
		out, err := exec.Command(goCmd, "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// child is a running plenum process.
type child struct {
	cmd  *exec.Cmd
	addr string // where it listens, from its log

	mu     sync.Mutex
	lines  []string // its log, for failure messages
	hashes []string // sha256 of every configuration version it announced (-debug)
	logged chan struct{}
}

var (
	listeningRE = regexp.MustCompile(`msg="plenum listening" addr=(\S+)`)
	writingRE   = regexp.MustCompile(`msg="writing the configuration" .*sha256=([0-9a-f]{64})`)
)

// startChild runs the binary with args and waits until it listens.
func startChild(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	// A free admin port and no web listener, so that children never
	// collide with each other or with a server already running on this
	// machine.
	args = append(args, "-admin-listen", "127.0.0.1:0", "-web-listen", "off")
	c := &child{cmd: exec.Command(bin, args...), logged: make(chan struct{})}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go c.readLog(stderr, listening)
	select {
	case c.addr = <-listening:
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		c.cmd.Wait()
		t.Fatalf("server did not start:\n%s", c.log())
	}
	return c
}

func (c *child) readLog(r io.Reader, listening chan<- string) {
	defer close(c.logged)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		c.lines = append(c.lines, line)
		if m := writingRE.FindStringSubmatch(line); m != nil {
			c.hashes = append(c.hashes, m[1])
		}
		c.mu.Unlock()
		if m := listeningRE.FindStringSubmatch(line); m != nil {
			listening <- m[1]
		}
	}
}

// wait waits for the process to end and for its log to be read.
func (c *child) wait() error {
	<-c.logged
	return c.cmd.Wait()
}

func (c *child) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

func (c *child) announced() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.hashes...)
}
