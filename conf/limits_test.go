package conf

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLimitsKeys(t *testing.T) {
	c, err := Parse([]byte(`[server]
handshake_timeout = "3s"
max_unauthenticated_per_ip = 0
autoban_attempts = 20
autoban_window = 30
autoban_duration = "1h"
autoban_exempt = ["192.0.2.7", "198.51.100.0/24", "2001:db8::/48"]
`), "l.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if s.HandshakeTimeout.Duration != 3*time.Second || s.MaxUnauthenticatedPerIP != 0 || s.AutobanAttempts != 20 ||
		s.AutobanWindow.Duration != 30*time.Second || s.AutobanDuration.Duration != time.Hour || len(s.AutobanExempt) != 3 {
		t.Fatalf("parsed %+v", s)
	}
	d := DefaultServer()
	if d.HandshakeTimeout.Duration != 10*time.Second || d.MaxUnauthenticatedPerIP != 500 || d.AutobanAttempts != 100 {
		t.Fatalf("defaults %+v", d)
	}
}

func TestLimitsValidation(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []wantErr
	}{
		{"handshake_timeout zero", "[server]\nhandshake_timeout = \"0s\"\n", []wantErr{{2, "server.handshake_timeout", "must be positive"}}},
		{"cap negative", "[server]\nmax_unauthenticated_per_ip = -1\n", []wantErr{{2, "server.max_unauthenticated_per_ip", "must not be negative"}}},
		{"attempts negative", "[server]\nautoban_attempts = -1\n", []wantErr{{2, "server.autoban_attempts", "must not be negative"}}},
		{"window zero while on", "[server]\nautoban_window = \"0s\"\nautoban_duration = \"-1s\"\n", []wantErr{
			{2, "server.autoban_window", "must be positive"},
			{3, "server.autoban_duration", "must be positive"},
		}},
		{"bad exempt entry", "[server]\n\nautoban_exempt = [\"10.0.0.0/8\", \"venue\"]\n", []wantErr{{3, "server.autoban_exempt", `entry 2: "venue" is not an address`}}},
		{"exempt not a list", "[server]\nautoban_exempt = \"10.0.0.1\"\n", []wantErr{{2, "server.autoban_exempt", "want an array"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml), "v.toml")
			if c != nil {
				t.Errorf("Parse returned a config despite errors")
			}
			checkErrs(t, err, "v.toml", tt.want)
		})
	}
	// Autoban off: window and duration are not looked at.
	if _, err := Parse([]byte("[server]\nautoban_attempts = 0\nautoban_window = \"0s\"\n"), "off.toml"); err != nil {
		t.Errorf("autoban off with a zero window: %v", err)
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":           "192.0.2.7/32",
		" 192.0.2.7/24 ":      "192.0.2.0/24",
		"::ffff:192.0.2.7":    "192.0.2.7/32",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
		"2001:db8::1":         "2001:db8::1/128",
		"2001:db8::1/48":      "2001:db8::/48",
		"fe80::1%eth0":        "fe80::1/128",
	} {
		got, err := ParsePrefix(in)
		if err != nil || got != netip.MustParsePrefix(want) {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "venue", "10.0.0.0/33", "10.0.0/8"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) succeeded", bad)
		}
	}
}

func TestAdminHost(t *testing.T) {
	for in, want := range map[string]string{
		"plenum.example.org":  "plenum.example.org",
		"Plenum.Example.ORG.": "plenum.example.org",
		"localhost":           "localhost",
		"my_box":              "my_box",
		"192.0.2.7":           "192.0.2.7",
		"::ffff:127.0.0.1":    "127.0.0.1",
		"[2001:DB8::7]":       "2001:db8::7",
		"2001:db8::7":         "2001:db8::7",
	} {
		if got, err := AdminHost(in); err != nil || got != want {
			t.Errorf("AdminHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".", "a..b", "-a.example", "host:80", "[::1]:80", "[host]", "[192.0.2.7]", "fe80::1%eth0",
		"a b", "http://x", "evil.example/x", strings.Repeat("a", 64) + ".example"} {
		if got, err := AdminHost(bad); err == nil {
			t.Errorf("AdminHost(%q) = %q, want an error", bad, got)
		}
	}
}
