package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// forwardDelayMetric is Plenum's histogram of the time voice spends inside
// the server, from the kernel's arrival time until its copies are queued.
const forwardDelayMetric = "plenum_voice_forward_delay_seconds"

// bucket is one cumulative histogram bucket: count observations ≤ le seconds.
type bucket struct {
	le    float64
	count float64
}

// scrapeHistogram fetches a Prometheus text page and returns the buckets
// of the named histogram, sorted by bound.
func scrapeHistogram(ctx context.Context, url, name string) ([]bucket, error) {
	sc := newScraper(url)
	defer sc.close()
	m, err := sc.scrape(ctx)
	if err != nil {
		return nil, err
	}
	var out []bucket
	for labels, count := range m.labelled(name + "_bucket") {
		le, ok := strings.CutPrefix(labels, `le="`)
		if !ok {
			continue
		}
		le = strings.TrimSuffix(le, `"`)
		b := bucket{le: math.Inf(1), count: count}
		if le != "+Inf" {
			if b.le, err = strconv.ParseFloat(le, 64); err != nil {
				return nil, fmt.Errorf("bucket bound %q: %w", le, err)
			}
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no %s", url, name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].le < out[j].le })
	return out, nil
}

// bucketQuantile returns the upper bound of the bucket holding quantile q
// of the observations made between two scrapes (before may be nil), in
// seconds: an upper estimate. It returns -1 without observations and the
// largest finite bound when q falls above it.
func bucketQuantile(before, after []bucket, q float64) float64 {
	if len(after) == 0 {
		return -1
	}
	delta := func(i int) float64 {
		if i < len(before) {
			return after[i].count - before[i].count
		}
		return after[i].count
	}
	total := delta(len(after) - 1)
	if total <= 0 {
		return -1
	}
	for i := range after {
		if delta(i) >= q*total && !math.IsInf(after[i].le, 1) {
			return after[i].le
		}
	}
	for i := len(after) - 1; i >= 0; i-- {
		if !math.IsInf(after[i].le, 1) {
			return after[i].le
		}
	}
	return -1
}

// serverDelay scrapes the server's forwarding-delay histogram, or returns
// nil when there is no metrics URL or the scrape fails (which is logged).
func (g *gen) serverDelay(ctx context.Context, url string) []bucket {
	if url == "" {
		return nil
	}
	b, err := scrapeHistogram(ctx, url, forwardDelayMetric)
	if err != nil {
		g.opt.Logf("server metrics: %v", err)
		return nil
	}
	return b
}
