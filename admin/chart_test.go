package admin

import (
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// svgDoc is what a test reads back from a chart.
type svgDoc struct {
	texts  map[string][]string // by class
	points [][][2]float64      // per polyline
}

// parseSVG parses a chart as XML; a chart that is not well-formed fails.
func parseSVG(t *testing.T, svg string) svgDoc {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	doc := svgDoc{texts: map[string][]string{}}
	var class string
	var text strings.Builder
	inText := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the chart is not XML: %v\n%s", err, svg)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			attr := func(name string) string {
				for _, a := range el.Attr {
					if a.Name.Local == name {
						return a.Value
					}
				}
				return ""
			}
			switch el.Name.Local {
			case "text":
				class, inText = attr("class"), true
				text.Reset()
			case "polyline":
				var pts [][2]float64
				for _, p := range strings.Fields(attr("points")) {
					xs, ys, _ := strings.Cut(p, ",")
					x, err1 := strconv.ParseFloat(xs, 64)
					y, err2 := strconv.ParseFloat(ys, 64)
					if err1 != nil || err2 != nil {
						t.Fatalf("point %q is not x,y", p)
					}
					pts = append(pts, [2]float64{x, y})
				}
				doc.points = append(doc.points, pts)
			}
		case xml.CharData:
			if inText {
				text.Write(el)
			}
		case xml.EndElement:
			if el.Name.Local == "text" {
				doc.texts[class] = append(doc.texts[class], text.String())
				inText = false
			}
		}
	}
	return doc
}

// TestChartSVG: a chart is well-formed SVG with its title, unit, a
// scale of three labels up to a round top above the largest value, the
// times of its span, and one line per series with a point per sample,
// inside the plot, the largest value at most at the top.
func TestChartSVG(t *testing.T) {
	var samples []Sample
	for i := range 30 {
		samples = append(samples, Sample{Time: at(i), VoiceIn: float64(10 * i), VoiceOut: float64(300 * i), VoiceDropped: 1})
	}
	voice := charts[2]
	from, to := at(-1), at(29)
	doc := parseSVG(t, string(chartSVG(voice, samples, from, to, english)))
	if got := doc.texts["title"]; len(got) != 1 || got[0] != "Voice packets per second" {
		t.Errorf("title %q", got)
	}
	if got := doc.texts["unit"]; len(got) != 1 || got[0] != "packets/s" {
		t.Errorf("unit %q", got)
	}
	// The largest value is 300*29 = 8700: the scale goes to 10,000.
	if got, want := doc.texts["y"], []string{"0", "5,000", "10,000"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("scale %q, want %q", got, want)
	}
	if got, want := doc.texts["x"], []string{from.Format("15:04"), from.Add(to.Sub(from) / 2).Format("15:04"), to.Format("15:04")}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("times %q, want %q", got, want)
	}
	if got := doc.texts["legend"]; len(got) != 1 || got[0] != "in 290 out 8,700 dropped 1" {
		t.Errorf("legend %q", got)
	}
	if len(doc.points) != 3 {
		t.Fatalf("%d lines, want 3 (in, out, dropped)", len(doc.points))
	}
	for i, line := range doc.points {
		if len(line) != len(samples) {
			t.Errorf("line %d has %d points, want %d", i, len(line), len(samples))
		}
		for _, p := range line {
			if p[0] < plotL || p[0] > plotR || p[1] < plotT || p[1] > plotB {
				t.Errorf("line %d: point %v outside the plot", i, p)
			}
		}
	}
	out := doc.points[1]
	if last := out[len(out)-1]; last[0] != plotR || math.Abs(last[1]-(plotB-plotHeight*0.87)) > 0.05 {
		t.Errorf("the last point of out is at %v, want (%d, %.1f)", last, plotR, plotB-plotHeight*0.87)
	}

	// In German, with nothing yet: the text says so and there is no line.
	doc = parseSVG(t, string(chartSVG(charts[0], nil, from, to, german)))
	if got := doc.texts["empty"]; len(got) != 1 || got[0] != "noch keine Daten" || len(doc.points) != 0 {
		t.Errorf("an empty chart: %q and %d lines", got, len(doc.points))
	}
	if got := doc.texts["title"]; got[0] != "Teilnehmende" {
		t.Errorf("German title %q", got)
	}
}

// TestNiceCeil: the top of a scale is the next of 1, 2, 4, 6, 8 times a
// power of ten.
func TestNiceCeil(t *testing.T) {
	for v, want := range map[float64]float64{0: 1, 0.3: 0.4, 1: 1, 1.5: 2, 3: 4, 5: 6, 7: 8, 9: 10, 10: 10, 11: 20, 850: 1000, 8700: 10000, 1000: 1000} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}

// TestChartRange: the hour chart ends at the latest sample and spans an
// hour; the session chart starts where the history did.
func TestChartRange(t *testing.T) {
	h := NewHistory()
	now := at(1000)
	if s, from, to := chartRange(h, false, now); s != nil || !to.Equal(now) || to.Sub(from) != time.Hour {
		t.Errorf("before any sample: %d samples from %v to %v", len(s), from, to)
	}
	for i := range 400 {
		h.Add(Sample{Time: at(i)})
	}
	if s, from, to := chartRange(h, false, now); len(s) != recentSamples || !to.Equal(at(399)) || !from.Equal(at(399).Add(-time.Hour)) {
		t.Errorf("last hour: %d samples from %v to %v", len(s), from, to)
	}
	if s, from, to := chartRange(h, true, now); len(s) == 0 || !to.Equal(at(399)) || !from.Equal(at(-1)) {
		t.Errorf("session: %d samples from %v to %v", len(s), from, to)
	}
}
