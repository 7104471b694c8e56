package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// What the soak samples: the server process from /proc, the server's own
// view from its Prometheus endpoint, and the generator itself (a leak in
// the generator would look like trouble at the server).

// The Prometheus series the soak reads. Labelled series are summed per
// name (forwarded counts UDP and TCP copies together).
const (
	metGoroutines = "go_goroutines"
	metRSS        = "process_resident_memory_bytes"
	metVoiceIn    = "plenum_voice_packets_received_total"
	metVoiceOut   = "plenum_voice_packets_forwarded_total"
	metUsers      = "plenum_users"
	metConns      = "plenum_connections_total"
	metDropped    = "plenum_voice_dropped_total" // by reason
	metLimited    = "plenum_control_messages_rate_limited_total"
)

// sample is one observation; -1 means not measured.
type sample struct {
	At            time.Duration `json:"at"` // since the activities began
	RSSKB         int64         `json:"rss_kb"`
	Threads       int64         `json:"threads"`
	Goroutines    int64         `json:"goroutines"`
	Users         int64         `json:"users"`
	GenGoroutines int64         `json:"gen_goroutines"`
	GenRSSKB      int64         `json:"gen_rss_kb"`

	// CPU time so far (-1: unknown), to tell what else ran on the machine.
	ServerCPU   time.Duration `json:"server_cpu_ns"`
	GenCPU      time.Duration `json:"gen_cpu_ns"`
	MachineBusy time.Duration `json:"machine_busy_ns"` // all cores, every process
}

// procStatus reads numeric fields ("VmRSS", "Threads", ...) of
// /proc/PID/status; the kB unit is dropped. Missing fields are absent.
func procStatus(pid string) (map[string]int64, error) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

// machineBusy is the CPU time all cores spent on anything but idling and
// waiting for I/O since boot, from /proc/stat. Steal counts: the
// hypervisor gave the time to someone else.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

func parseProcStat(b []byte) (time.Duration, error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	var busy uint64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / userHZ, nil
}

// metrics is one scrape of a Prometheus text endpoint: each metric name's
// value, summed over its label sets, and each labelled series on its own
// under its full name, e.g. `x_total{reason="a"}`.
type metrics map[string]float64

func (m metrics) get(name string) (float64, bool) {
	v, ok := m[name]
	return v, ok
}

// parseMetrics reads the Prometheus text exposition format. It needs only
// names and values: labels are skipped (their values may hold spaces and
// braces, hence the quote-aware scan), timestamps ignored.
func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, err := splitSeries(line)
		if err != nil {
			return nil, err
		}
		series := strings.TrimSpace(line[:len(line)-len(rest)])
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metrics: no value in %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: %q: %w", line, err)
		}
		m[name] += v
		if series != name {
			m[series] = v
		}
	}
	return m, sc.Err()
}

// labelled returns the series of metric name by their labels, e.g.
// {`reason="silenced"`: 3}.
func (m metrics) labelled(name string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if labels, ok := strings.CutPrefix(k, name+"{"); ok {
			out[strings.TrimSuffix(labels, "}")] = v
		}
	}
	return out
}

// splitSeries splits `name{labels} value` into the name and what follows
// the labels.
func splitSeries(line string) (name, rest string, err error) {
	i := strings.IndexAny(line, "{ \t")
	if i < 0 {
		return "", "", fmt.Errorf("metrics: malformed line %q", line)
	}
	name, rest = line[:i], line[i:]
	if rest[0] != '{' {
		return name, rest, nil
	}
	quoted, escaped := false, false
	for j := 1; j < len(rest); j++ {
		switch c := rest[j]; {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == '}' && !quoted:
			return name, rest[j+1:], nil
		}
	}
	return "", "", fmt.Errorf("metrics: unterminated labels in %q", line)
}

// scraper fetches the server's metrics endpoint.
type scraper struct {
	url string
	hc  *http.Client
}

func newScraper(url string) *scraper {
	if url == "" {
		return nil
	}
	return &scraper{url: url, hc: &http.Client{Timeout: 10 * time.Second}}
}

// scrape returns the current metrics; a nil scraper has none.
func (s *scraper) scrape(ctx context.Context) (metrics, error) {
	if s == nil {
		return nil, errors.New("no metrics endpoint")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// close drops the scraper's idle connections, so that the server can count
// its goroutines without ours.
func (s *scraper) close() {
	if s != nil {
		s.hc.CloseIdleConnections()
	}
}

// observe takes one sample of the server (pid may be "") and of the
// generator. It also returns the scrape, for the counters.
func observe(ctx context.Context, pid string, sc *scraper, at time.Duration) (sample, metrics, error) {
	smp := sample{At: at, RSSKB: -1, Threads: -1, Goroutines: -1, Users: -1,
		GenGoroutines: int64(runtime.NumGoroutine()), GenRSSKB: -1, ServerCPU: -1, GenCPU: selfCPU(), MachineBusy: -1}
	if st, err := procStatus("self"); err == nil {
		smp.GenRSSKB = st["VmRSS"]
	}
	if busy, err := machineBusy(); err == nil {
		smp.MachineBusy = busy
	}
	var errs []error
	if pid != "" {
		st, err := procStatus(pid)
		_, mapped := st["VmRSS"] // a zombie has a status but no memory
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("server process: %w", err))
		case !mapped:
			errs = append(errs, errors.New("server process: exited"))
		default:
			smp.RSSKB, smp.Threads = st["VmRSS"], st["Threads"]
		}
		if cpu, err := procCPU(pid); err == nil {
			smp.ServerCPU = cpu
		}
	}
	var m metrics
	if sc != nil {
		var err error
		if m, err = sc.scrape(ctx); err != nil {
			errs = append(errs, err)
		} else {
			if v, ok := m.get(metGoroutines); ok {
				smp.Goroutines = int64(v)
			}
			if v, ok := m.get(metUsers); ok {
				smp.Users = int64(v)
			}
			if v, ok := m.get(metRSS); ok && smp.RSSKB < 0 {
				smp.RSSKB = int64(v / 1024) // no pid: the server's own figure
			}
		}
	}
	return smp, m, errors.Join(errs...)
}
