package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"text/tabwriter"
)

// Report is the result of one run. Durations are in the unit their name
// says; -1 means not measured (no -server-pid, say).
type Report struct {
	Scenario      string  `json:"scenario,omitempty"`
	Server        string  `json:"server,omitempty"` // label, e.g. "plenum" or "murmur"
	ServerVersion string  `json:"server_version,omitempty"`
	VoiceFormat   string  `json:"voice_format,omitempty"`
	Mode          string  `json:"mode"`
	Clients       int     `json:"clients"`
	Speakers      int     `json:"speakers"`
	Seconds       float64 `json:"seconds"` // speaking time

	Sent         uint64  `json:"sent"`
	SendErrors   uint64  `json:"send_errors"`
	Expected     uint64  `json:"expected"` // sent × listeners who should hear them
	Received     uint64  `json:"received"`
	ViaTCP       uint64  `json:"received_via_tcp"`
	Bad          uint64  `json:"bad"`                 // failed the payload check or came from the wrong sender
	OutOfOrder   uint64  `json:"out_of_order"`        // sequence not above the last one from that speaker
	Shaping      string  `json:"shaping,omitempty"`   // "loudest N" or "mix": what Expected assumes
	Mixed        uint64  `json:"mixed_received"`      // packets of the channel's mix (no send time: no latency)
	MixedGaps    uint64  `json:"mixed_gaps"`          // mixed frames missing between those received
	MixedMissing int     `json:"clients_without_mix"` // clients that received no mixed packet at all
	Cut          uint64  `json:"cut_terminators"`     // a loudest-N channel's ends of streams it cut off
	LossPct      float64 `json:"loss_pct"`
	DeliveredPS  float64 `json:"delivered_per_s"`

	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	LatencyMaxMs float64 `json:"latency_max_ms"`

	ServerCPUSec     float64 `json:"server_cpu_s"`           // during speaking and drain
	ServerCPUUsPkt   float64 `json:"server_cpu_us_per_pkt"`  // per forwarded packet
	ServerSysCPUSec  float64 `json:"server_sys_cpu_s"`       // the kernel's part of ServerCPUSec
	ServerUserUsPkt  float64 `json:"server_user_us_per_pkt"` // the server's own (user space) part of ServerCPUUsPkt
	ServerDelayP50Ms float64 `json:"server_delay_p50_ms"`    // time voice spent inside the server (from Plenum's metrics; -1 unknown)
	ServerDelayP99Ms float64 `json:"server_delay_p99_ms"`
	ServerPeakRSSKB  uint64  `json:"server_peak_rss_kb"`
	ServerRSSKB      uint64  `json:"server_rss_kb"` // at the end, clients still connected
	ServerSockDrops  uint64  `json:"server_socket_drops"`
	ClientSockDrops  uint64  `json:"client_socket_drops"` // kernel drops at the generator's sockets
	// Over the listeners' UDP: datagrams that arrived but did not
	// decrypt (replayed, too far behind), and nonce gaps never filled
	// (datagrams that did not arrive), from their crypt states.
	ClientDecryptFailures uint64  `json:"client_decrypt_failures"`
	ClientCryptLost       uint64  `json:"client_crypt_lost"`
	SyncSec               float64 `json:"sync_s"`                              // connect until all clients synced
	ResyncSec             float64 `json:"storm_resync_s,omitempty"`            // drop until all resynced
	ResyncLastSec         float64 `json:"storm_resync_after_last_s,omitempty"` // last rejoin began until all resynced
	RejoinRetries         uint64  `json:"storm_rejoin_retries,omitempty"`
	NotUDP                int     `json:"clients_without_udp"`
	PingP50Ms             float64 `json:"tcp_ping_p50_ms"`
	PingP99Ms             float64 `json:"tcp_ping_p99_ms"`
	PingSamples           uint64  `json:"tcp_ping_samples"`
	PingFailures          uint64  `json:"tcp_ping_failures"`
	GenCPUSec             float64 `json:"gen_cpu_s"`
	GenCPUPct             float64 `json:"gen_cpu_pct"` // of one core, during speaking and drain
	GenGOMAXPROCS         int     `json:"gen_gomaxprocs"`
	LateSends             uint64  `json:"late_sends"` // sent more than 5 ms after their slot
	GeneratorLimited      bool    `json:"generator_limited"`

	// -mode web. Received, Expected, Latency* are then the Mumble
	// listeners' (every speaker's packets, timed by their header).
	WebClients              int     `json:"web_clients,omitempty"`
	MumbleClients           int     `json:"mumble_clients,omitempty"`
	WebReceived             uint64  `json:"web_received,omitempty"` // mixed RTP packets the browsers got in the counted window
	WebExpected             uint64  `json:"web_expected,omitempty"` // one per 20 ms per browser
	WebLossPct              float64 `json:"web_loss_pct,omitempty"`
	WebLatencyP50Ms         float64 `json:"web_latency_p50_ms,omitempty"` // burst onsets, timed browsers
	WebLatencyP99Ms         float64 `json:"web_latency_p99_ms,omitempty"`
	WebLatencyMaxMs         float64 `json:"web_latency_max_ms,omitempty"`
	WebOnsets               uint64  `json:"web_onsets,omitempty"`
	OnsetOutliers           uint64  `json:"web_onset_outliers,omitempty"`          // onsets before any burst was sent
	MachineUDPDrops         uint64  `json:"machine_udp_rcvbuf_drops,omitempty"`    // every UDP socket on the machine, server's and generator's
	ServerCPUPct            float64 `json:"server_cpu_pct,omitempty"`              // of one core, speaking and drain
	ServerCPUPerListenerPct float64 `json:"server_cpu_pct_per_listener,omitempty"` // ServerCPUPct / users
}

// finish derives the computed fields.
func (r *Report) finish() {
	if r.Expected > 0 {
		r.LossPct = 100 * (1 - float64(r.Received)/float64(r.Expected))
	}
	if r.Seconds > 0 {
		r.DeliveredPS = float64(r.Received) / r.Seconds
	}
	// The kernel's drops at our own sockets were forwarded by the server.
	if fwd := r.Received + r.ClientSockDrops; fwd > 0 && r.ServerCPUSec >= 0 {
		r.ServerCPUUsPkt = r.ServerCPUSec * 1e6 / float64(fwd)
		r.ServerUserUsPkt = (r.ServerCPUSec - r.ServerSysCPUSec) * 1e6 / float64(fwd)
	}
	// A generator that used (nearly) all of its core, or sent late, or
	// whose sockets overflowed, may itself be what limited the run.
	r.GeneratorLimited = r.GenCPUPct >= 90*float64(r.GenGOMAXPROCS) || r.LateSends > r.Sent/100 ||
		(r.ClientSockDrops > 0 && r.Expected > 0 && float64(r.ClientSockDrops) > float64(r.Expected)/1000)
}

// WriteText prints the report as aligned "key value" lines.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, f string, a ...any) { fmt.Fprintf(tw, "%s\t"+f+"\n", append([]any{k}, a...)...) }
	if r.Server != "" || r.Scenario != "" {
		p("run", "%s %s", r.Server, r.Scenario)
	}
	p("server version", "%s (voice format %s)", r.ServerVersion, r.VoiceFormat)
	p("mode", "%s", r.Mode)
	p("clients", "%d", r.Clients)
	p("speakers", "%d", r.Speakers)
	p("seconds", "%.1f", r.Seconds)
	p("packets sent", "%d (errors %d, late %d)", r.Sent, r.SendErrors, r.LateSends)
	if r.Shaping != "" {
		p("expected", "%d (the channel shapes speech: %s)", r.Expected, r.Shaping)
	} else {
		p("expected", "%d", r.Expected)
	}
	switch {
	case r.Shaping == "mix":
		p("mixed", "%d packets of the mix, %d missing between them, %d clients without any; no latency (the server encodes the mix)", r.Mixed, r.MixedGaps, r.MixedMissing)
	case r.Shaping != "":
		p("cut off", "%d streams ended by the server's terminator", r.Cut)
	}
	p("received", "%d (via TCP %d, bad %d, out of order %d)", r.Received, r.ViaTCP, r.Bad, r.OutOfOrder)
	p("loss", "%.3f %%", r.LossPct)
	p("delivered", "%.0f packets/s", r.DeliveredPS)
	p("added latency", "p50 %.2f ms  p99 %.2f ms  max %.2f ms", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
	if r.ServerDelayP99Ms >= 0 {
		p("in the server", "p50 ≤ %.2f ms  p99 ≤ %.2f ms  (arrival to send queue, from the server's histogram)", r.ServerDelayP50Ms, r.ServerDelayP99Ms)
	}
	p("server CPU", "%s s  (%s µs per forwarded packet, %s µs of it in user space; kernel %s s)",
		num(r.ServerCPUSec, 2), num(r.ServerCPUUsPkt, 2), num(r.ServerUserUsPkt, 2), num(r.ServerSysCPUSec, 2))
	p("server RSS", "peak %s MB, now %s MB", mb(r.ServerPeakRSSKB), mb(r.ServerRSSKB))
	p("socket drops", "server %d, generator %d", r.ServerSockDrops, r.ClientSockDrops)
	p("listeners' UDP", "%d did not decrypt, %d never arrived (nonce gaps)", r.ClientDecryptFailures, r.ClientCryptLost)
	p("sync", "%.2f s until all %d clients synced", r.SyncSec, r.Clients)
	if r.Mode == "storm" {
		p("storm resync", "%.2f s after the drop, %.2f s after the last rejoin began (rejoin retries %d)",
			r.ResyncSec, r.ResyncLastSec, r.RejoinRetries)
	}
	if r.NotUDP > 0 {
		p("without UDP", "%d clients", r.NotUDP)
	}
	p("TCP ping", "p50 %.2f ms  p99 %.2f ms  (%d samples, %d failed)", r.PingP50Ms, r.PingP99Ms, r.PingSamples, r.PingFailures)
	if r.Mode == "web" {
		p("browsers", "%d (+ %d Mumble clients)", r.WebClients, r.MumbleClients)
		p("browsers' mix", "%d of %d packets = %.3f %% loss, %d browsers without any", r.WebReceived, r.WebExpected, r.WebLossPct, r.MixedMissing)
		p("browsers' latency", "p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%d burst onsets, %d unattributed)",
			r.WebLatencyP50Ms, r.WebLatencyP99Ms, r.WebLatencyMaxMs, r.WebOnsets, r.OnsetOutliers)
		p("UDP buffer drops", "%d on the whole machine (server and generator)", r.MachineUDPDrops)
		if r.ServerCPUSec >= 0 {
			p("server CPU per user", "%.3f %% of a core (%.1f %% in all)", r.ServerCPUPerListenerPct, r.ServerCPUPct)
		}
	}
	p("generator CPU", "%.2f s = %.0f %% of %d core(s)", r.GenCPUSec, r.GenCPUPct, r.GenGOMAXPROCS)
	if r.GeneratorLimited {
		p("NOTE", "the generator may have been the limit of this run")
	}
	return tw.Flush()
}

// WriteJSON writes the report to file.
func (r *Report) WriteJSON(file string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}

func num(v float64, prec int) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func mb(kb uint64) string {
	if kb == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(kb)/1024)
}

// ratio formats a/b, or "–" when it means nothing.
func ratio(a, b float64) string {
	if a < 0 || b <= 0 || math.IsNaN(a/b) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// WriteTable writes a Markdown table comparing reports: one row per
// server per scenario, in the order scenarios first appear, with a ratio
// row (first server / second server) when a scenario has exactly two.
func WriteTable(w io.Writer, reports []*Report) {
	var order []string
	by := map[string][]*Report{}
	for _, r := range reports {
		if _, ok := by[r.Scenario]; !ok {
			order = append(order, r.Scenario)
		}
		by[r.Scenario] = append(by[r.Scenario], r)
	}
	fmt.Fprintln(w, "| scenario | server | loss % | delivered pkt/s | latency p50 / p99 / max ms | in server p50 / p99 ms | server CPU s | CPU µs/pkt (user space) | peak RSS MB | sync s | TCP ping p99 ms | generator CPU % |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, sc := range order {
		rs := by[sc]
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Server == "plenum" && rs[j].Server != "plenum" })
		for i, r := range rs {
			name := ""
			if i == 0 {
				name = sc
			}
			syncS := r.SyncSec
			if r.Mode == "storm" {
				syncS = r.ResyncSec
			}
			lat, loss, dps, cpuPkt := "–", "–", "–", "–"
			if r.Speakers > 0 {
				lat = fmt.Sprintf("%.2f / %.2f / %.1f", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
				loss = fmt.Sprintf("%.2f", r.LossPct)
				dps = fmt.Sprintf("%.0f", r.DeliveredPS)
				cpuPkt = num(r.ServerCPUUsPkt, 2) + " (" + num(r.ServerUserUsPkt, 2) + ")"
			}
			gen := fmt.Sprintf("%.0f", r.GenCPUPct)
			if r.GeneratorLimited {
				gen += " (limit)"
			}
			inServer := "–"
			if r.ServerDelayP99Ms >= 0 {
				inServer = fmt.Sprintf("≤ %.2f / ≤ %.2f", r.ServerDelayP50Ms, r.ServerDelayP99Ms)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %.1f | %s |\n",
				name, r.Server, loss, dps, lat, inServer, num(r.ServerCPUSec, 2), cpuPkt, mb(r.ServerPeakRSSKB), syncS, r.PingP99Ms, gen)
		}
		if len(rs) == 2 {
			a, b := rs[0], rs[1]
			as, bs := a.SyncSec, b.SyncSec
			if a.Mode == "storm" {
				as, bs = a.ResyncSec, b.ResyncSec
			}
			lat, dps, cpuPkt := "–", "–", "–"
			if a.Speakers > 0 {
				lat = ratio(a.LatencyP50Ms, b.LatencyP50Ms) + " / " + ratio(a.LatencyP99Ms, b.LatencyP99Ms) + " / " + ratio(a.LatencyMaxMs, b.LatencyMaxMs)
				dps = ratio(a.DeliveredPS, b.DeliveredPS)
				cpuPkt = ratio(a.ServerCPUUsPkt, b.ServerCPUUsPkt) + " (" + ratio(a.ServerUserUsPkt, b.ServerUserUsPkt) + ")"
			}
			fmt.Fprintf(w, "| | *%s / %s* | | %s | %s | | %s | %s | %s | %s | %s | |\n",
				a.Server, b.Server, dps, lat, ratio(a.ServerCPUSec, b.ServerCPUSec), cpuPkt,
				ratio(float64(a.ServerPeakRSSKB), float64(b.ServerPeakRSSKB)), ratio(as, bs), ratio(a.PingP99Ms, b.PingP99Ms))
		}
	}
}

// readReports loads JSON reports.
func readReports(files []string) ([]*Report, error) {
	var out []*Report
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		r := new(Report)
		if err := json.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// scenarioName is the default scenario label.
func scenarioName(mode string, n, k int) string {
	switch mode {
	case "storm":
		return fmt.Sprintf("storm N=%d", n)
	case "tunnel":
		return fmt.Sprintf("tunnel N=%d K=%d", n, k)
	case "web":
		return fmt.Sprintf("web N=%d K=%d", n, k)
	}
	return fmt.Sprintf("N=%d K=%d", n, k)
}
