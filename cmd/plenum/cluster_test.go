package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/internal/freeport"
)

// TestClusterEmbeddedFlag runs two plenum processes as one cluster: the
// first with plenum -cluster-embedded (its own NATS server, JetStream in
// its data directory), the second connecting to it. A user of each sees
// the other.
func TestClusterEmbeddedFlag(t *testing.T) {
	bin := plenumBinary(t)
	dir := t.TempDir()
	port := freeport.TCP(t)
	write := func(name, cluster string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("[cluster]\n"+cluster), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := write("a.toml", fmt.Sprintf("name = \"hall\"\nnode = \"a\"\nembedded_listen = \"127.0.0.1:%d\"\n", port))
	second := write("b.toml", fmt.Sprintf("name = \"hall\"\nnode = \"b\"\nnats_urls = [\"nats://127.0.0.1:%d\"]\n", port))

	a := startChild(t, bin, "-config", first, "-data", filepath.Join(dir, "a"), "-listen", "127.0.0.1:0", "-cluster-embedded")
	defer func() { a.cmd.Process.Kill(); a.wait() }()
	b := startChild(t, bin, "-config", second, "-data", filepath.Join(dir, "b"), "-listen", "127.0.0.1:0")
	defer func() { b.cmd.Process.Kill(); b.wait() }()
	if _, err := os.Stat(filepath.Join(dir, "a", "nats", "jetstream")); err != nil {
		t.Errorf("no JetStream store in the first node's data directory: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ua, err := client.Dial(ctx, client.Config{Address: a.addr, Username: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	ub, err := client.Dial(ctx, client.Config{Address: b.addr, Username: "ben"})
	if err != nil {
		t.Fatal(err)
	}
	defer ub.Close()
	for _, c := range []*client.Client{ua, ub} {
		if err := c.Wait(ctx, func(c *client.Client) bool { return c.NumUsers() == 2 }); err != nil {
			t.Fatalf("the users of both processes not seen: %v\nfirst:\n%s\nsecond:\n%s", err, a.log(), b.log())
		}
	}
}

// TestClusterWithoutNATS: a [cluster] that names no NATS server and does
// not embed one is refused at start, with the reason.
func TestClusterWithoutNATS(t *testing.T) {
	bin := plenumBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(cfg, []byte("[cluster]\nname = \"hall\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-config", cfg, "-data", filepath.Join(dir, "d"), "-listen", "127.0.0.1:0", "-admin-listen", "off").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "a cluster needs NATS") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}
