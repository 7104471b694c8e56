package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/client"
	"github.com/plenum-voice/plenum/proto/mumblepb"
	"github.com/plenum-voice/plenum/server"
)

// scrape fetches /metrics from the admin listener and returns each sample
// line's value by its name and labels, e.g. `plenum_voice_dropped_total{reason="silenced"}`.
func (s *testServer) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", s.AdminAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	samples := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		samples[line[:i]] = v
	}
	return samples
}

func TestMetricsEndpoint(t *testing.T) {
	s := startServer(t, nil)
	a := s.join(t, "alice", nil)
	b := s.join(t, "bob", nil)
	a.waitUDP()
	b.waitUDP()
	wantReject(t, dialErr(s, func(c *client.Config) { c.Username = "tab\tname" }), mumblepb.Reject_InvalidUsername)

	const frames = 20
	for i := uint64(1); i <= frames; i++ {
		if err := a.SendAudio(0, i, opus, false, nil); err != nil {
			t.Fatal(err)
		}
		b.expectFrame(i)
	}
	a.SetSelfMute(true, false)
	b.waitFor("alice muted", func(c *client.Client) bool { return c.Users()[a.Session()].GetSelfMute() })
	s.sendSilenced(t, a, frames+1)

	m := s.scrape(t)
	// Values that must be exact.
	for name, want := range map[string]float64{
		"plenum_users":    2,
		"plenum_channels": float64(s.Stats().Channels),
		`plenum_auth_failures_total{reason="invalid_username"}`: 1,
		`plenum_voice_dropped_total{reason="silenced"}`:         1,
		`plenum_voice_packets_forwarded_total{transport="udp"}`: frames,
		`plenum_voice_packets_forwarded_total{transport="tcp"}`: 0,
		"plenum_voice_packets_received_total":                   frames,
		"plenum_voice_forward_delay_seconds_count":              frames,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	// Values that depend on pings and timing: lower bounds.
	for name, atLeast := range map[string]float64{
		"plenum_connections_total":                           3,
		`plenum_crypt_packets_total{result="good"}`:          frames + 1,
		`plenum_voice_bytes_sent_total{transport="udp"}`:     frames * float64(len(opus)),
		"plenum_voice_bytes_received_total":                  frames * float64(len(opus)),
		"go_goroutines":                                      1,
		"process_resident_memory_bytes":                      1 << 20,
		`plenum_voice_dropped_total{reason="bad_mac"}`:       0,
		`plenum_voice_dropped_total{reason="replayed"}`:      0,
		`plenum_voice_dropped_total{reason="send_failed"}`:   0,
		`plenum_connect_failures_total{reason="autobanned"}`: 0,
		"plenum_autobans_total":                              0,
		"plenum_unauthenticated_connections":                 0,
	} {
		if got, ok := m[name]; !ok || got < atLeast {
			t.Errorf("%s = %v (present %v), want at least %v", name, got, ok, atLeast)
		}
	}

	// Crypt statistics outlive the users they came from.
	good := m[`plenum_crypt_packets_total{result="good"}`]
	a.Close()
	b.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Users != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	m = s.scrape(t)
	if m["plenum_users"] != 0 || m[`plenum_crypt_packets_total{result="good"}`] < good {
		t.Errorf("after everyone left: users %v, good %v (was %v)", m["plenum_users"], m[`plenum_crypt_packets_total{result="good"}`], good)
	}
}

func TestAdminListenerIsOptional(t *testing.T) {
	s := startTestServer(t, testOpts{adminListen: server.NoAdmin})
	if s.AdminAddr().IsValid() {
		t.Fatalf("admin listener on %v although turned off", s.AdminAddr())
	}
}
