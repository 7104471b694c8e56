package admin

// The status page's charts: small line charts drawn on the server as SVG
// from the history, so the browser needs no chart library.

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// chartSpec is one chart: its title and unit (keys of the text table),
// and one line per series.
type chartSpec struct {
	id, title, unit string
	floor           float64 // the least top of the scale, so that a flat line near 0 stays low
	series          []chartSeries
}

type chartSeries struct {
	label string // a key of the text table; "" for a chart's only series
	color string
	value func(Sample) float64
}

// charts are the page's charts, in order.
var charts = []chartSpec{
	{id: "people", title: "chart people", unit: "unit people", floor: 2, series: []chartSeries{
		{color: "#2b6cb0", value: func(s Sample) float64 { return float64(s.Participants) }}}},
	{id: "talking", title: "chart talking", unit: "unit people", floor: 2, series: []chartSeries{
		{color: "#2f855a", value: func(s Sample) float64 { return float64(s.Talking) }}}},
	{id: "voice", title: "chart voice", unit: "unit packets", floor: 10, series: []chartSeries{
		{label: "series in", color: "#2b6cb0", value: func(s Sample) float64 { return s.VoiceIn }},
		{label: "series out", color: "#2f855a", value: func(s Sample) float64 { return s.VoiceOut }},
		{label: "series dropped", color: "#c53030", value: func(s Sample) float64 { return s.VoiceDropped }}}},
	{id: "bad", title: "chart bad", unit: "unit people", floor: 2, series: []chartSeries{
		{color: "#c05621", value: func(s Sample) float64 { return float64(s.Bad) }}}},
	{id: "cpu", title: "chart cpu", unit: "unit percent", floor: 10, series: []chartSeries{
		{color: "#6b46c1", value: func(s Sample) float64 { return 100 * s.CPU }}}},
}

// The chart's geometry, in SVG user units: the plot is the box inside the
// margins, with the title and unit above it, the scale to its left and
// the times below.
const (
	chartW, chartH        = 300, 160
	plotL, plotR          = 52, chartW - 10
	plotT, plotB          = 40, chartH - 22
	plotWidth, plotHeight = plotR - plotL, plotB - plotT
)

// chartSVG draws c over the span from..to with the samples in it.
func chartSVG(c chartSpec, samples []Sample, from, to time.Time, l lang) template.HTML {
	var b strings.Builder
	title := l.t(c.title)
	fmt.Fprintf(&b, `<svg class="chart" id="chart-%s" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		c.id, chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<text class="title" x="4" y="14">%s</text>`, template.HTMLEscapeString(title))
	chartLegend(&b, c, samples, l)
	top := c.floor
	for _, s := range samples {
		for _, sr := range c.series {
			top = max(top, sr.value(s))
		}
	}
	top = niceCeil(top)
	chartAxes(&b, c, top, from, to, l)
	if len(samples) == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d" text-anchor="middle">%s</text>`, (plotL+plotR)/2, (plotT+plotB)/2, template.HTMLEscapeString(l.t("no data")))
	}
	span := to.Sub(from).Seconds()
	for _, sr := range c.series {
		if len(samples) == 0 {
			break
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="`, sr.color)
		for i, s := range samples {
			x := plotL + plotWidth*s.Time.Sub(from).Seconds()/span
			y := plotB - plotHeight*sr.value(s)/top
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", x, y)
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// chartLegend writes the unit above the scale and, at the top right,
// the latest value of each series (named, where there are several).
func chartLegend(b *strings.Builder, c chartSpec, samples []Sample, l lang) {
	fmt.Fprintf(b, `<text class="unit" x="4" y="30">%s</text>`, template.HTMLEscapeString(l.t(c.unit)))
	if len(samples) == 0 {
		return
	}
	last := samples[len(samples)-1]
	fmt.Fprintf(b, `<text class="legend" x="%d" y="30" text-anchor="end">`, plotR)
	for i, sr := range c.series {
		if i > 0 {
			b.WriteString(` `)
		}
		fmt.Fprintf(b, `<tspan fill="%s">`, sr.color)
		if sr.label != "" {
			b.WriteString(template.HTMLEscapeString(l.t(sr.label)) + " ")
		}
		b.WriteString(scaleLabel(sr.value(last), l) + `</tspan>`)
	}
	b.WriteString(`</text>`)
}

// chartAxes writes the scale (0, half and top, with grid lines) and the
// times at the start, middle and end of the span.
func chartAxes(b *strings.Builder, c chartSpec, top float64, from, to time.Time, l lang) {
	for _, f := range []float64{0, 0.5, 1} {
		y := plotB - plotHeight*f
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, plotL, plotR, y, y)
		fmt.Fprintf(b, `<text class="y" x="%d" y="%.1f" text-anchor="end">%s</text>`, plotL-4, y+4, scaleLabel(top*f, l))
	}
	fmt.Fprintf(b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d" stroke="#888"/>`, plotL, plotL, plotT, plotB)
	fmt.Fprintf(b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d" stroke="#888"/>`, plotL, plotR, plotB, plotB)
	mid := from.Add(to.Sub(from) / 2)
	for i, tm := range []time.Time{from, mid, to} {
		anchor := [...]string{"start", "middle", "end"}[i]
		x := [...]int{plotL, (plotL + plotR) / 2, plotR}[i]
		fmt.Fprintf(b, `<text class="x" x="%d" y="%d" text-anchor="%s">%s</text>`, x, chartH-6, anchor, tm.Format("15:04"))
	}
}

// scaleLabel formats a value of the scale or legend: whole numbers
// grouped, small fractions with one decimal.
func scaleLabel(v float64, l lang) string {
	if v != math.Trunc(v) && v < 10 {
		return l.float(v, 1)
	}
	return l.float(v, 0)
}

// niceCeil is the smallest of 1, 2, 4, 6, 8 times a power of ten that is
// at least v: a top for the scale whose half is a round number too.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 4, 6, 8, 10} {
		if m*exp >= v*(1-1e-9) {
			return m * exp
		}
	}
	return 10 * exp
}

// chartRange is the span and samples a chart shows: the last hour up to
// the latest sample, or the whole session from its start; before the
// first sample, the hour up to now.
func chartRange(h *History, session bool, now time.Time) (samples []Sample, from, to time.Time) {
	if session {
		samples = h.Session()
	} else {
		samples = h.Recent()
	}
	if len(samples) == 0 {
		return nil, now.Add(-time.Hour), now
	}
	to = samples[len(samples)-1].Time
	from = to.Add(-time.Hour)
	if session {
		from = h.Start()
	}
	return samples, from, to
}
