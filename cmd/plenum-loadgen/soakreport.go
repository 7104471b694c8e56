package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// SoakReport is the result of one soak. Counts are over the whole run;
// the series only over the time after the warm-up. -1 means not measured.
type SoakReport struct {
	Addr          string        `json:"addr"`
	ServerVersion string        `json:"server_version"`
	VoiceFormat   string        `json:"voice_format"`
	Clients       int           `json:"clients"`
	Speakers      int           `json:"speakers"`
	Planned       time.Duration `json:"planned_ns"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	Warmup        time.Duration `json:"warmup_ns"`
	SyncSec       float64       `json:"sync_s"`
	Interrupted   bool          `json:"interrupted,omitempty"`
	Aborted       string        `json:"aborted,omitempty"`
	HavePID       bool          `json:"have_pid"`
	HaveMetrics   bool          `json:"have_metrics"`
	HaveAdmin     bool          `json:"have_admin"`

	Joins          uint64            `json:"joins"` // initial logins
	Rejoins        map[string]uint64 `json:"rejoins"`
	Leaves         uint64            `json:"leaves"`
	Dials          uint64            `json:"dials"` // login attempts, retries included
	DialRetries    uint64            `json:"dial_retries"`
	SkippedActions uint64            `json:"skipped_actions"` // nobody idle to act
	Moves          uint64            `json:"moves"`
	ACLChannel     string            `json:"acl_channel"`
	ACLGroup       string            `json:"acl_group"`
	ACLEdits       uint64            `json:"acl_edits"`
	ACLConfirmed   uint64            `json:"acl_confirmed"`

	Sent          uint64  `json:"sent"`
	SendErrors    uint64  `json:"send_errors"`
	LateSends     uint64  `json:"late_sends"`
	Expected      uint64  `json:"expected"` // in listeners' hall windows
	Received      uint64  `json:"received"` // in those windows, each packet once
	LossPct       float64 `json:"loss_pct"`
	Outside       uint64  `json:"outside_windows"` // around transitions: neither expected nor counted
	Misrouted     uint64  `json:"misrouted"`       // reached a listener in a room
	Duplicates    uint64  `json:"duplicates"`      // or out of order
	Bad           uint64  `json:"bad"`             // failed the payload or sender check
	ReceivedAll   uint64  `json:"received_all"`    // every packet any listener got
	LatencyP50Ms  float64 `json:"latency_p50_ms"`
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
	LatencyMaxMs  float64 `json:"latency_max_ms"`
	GenMaxStallMs float64 `json:"gen_max_stall_ms"`  // longest gap in the speaker loop's 1 ms ticks
	PingP99Ms     float64 `json:"admin_ping_p99_ms"` // the admin's TCP pings, once a second
	PingMaxMs     float64 `json:"admin_ping_max_ms"`

	TextsSent        uint64  `json:"texts_sent"`
	TextsExpected    uint64  `json:"texts_expected"`
	TextsReceived    uint64  `json:"texts_received"`
	TextsOutside     uint64  `json:"texts_outside_windows"`
	TextsMisrouted   uint64  `json:"texts_misrouted"`
	TextLatencyP99Ms float64 `json:"text_latency_p99_ms"`
	TextLatencyMaxMs float64 `json:"text_latency_max_ms"`

	Errors     map[string]*ErrorKind `json:"errors"`
	Shortfalls []string              `json:"shortfalls,omitempty"` // the hall windows that missed most
	Incidents  []string              `json:"incidents,omitempty"`  // the first oddities, with timing
	LossRuns   []string              `json:"loss_runs,omitempty"`  // when voice went missing, worst first

	ServerCores Usage `json:"server_cores"` // CPU, between samples
	GenCores    Usage `json:"gen_cores"`
	OtherCores  Usage `json:"other_cores"` // every other process on the machine

	ServerRSSMB          Series `json:"server_rss_mb"`
	ServerThreads        Series `json:"server_threads"`
	ServerGoroutines     Series `json:"server_goroutines"`
	GenGoroutines        Series `json:"gen_goroutines"`
	GenRSSMB             Series `json:"gen_rss_mb"`
	IdleGoroutinesBefore int64  `json:"idle_goroutines_before"`
	IdleGoroutinesAfter  int64  `json:"idle_goroutines_after"`

	ServerAlive      bool               `json:"server_alive"`
	Connected        int                `json:"connected_at_end"` // clients up at the end, admin included
	ServerUsers      int64              `json:"server_users_at_end"`
	ServerVoiceIn    float64            `json:"server_voice_received"`  // counter deltas over the activities
	ServerVoiceOut   float64            `json:"server_voice_forwarded"` //
	ServerConnsTotal float64            `json:"server_connections"`     // since before the first login
	ServerLimited    float64            `json:"server_rate_limited"`    // control messages the server's message rate limit dropped
	ServerDropped    map[string]float64 `json:"server_voice_dropped"`   // by reason, over the activities
	ServerSockDrops  uint64             `json:"server_socket_drops"`    // kernel receive-buffer drops over the activities
	GenSockDrops     uint64             `json:"gen_socket_drops"`       // the same at the generator's sockets still open

	Checks []Check  `json:"checks"`
	Failed int      `json:"failed"`
	Notes  []string `json:"notes,omitempty"` // what may have distorted the run

	Samples []sample `json:"samples"`
}

// shedLabel is the server's drop reason for voice it sheds unread because
// it waited too long in the socket, before counting it as received.
const shedLabel = `reason="socket_backlog"`

// serverCounters takes the server's counter deltas: connections from
// before the first login (m0), voice from before the first packet (m1),
// both to the end (m2). Missing series are -1.
func (r *SoakReport) serverCounters(m0, m1, m2 metrics) {
	delta := func(from metrics, name string) float64 {
		a, ok1 := from.get(name)
		b, ok2 := m2.get(name)
		if !ok1 || !ok2 {
			return -1
		}
		return b - a
	}
	r.ServerVoiceIn = delta(m1, metVoiceIn)
	r.ServerVoiceOut = delta(m1, metVoiceOut)
	r.ServerConnsTotal = delta(m0, metConns)
	r.ServerLimited = delta(m0, metLimited)
	before := m1.labelled(metDropped)
	for labels, v := range m2.labelled(metDropped) {
		if d := v - before[labels]; d > 0 {
			if r.ServerDropped == nil {
				r.ServerDropped = map[string]float64{}
			}
			r.ServerDropped[labels] = d
		}
	}
}

// evaluate runs the checks; Failed counts those that failed.
func (r *SoakReport) evaluate(lim Limits) {
	r.LossPct = lossPct(r.Expected, r.Received)
	c := []Check{r.checkRun(), r.checkErrors()}
	c = append(c, r.checkVoice(lim)...)
	c = append(c, r.checkText(), r.checkACL(),
		trendCheck("server RSS trend", "MB", r.ServerRSSMB, lim.MaxRSSSlopeMB),
		trendCheck("server goroutine trend", "goroutines", r.ServerGoroutines, lim.MaxGoroutineSlope),
		r.checkIdle(lim))
	c = append(c, r.checkCounters(lim)...)
	r.Checks, r.Failed = c, 0
	for _, ch := range c {
		if !ch.OK && !ch.Skipped {
			r.Failed++
		}
	}
	r.Notes = r.notes()
}

// Thresholds of the notes: another process busy for half a core, or the
// generator stalled for a tenth of a second, is enough to delay voice by
// more than the server's shedding threshold.
const (
	noteOtherCores = 0.5
	noteStallMs    = 100
)

// notes says what besides the server may have caused failures: a busy
// machine or a stalled generator. They do not fail the soak (the checks
// do), but a failure beside them is no evidence against the server.
func (r *SoakReport) notes() []string {
	var n []string
	if r.OtherCores.Mean >= 0 && r.OtherCores.Max > noteOtherCores {
		n = append(n, fmt.Sprintf("other processes used up to %.2f cores (mean %.2f) of this machine during the soak: "+
			"latency spikes and voice the server shed as stale may be theirs; rerun on a quiet machine", r.OtherCores.Max, r.OtherCores.Mean))
	}
	if r.GenMaxStallMs > noteStallMs {
		n = append(n, fmt.Sprintf("the generator stalled for up to %.0f ms (%d packets sent late): it, not only the server, "+
			"may have limited this run", r.GenMaxStallMs, r.LateSends))
	}
	return n
}

func (r *SoakReport) checkRun() Check {
	switch {
	case r.Aborted != "":
		return fail("run", "aborted: %s", r.Aborted)
	case r.Interrupted:
		return fail("run", "interrupted after %v", r.Elapsed.Round(time.Second))
	case r.HavePID && !r.ServerAlive:
		return fail("run", "the server process is gone")
	}
	admin := 0
	if r.HaveAdmin {
		admin = 1
	}
	return pass("run", "completed; %d of %d clients (admin included) connected at the end", r.Connected, r.Clients+admin)
}

func (r *SoakReport) checkErrors() Check {
	n := r.errorCount()
	return checkIf(n == 0, "errors", "%d errors of %d kinds", n, len(r.Errors))
}

func (r *SoakReport) errorCount() uint64 {
	var n uint64
	for _, e := range r.Errors {
		n += e.Count
	}
	return n
}

func (r *SoakReport) checkVoice(lim Limits) []Check {
	if r.Speakers == 0 {
		return []Check{skip("voice", "no speakers")}
	}
	loss := checkIf(r.Expected > 0 && r.Received <= r.Expected && r.LossPct <= lim.MaxLossPct, "voice loss",
		"received %d of %d expected (%.3f %%, limit %.3f %%)", r.Received, r.Expected, r.LossPct, lim.MaxLossPct)
	integrity := checkIf(r.Bad == 0 && r.Misrouted == 0 && r.SendErrors == 0, "voice integrity",
		"%d bad, %d heard in a room, %d send errors", r.Bad, r.Misrouted, r.SendErrors)
	return []Check{loss, integrity}
}

func (r *SoakReport) checkText() Check {
	if r.TextsSent == 0 {
		return skip("text", "no text sent")
	}
	// The server drops a user's text, as Murmur does, when that user's
	// messages (texts, moves, logins) exceed message_limit and
	// message_burst; a churning, moving, texting user sometimes does. Such
	// drops are counted by the server, and only they may explain a text
	// that did not arrive.
	missing := float64(r.TextsExpected) - float64(r.TextsReceived)
	limited := ""
	if r.ServerLimited > 0 {
		limited = fmt.Sprintf("; the server's message rate limit dropped %.0f messages", r.ServerLimited)
	}
	ok := r.TextsMisrouted == 0 && (missing == 0 || (missing > 0 && missing <= max(r.ServerLimited, 0)))
	return checkIf(ok, "text", "received %d of %d expected, %d in a room%s", r.TextsReceived, r.TextsExpected, r.TextsMisrouted, limited)
}

func (r *SoakReport) checkACL() Check {
	switch {
	case !r.HaveAdmin:
		return skip("ACL edits", "no admin (no -admin-password)")
	case r.ACLEdits == 0:
		return skip("ACL edits", "none was made")
	}
	return checkIf(r.ACLConfirmed == r.ACLEdits, "ACL edits", "%d of %d edits read back as made", r.ACLConfirmed, r.ACLEdits)
}

func (r *SoakReport) checkIdle(lim Limits) Check {
	if r.IdleGoroutinesBefore < 0 || r.IdleGoroutinesAfter < 0 {
		return skip("goroutines after everyone left", "no metrics")
	}
	return checkIf(r.IdleGoroutinesAfter <= r.IdleGoroutinesBefore+int64(lim.IdleGoroutines),
		"goroutines after everyone left", "%d, before anyone came %d (allowed +%d)",
		r.IdleGoroutinesAfter, r.IdleGoroutinesBefore, lim.IdleGoroutines)
}

// checkCounters reconciles the server's counters with the generator's.
func (r *SoakReport) checkCounters(lim Limits) []Check {
	if !r.HaveMetrics {
		return []Check{skip("server counters", "no -metrics endpoint")}
	}
	var c []Check
	if r.ServerUsers >= 0 {
		c = append(c, checkIf(r.ServerUsers == int64(r.Connected), "server users",
			"server reports %d users, generator has %d connected", r.ServerUsers, r.Connected))
	}
	tol := lim.MaxLossPct / 100
	if r.ServerVoiceIn >= 0 {
		// After the drain nothing is in flight: every packet sent was
		// received, shed unread as stale, or dropped by the kernel. (That
		// the server shed voice is the loss check's business; here the
		// books must balance.)
		shed := r.ServerDropped[shedLabel] + float64(r.ServerSockDrops)
		c = append(c, reconcile("server voice received", "generator sent", float64(r.Sent),
			fmt.Sprintf("server received %.0f + shed %.0f =", r.ServerVoiceIn, shed), r.ServerVoiceIn+shed, math.Ceil(float64(r.Sent)*tol)))
	}
	if r.ServerVoiceOut >= 0 {
		// A copy forwarded to a client that is just leaving may be lost.
		c = append(c, reconcile("server voice forwarded", "server forwarded", r.ServerVoiceOut,
			"generator received", float64(r.ReceivedAll), math.Ceil(r.ServerVoiceOut*tol)+5*float64(r.Leaves)))
	}
	if r.ServerConnsTotal >= 0 {
		c = append(c, reconcile("server connections", "generator connected", float64(r.Dials),
			"server accepted", r.ServerConnsTotal, 0))
	}
	if len(c) == 0 {
		c = append(c, skip("server counters", "the endpoint has none of the Plenum series"))
	}
	return c
}

// WriteText prints the report as aligned "key value" lines, then the
// checks.
func (r *SoakReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, f string, a ...any) { fmt.Fprintf(tw, "%s\t"+f+"\n", append([]any{k}, a...)...) }
	p("soak", "%d clients, %d speaking at a time, against %s (%s, voice format %s)",
		r.Clients, r.Speakers, r.Addr, r.ServerVersion, r.VoiceFormat)
	p("duration", "%v planned, %v run (warm-up %v excluded from trends); all synced after %.1f s",
		r.Planned, r.Elapsed.Round(time.Second), r.Warmup, r.SyncSec)
	p("joins / leaves", "%d initial + %d rejoins (%s) / %d leaves", r.Joins, sum(r.Rejoins), kinds(r.Rejoins), r.Leaves)
	p("logins", "%d attempts, %d retries; %d actions skipped (nobody idle)", r.Dials, r.DialRetries, r.SkippedActions)
	p("voice packets", "sent %d (errors %d, late %d); expected %d, received %d, loss %.3f %%",
		r.Sent, r.SendErrors, r.LateSends, r.Expected, r.Received, r.LossPct)
	p("voice, other", "%d around transitions (not accounted), %d heard in a room, %d duplicate or out of order, %d bad",
		r.Outside, r.Misrouted, r.Duplicates, r.Bad)
	p("added latency", "p50 %.2f ms  p99 %.2f ms  max %.2f ms (generator's longest stall %.0f ms)",
		r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs, r.GenMaxStallMs)
	p("text messages", "sent %d; expected %d, received %d; %d around transitions, %d in a room",
		r.TextsSent, r.TextsExpected, r.TextsReceived, r.TextsOutside, r.TextsMisrouted)
	p("text latency", "p99 %.1f ms  max %.1f ms; admin's TCP ping p99 %.1f ms  max %.1f ms",
		r.TextLatencyP99Ms, r.TextLatencyMaxMs, r.PingP99Ms, r.PingMaxMs)
	p("moves", "%d", r.Moves)
	p("ACL edits", "%d, %d confirmed (deny Speak for %q in %q, on and off)", r.ACLEdits, r.ACLConfirmed, r.ACLGroup, r.ACLChannel)
	p("errors", "%d", r.errorCount())
	p("server RSS MB", "%s", series(r.ServerRSSMB, "%.1f"))
	p("server threads", "%s", series(r.ServerThreads, "%.0f"))
	p("server goroutines", "%s; idle %s before, %s after", series(r.ServerGoroutines, "%.0f"),
		opt(r.IdleGoroutinesBefore), opt(r.IdleGoroutinesAfter))
	p("server at the end", "%s users (generator: %d connected); voice received %s, forwarded %s; connections %s",
		opt(r.ServerUsers), r.Connected, optf(r.ServerVoiceIn), optf(r.ServerVoiceOut), optf(r.ServerConnsTotal))
	p("kernel UDP drops", "server socket %d, generator sockets %d (those open at the end)", r.ServerSockDrops, r.GenSockDrops)
	if len(r.ServerDropped) > 0 {
		p("server dropped voice", "%s", labelledCounts(r.ServerDropped))
	}
	p("generator", "goroutines %s; RSS MB %s", series(r.GenGoroutines, "%.0f"), series(r.GenRSSMB, "%.1f"))
	p("CPU, in cores", "server %s, generator %s, other processes %s (mean / max between samples)",
		usage(r.ServerCores), usage(r.GenCores), usage(r.OtherCores))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range errorLines(r.Errors) {
		fmt.Fprintln(w, "  "+line)
	}
	if len(r.Incidents) > 0 {
		fmt.Fprintln(w, "\nfirst incidents:")
		for _, line := range r.Incidents {
			fmt.Fprintln(w, "  "+line)
		}
	}
	if len(r.LossRuns) > 0 {
		fmt.Fprintln(w, "\nwhen voice went missing (worst first):")
		for _, line := range r.LossRuns {
			fmt.Fprintln(w, "  "+line)
		}
	}
	if len(r.Shortfalls) > 0 {
		fmt.Fprintln(w, "\nhall windows that missed something (worst first):")
		for _, line := range r.Shortfalls {
			fmt.Fprintln(w, "  "+line)
		}
	}
	fmt.Fprintln(w, "\nchecks:")
	for _, c := range r.Checks {
		mark := "PASS"
		switch {
		case c.Skipped:
			mark = "skip"
		case !c.OK:
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", mark, c.Name, c.Detail)
	}
	verdict := "PASS"
	if r.Failed > 0 {
		verdict = fmt.Sprintf("FAIL (%d checks failed)", r.Failed)
	}
	_, err := fmt.Fprintf(w, "result: %s\n", verdict)
	for _, note := range r.Notes {
		fmt.Fprintln(w, "NOTE: "+note)
	}
	return err
}

// WriteJSON writes the report, samples included, to file.
func (r *SoakReport) WriteJSON(file string) error {
	for _, s := range []*Series{&r.ServerRSSMB, &r.ServerThreads, &r.ServerGoroutines, &r.GenGoroutines, &r.GenRSSMB} {
		s.SlopePer10m = finite(s.SlopePer10m)
	}
	r.LossPct = finite(r.LossPct)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}

func series(s Series, f string) string {
	if s.Samples == 0 {
		return "n/a"
	}
	return fmt.Sprintf("start "+f+"  min "+f+"  max "+f+"  end "+f+"  trend %+.2f per 10 min (%d samples)",
		s.Start, s.Min, s.Max, s.End, s.SlopePer10m, s.Samples)
}

func usage(u Usage) string {
	if u.Mean < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f / %.2f", u.Mean, u.Max)
}

// labelledCounts lists labelled counts as "reason=a 3, reason=b 1".
func labelledCounts(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.0f", strings.ReplaceAll(k, `"`, ""), m[k])
	}
	return b.String()
}

func opt(v int64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprint(v)
}

func optf(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", v)
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// kinds lists a count map as "a 3, b 1", sorted by name.
func kinds(m map[string]uint64) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return b.String()
}

// errorLines lists the errors by kind, with the first message of each.
func errorLines(m map[string]*ErrorKind) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	lines := make([]string, 0, len(m))
	for _, k := range names {
		lines = append(lines, fmt.Sprintf("%s: %d (first: %s)", k, m[k].Count, m[k].First))
	}
	return lines
}
