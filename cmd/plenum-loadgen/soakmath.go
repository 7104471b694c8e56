package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// The arithmetic of the soak report: trends that make "flat" a number,
// and the window accounting that turns churn and moves into an exact
// expected count.

// Series summarises one sampled quantity over the measured part of a soak.
type Series struct {
	Samples     int     `json:"samples"`
	Minutes     float64 `json:"minutes"` // from the first sample to the last
	Start       float64 `json:"start"`   // first sample after the warm-up
	Min         float64 `json:"min"`
	Max         float64 `json:"max"`
	End         float64 `json:"end"`
	SlopePer10m float64 `json:"slope_per_10m"` // least-squares trend, units per 10 minutes
}

// summarise builds a Series from samples taken at times ts. Fewer than two
// samples give no trend (slope 0).
func summarise(ts []time.Duration, vs []float64) Series {
	if len(vs) == 0 {
		return Series{}
	}
	s := Series{Samples: len(vs), Start: vs[0], End: vs[len(vs)-1], Min: slices.Min(vs), Max: slices.Max(vs),
		Minutes: (ts[len(ts)-1] - ts[0]).Minutes()}
	s.SlopePer10m = slopePer(ts, vs, 10*time.Minute)
	return s
}

// slopePer is the least-squares slope of vs over ts, in units per unit
// of time. It is 0 when there are fewer than two distinct times.
func slopePer(ts []time.Duration, vs []float64, unit time.Duration) float64 {
	n := float64(len(ts))
	if len(ts) < 2 || len(ts) != len(vs) {
		return 0
	}
	var mx, my float64
	for i := range ts {
		mx += float64(ts[i]) / float64(unit)
		my += vs[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx float64
	for i := range ts {
		dx := float64(ts[i])/float64(unit) - mx
		sxy += dx * (vs[i] - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

// Usage is a mean and a maximum, in cores; Mean is -1 when unmeasured.
type Usage struct {
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

func (u *Usage) add(v float64) {
	u.Mean += v
	u.Max = max(u.Max, v)
}

func (u *Usage) finish(n float64) {
	if n == 0 {
		u.Mean = -1
		return
	}
	u.Mean /= n
}

// span is a closed interval of send times, relative to the generator's
// start: a listener was in the hall from start to end (guards applied),
// so it must have heard everything sent in between.
type span struct {
	start, end time.Duration
	tally      *tally // what the window received (nil in tests)
}

// countIn counts the times in sorted that fall in [s.start, s.end].
func countIn(sorted []time.Duration, s span) int {
	if s.end < s.start {
		return 0
	}
	lo, _ := slices.BinarySearch(sorted, s.start)
	hi, found := slices.BinarySearch(sorted, s.end)
	for found && hi < len(sorted) && sorted[hi] == s.end { // include every copy of end
		hi++
	}
	return hi - lo
}

// textSent is one text message to the hall: when, and by which user.
type textSent struct {
	at  time.Duration
	who int
}

// expectedVoice is what one listener should have received: every packet
// sent in each of its spans. (A listener never speaks while in a span.)
func expectedVoice(sent []time.Duration, spans []span) uint64 {
	var n uint64
	for _, s := range spans {
		n += uint64(countIn(sent, s))
	}
	return n
}

// expectedText is what user who should have received: every text sent to
// the hall during its spans, except its own (the server does not echo).
// texts must be sorted by time.
func expectedText(texts []textSent, spans []span, who int) uint64 {
	var n uint64
	for _, s := range spans {
		lo, _ := slices.BinarySearchFunc(texts, s.start, func(t textSent, d time.Duration) int { return cmp.Compare(t.at, d) })
		for _, t := range texts[lo:] {
			if t.at > s.end {
				break
			}
			if t.who != who {
				n++
			}
		}
	}
	return n
}

// Check is one pass/fail line of the soak report. A skipped check (no
// metrics endpoint, say) neither passes nor fails.
type Check struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Skipped bool   `json:"skipped,omitempty"`
	Detail  string `json:"detail"`
}

func pass(name, f string, a ...any) Check {
	return Check{Name: name, OK: true, Detail: fmt.Sprintf(f, a...)}
}

func fail(name, f string, a ...any) Check {
	return Check{Name: name, Detail: fmt.Sprintf(f, a...)}
}

func skip(name, why string) Check {
	return Check{Name: name, Skipped: true, Detail: why}
}

func checkIf(ok bool, name, f string, a ...any) Check {
	if ok {
		return pass(name, f, a...)
	}
	return fail(name, f, a...)
}

// reconcile compares two counts of the same thing, a and b, where a may
// exceed b by at most slack (things a counted that b legitimately missed,
// such as packets lost in flight) and never fall below it.
func reconcile(name, aName string, a float64, bName string, b float64, slack float64) Check {
	diff := a - b
	return checkIf(diff >= 0 && diff <= slack, name, "%s %.0f, %s %.0f: difference %.0f (allowed 0..%.0f)",
		aName, a, bName, b, diff, slack)
}

// minTrend is the shortest measured time over which a trend means
// something: over less, the settling of the heap after the warm-up
// dominates the line, and per 10 minutes it is extrapolated too far.
const minTrend = 5 * time.Minute

// trendCheck fails a series whose trend exceeds limit per 10 minutes.
func trendCheck(name, unit string, s Series, limit float64) Check {
	if s.Samples < 3 || s.Minutes < minTrend.Minutes() {
		return skip(name, fmt.Sprintf("%.1f min measured, a trend needs %.0f (would be %+.2f %s per 10 min)",
			s.Minutes, minTrend.Minutes(), s.SlopePer10m, unit))
	}
	return checkIf(s.SlopePer10m <= limit, name, "trend %+.2f %s per 10 min (limit %.2f), %.1f → %.1f",
		s.SlopePer10m, unit, limit, s.Start, s.End)
}

// lossPct is the share of expected that did not arrive, in percent.
func lossPct(expected, received uint64) float64 {
	if expected == 0 {
		return 0
	}
	return 100 * (1 - float64(received)/float64(expected))
}

// finite replaces NaN and infinities (JSON cannot carry them) by 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// lossRun is a stretch of consecutive seconds (of send time) in which
// listeners missed voice.
type lossRun struct {
	from, to           int // seconds, both included
	expected, received uint64
}

// lossRuns finds where voice went missing: recv[i] is what listeners
// received (in their windows) of the packets sent in second i, and the
// expected count per second follows from the windows. Runs are returned
// worst first.
func lossRuns(sent []time.Duration, windows [][]span, recv []uint64) []lossRun {
	exp := make([]uint64, len(recv))
	for _, spans := range windows {
		for _, s := range spans {
			for sec := max(0, int(s.start/time.Second)); sec < len(exp) && time.Duration(sec)*time.Second <= s.end; sec++ {
				lo, hi := time.Duration(sec)*time.Second, time.Duration(sec+1)*time.Second-1
				exp[sec] += uint64(countIn(sent, span{start: max(lo, s.start), end: min(hi, s.end)}))
			}
		}
	}
	var runs []lossRun
	for sec := range exp {
		if exp[sec] <= recv[sec] {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].to == sec-1 {
			runs[n-1].to = sec
			runs[n-1].expected += exp[sec]
			runs[n-1].received += recv[sec]
			continue
		}
		runs = append(runs, lossRun{from: sec, to: sec, expected: exp[sec], received: recv[sec]})
	}
	slices.SortStableFunc(runs, func(a, b lossRun) int {
		return cmp.Compare(b.expected-b.received, a.expected-a.received)
	})
	return runs
}
