package conf

import (
	"strings"
	"testing"
)

func TestClusterTable(t *testing.T) {
	for _, tc := range []struct {
		toml, wantErr string
	}{
		{"", ""},
		{"[cluster]\nname = \"hall\"\nembedded = true\n", ""},
		{"[cluster]\nname = \"hall\"\nnats_urls = [\"nats://10.0.0.1:4222\"]\nnode = \"a-1\"\n", ""},
		{"[cluster]\nembedded = true\n", "cluster.name: a [cluster] needs a name"},
		{"[cluster]\nname = \"a.b\"\nembedded = true\n", "cluster.name: \"a.b\""},
		{"[cluster]\nname = \"hall\"\nembedded = true\nnode = \"x y\"\n", "cluster.node: \"x y\""},
		{"[cluster]\nname = \"hall\"\nembedded = true\nembedded_routes = [\"nats://h:6222\"]\n", "routes need embedded_cluster_listen"},
		{"[cluster]\nname = \"hall\"\nembedded = true\nembedded_listen = \"nowhere\"\n", "cluster.embedded_listen: want host:port"},
		{"[cluster]\nname = \"hall\"\nembedded = true\nfailover_wait = \"30m\"\n", ""},
		{"[cluster]\nname = \"hall\"\nembedded = true\nfailover_wait = \"-1m\"\n", "cluster.failover_wait: -1m0s: want a positive duration"},
		{"[cluster]\nnam = \"hall\"\n", "unknown key"},
	} {
		c, err := Parse([]byte(tc.toml), "test.toml")
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.toml, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want one containing %q", tc.toml, err, tc.wantErr)
		case tc.wantErr == "" && tc.toml != "" && !c.Cluster.Enabled():
			t.Errorf("%q: cluster not enabled", tc.toml)
		}
	}
	if c := Default(); c.Cluster.Enabled() {
		t.Error("the default configuration is a cluster node")
	}
}
