package admin

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeServer stands in for the voice server: it shows one hall with alice
// in it, or the channels a test gives it, and records the floor actions
// it is asked for.
type fakeServer struct {
	mu       sync.Mutex
	actions  []string        // "path action arg"
	channels []ChannelStatus // nil for the hall with alice
	history  *History
}

// fakeStarted is when the fake server with given channels started.
var fakeStarted = time.Date(2026, 12, 6, 7, 42, 0, 0, time.Local)

func (f *fakeServer) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.channels != nil {
		return Status{Time: time.Now(), Version: "1.5.735", Started: fakeStarted, Channels: f.channels}
	}
	return Status{Time: time.Now(), Channels: []ChannelStatus{{
		ID: 1, Path: "Hall", Floor: &FloorStatus{Queue: []string{}},
		Users: []UserStatus{{Session: 1, Name: "alice", Transport: "udp"}},
	}}}
}

func (f *fakeServer) History() *History {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.history == nil {
		f.history = NewHistory()
	}
	return f.history
}

// show makes the fake show channels.
func (f *fakeServer) show(channels []ChannelStatus) {
	f.mu.Lock()
	f.channels = channels
	f.mu.Unlock()
}

func (f *fakeServer) FloorAction(path, action, arg string) (string, error) {
	if path != "Hall" {
		return "", errors.New("no floor-controlled hall")
	}
	f.mu.Lock()
	f.actions = append(f.actions, path+" "+action+" "+arg)
	f.mu.Unlock()
	return "done: " + action, nil
}

func (f *fakeServer) done() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.actions...)
}

// newListener makes a listener for a fake server with admin_listen on
// loopback and the admin token token, logging into log.
func newListener(t *testing.T, token string, log *bytes.Buffer) (*Listener, *fakeServer) {
	t.Helper()
	sc := conf.Default().Server
	sc.AdminListen, sc.AdminToken, sc.DataDir = "127.0.0.1:0", token, t.TempDir()
	users := prometheus.NewGauge(prometheus.GaugeOpts{Name: "plenum_users", Help: "Authenticated users connected."})
	fake := &fakeServer{}
	l, err := New(Config{Server: fake, Settings: func() *conf.Server { return &sc }, Metrics: users,
		Log: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return l, fake
}

// TestMetricsFromElsewhereNeedTheToken: /metrics answers a peer on
// loopback (IPv4, IPv6 or IPv4-mapped) without a token, and a peer on
// another machine only with the token.
func TestMetricsFromElsewhereNeedTheToken(t *testing.T) {
	var log bytes.Buffer
	l, _ := newListener(t, "s3cret", &log)
	h := l.handler
	for _, tc := range []struct {
		peer, token string
		want        int
	}{
		{"127.0.0.1:40000", "", http.StatusOK},
		{"127.9.9.9:40000", "", http.StatusOK},
		{"[::1]:40000", "", http.StatusOK},
		{"[::ffff:127.0.0.1]:40000", "", http.StatusOK},
		{"192.0.2.1:40000", "", http.StatusUnauthorized},
		{"[2001:db8::1]:40000", "", http.StatusUnauthorized},
		{"[::ffff:192.0.2.1]:40000", "", http.StatusUnauthorized},
		{"192.0.2.1:40000", "wrong", http.StatusUnauthorized},
		{"192.0.2.1:40000", "s3cret", http.StatusOK},
	} {
		req := httptest.NewRequest("GET", "http://127.0.0.1:64740/metrics", nil)
		req.RemoteAddr = tc.peer
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("/metrics from %s with token %q: HTTP %d, want %d", tc.peer, tc.token, rec.Code, tc.want)
		}
		if rec.Code == http.StatusOK && !strings.Contains(rec.Body.String(), "plenum_users 0") {
			t.Errorf("/metrics from %s: no metrics", tc.peer)
		}
	}
}
