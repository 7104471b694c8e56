package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/proto/mumblepb"
)

// TestLossWindow: the loss is over the last minute of marks (or since the
// user connected), in each direction on its own, only with enough
// packets to tell; counts that went back start again from 0, and a late
// packet that fills a gap is not lost.
func TestLossWindow(t *testing.T) {
	var w lossWindow
	mark := func(inGood, inLost, outGood, outLost uint32) {
		w.mark(packetCounts{good: inGood, lost: inLost}, packetCounts{good: outGood, lost: outLost})
	}
	type fig struct {
		v  float64
		ok bool
	}
	check := func(what string, in, out fig) {
		t.Helper()
		if w.inOK != in.ok || w.outOK != out.ok || in.ok && w.in != in.v || out.ok && w.out != out.v {
			t.Errorf("%s: in %v (%v), out %v (%v); want %v and %v", what, w.in, w.inOK, w.out, w.outOK, in, out)
		}
	}
	mark(0, 0, 0, 0)
	check("nothing yet", fig{}, fig{})
	mark(30, 0, 970, 30)
	check("30 packets in, 1000 out with 30 lost, since connecting", fig{}, fig{3, true})
	for i := range lossMarks - 2 {
		mark(uint32(60+i), 0, 970, 30)
	}
	check("a quiet minute after", fig{0, true}, fig{3, true})
	mark(200, 0, 970, 30)
	check("a minute after the loss, still in the window", fig{0, true}, fig{3, true})
	mark(380, 50, 970, 30)
	check("the window has moved past the loss; 50 of 400 lost from the client", fig{12.5, true}, fig{})
	mark(10, 0, 2500, 29)
	check("a new crypt state counts from 0, and a gap filled late is not a loss", fig{}, fig{0, true})
}

// TestReportedPing: a client's ping average is a figure only when it
// has measured one.
func TestReportedPing(t *testing.T) {
	f := func(v float32) *float32 { return &v }
	u := func(v uint32) *uint32 { return &v }
	for _, tc := range []struct {
		ping *mumblepb.Ping
		want float64 // 0: none
	}{
		{&mumblepb.Ping{}, 0},
		{&mumblepb.Ping{TcpPingAvg: f(0), TcpPackets: u(0)}, 0},    // Mumble before its first measurement
		{&mumblepb.Ping{TcpPingAvg: f(12.5), TcpPackets: u(0)}, 0}, // an average of no measurement
		{&mumblepb.Ping{TcpPingAvg: f(12.5), TcpPackets: u(3)}, 12.5},
		{&mumblepb.Ping{TcpPingAvg: f(0.25)}, 0.25}, // a LAN, from a client that sends no count
	} {
		got := reportedPing(tc.ping.TcpPingAvg, tc.ping.TcpPackets)
		if tc.want == 0 && got != nil || tc.want != 0 && (got == nil || *got != tc.want) {
			t.Errorf("%v: %v, want %v", tc.ping, got, tc.want)
		}
	}
}

// TestStatusSaysVersionAndUptime: the operator's status names the version
// the server announces and when it started, as Murmur's getVersion and
// getUptime do.
func TestStatusSaysVersionAndUptime(t *testing.T) {
	before := time.Now()
	s := newBareServer(t)
	st := s.Status()
	if st.Version != VersionString() || st.Version == "" {
		t.Errorf("status version %q, want %q", st.Version, VersionString())
	}
	if st.Started.Before(before) || st.Started.After(st.Time) {
		t.Errorf("status says the server started at %v; it was made after %v, and the status is of %v", st.Started, before, st.Time)
	}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"version":`, `"started":`} {
		if !strings.Contains(string(data), field) {
			t.Errorf("/api/status's JSON lacks %s", field)
		}
	}
}
