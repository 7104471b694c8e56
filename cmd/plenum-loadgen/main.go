// Command plenum-loadgen loads a Mumble server (Plenum or Murmur) with many
// simulated clients and measures what they get.
//
//	plenum-loadgen -addr 127.0.0.1:64738 -n 200 -k 4 -seconds 20 -server-pid PID
//	plenum-loadgen -mode tunnel ...   voice over TCP (clients without UDP)
//	plenum-loadgen -mode storm -n 500  all clients drop and rejoin within 3 s
//	plenum-loadgen -mode soak -duration 30m -server-pid PID -metrics URL -admin-password PW
//	                                   300 clients with churn, speech, text, moves
//	                                   and ACL edits; see soak.go
//	plenum-loadgen -mode web -web-url ws://127.0.0.1:8443/ws -n 500 -mumble 2 -k 4 -web-speakers 2
//	                                   browsers over WebRTC (web.go)
//	plenum-loadgen table A.json B.json ...   Markdown table of JSON reports
//
// N clients connect over TLS (and UDP); K of them speak at 50 packets/s,
// 20 ms frames of 100 bytes carrying the send time, speaker and sequence;
// every listener decrypts, checks and times every packet. Latency is
// one-way on the generator's clock, so it is only meaningful with the
// server on the same machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "plenum-loadgen:", err)
		os.Exit(1)
	}
}

func gomaxprocs() int { return runtime.GOMAXPROCS(0) }

func run(args []string) error {
	if len(args) > 0 && args[0] == "table" {
		reports, err := readReports(args[1:])
		if err != nil {
			return err
		}
		WriteTable(os.Stdout, reports)
		return nil
	}
	fs := flag.NewFlagSet("plenum-loadgen", flag.ContinueOnError)
	var o Options
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:64738", "server `host:port`, or a cluster's nodes separated by commas (clients and speakers spread over them)")
	fs.IntVar(&o.N, "n", 50, "number of clients (soak: default 300)")
	fs.IntVar(&o.K, "k", 1, "number of speakers among them (soak: at a time, default 4)")
	seconds := fs.Float64("seconds", 20, "speaking time")
	fs.StringVar(&o.Mode, "mode", "udp", "udp, tunnel (voice over TCP), storm (drop and rejoin), soak or web (browsers over WebRTC, see web.go)")
	pids := fs.String("server-pid", "", "server `pid` for CPU and memory statistics, or a cluster's nodes' pids separated by commas (summed)")
	fs.StringVar(&o.MetricsURL, "server-metrics", "", "Plenum's metrics `URL` (e.g. http://127.0.0.1:64740/metrics), for the time voice spends in the server")
	jsonFile := fs.String("json", "", "also write the report as JSON to `file`")
	cpu := fs.Int("cpu", -1, "pin the generator to this `core` (and GOMAXPROCS=1)")
	fs.StringVar(&o.NamePrefix, "name-prefix", "lg-", "user name prefix (soak: default \"soak-\")")
	fs.IntVar(&o.Payload, "payload", defaultPayload, "voice payload `bytes` per packet")
	fs.BoolVar(&o.Opus, "opus", false, "send real Opus (each speaker a tone, loudness spread over 28 dB), the generator's header in its padding")
	fs.IntVar(&o.Loudest, "loudest", 0, "the channel forwards only the `N` loudest (max_speakers = N): expect N streams per listener (needs -opus)")
	fs.BoolVar(&o.Mixed, "mixed", false, "the channel mixes (mix = true): expect one mixed packet per 20 ms per client (needs -opus)")
	fs.IntVar(&o.DialConcurrency, "dial-concurrency", 32, "simultaneous logins while connecting")
	fs.StringVar(&o.WebURL, "web-url", "", "web: the server's WebSocket `URL`, e.g. ws://127.0.0.1:8443/ws")
	fs.IntVar(&o.Mumble, "mumble", 0, "web: Mumble clients besides the -n browsers")
	fs.IntVar(&o.WebSpeakers, "web-speakers", 0, "web: how many of the -k speakers are browsers (the rest are Mumble clients)")
	fs.IntVar(&o.Timed, "timed", 50, "web: browsers that decode their mix and time the bursts' onsets")
	storm := fs.Duration("storm-window", 3*time.Second, "storm: rejoins are spread over this window")
	scenario := fs.String("scenario", "", "scenario label for the report (default from mode, n, k)")
	label := fs.String("label", "", "server label for the report, e.g. plenum or murmur")
	quiet := fs.Bool("q", false, "no progress messages")
	soakOptions := soakFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *cpu >= 0 {
		if err := pinToCPU(*cpu); err != nil {
			return err
		}
	}
	var err error
	if o.ServerPID, o.OtherPIDs, err = parsePIDs(*pids); err != nil {
		return err
	}
	o.Duration = time.Duration(*seconds * float64(time.Second))
	o.StormWindow = *storm
	if !*quiet {
		o.Logf = func(f string, a ...any) {
			fmt.Fprintf(os.Stderr, "%s "+f+"\n", append([]any{time.Now().Format("15:04:05.000")}, a...)...)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.Mode == "soak" {
		return runSoak(ctx, soakOptions(o), *jsonFile)
	}
	runner := Run
	if o.Mode == "web" {
		runner = RunWeb
	}
	r, err := runner(ctx, o)
	if err != nil {
		return err
	}
	r.Server = *label
	r.Scenario = *scenario
	if r.Scenario == "" {
		r.Scenario = scenarioName(o.Mode, o.N, o.K)
	}
	if err := r.WriteText(os.Stdout); err != nil {
		return err
	}
	if *jsonFile != "" {
		return r.WriteJSON(*jsonFile)
	}
	return nil
}

// parsePIDs reads -server-pid: empty, one pid, or several separated by
// commas.
func parsePIDs(s string) (first int, others []int, err error) {
	if s == "" {
		return 0, nil, nil
	}
	for i, f := range strings.Split(s, ",") {
		pid, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || pid <= 0 {
			return 0, nil, fmt.Errorf("-server-pid: %q is not a process id", f)
		}
		if i == 0 {
			first = pid
		} else {
			others = append(others, pid)
		}
	}
	return first, others, nil
}
