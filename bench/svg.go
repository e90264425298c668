package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"

	"time"
)

// Chart layout, in SVG user units (pixels at 100%).
const (
	svgWidth    = 1000
	svgLabelX   = 190 // right edge of the row labels
	svgPlotX0   = 200
	svgPlotX1   = 860
	svgRowH     = 22
	svgBarH     = 14
	svgFont     = `font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"`
	colorBare   = "#9aa0a6"
	colorAccept = "#3b6fb6"
	colorRefuse = "#e08a2c"
	colorMark   = "#202124"
	colorGrid   = "#e3e5e8"
	colorAxis   = "#5f6368"
)

// percentile markers of the latency panel.
var svgPercentiles = []struct {
	name  string
	color string
	get   func(Percentiles) time.Duration
}{
	{"p50", "#1b9e77", func(p Percentiles) time.Duration { return p.P50 }},
	{"p90", "#7570b3", func(p Percentiles) time.Duration { return p.P90 }},
	{"p99", "#d95f02", func(p Percentiles) time.Duration { return p.P99 }},
	{"p99.9", "#e7298a", func(p Percentiles) time.Duration { return p.P999 }},
	{"max", "#444444", func(p Percentiles) time.Duration { return p.Max }},
}

type svgRow struct {
	label  string
	color  string
	closed *Result
	open   *Result
	bare   float64 // req/s of the bare run the ratio was taken against, 0 for bare rows
	ratio  float64
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// trimZeros drops a fraction of zeros from a formatted number: "40.0k" is
// "40k" on an axis.
func trimZeros(s string) string {
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return s
	}
	j := i + 1
	for j < len(s) && s[j] == '0' {
		j++
	}
	if j < len(s) && s[j] >= '1' && s[j] <= '9' {
		return s
	}
	return s[:i] + s[j:]
}

// WriteSVG draws the report: a throughput panel (a bar per scenario, the
// bare server's req/s for the same body size marked on each) and a
// latency panel (closed-loop percentiles on a log axis, plus p99 at half
// load).
func (r *Report) WriteSVG(w io.Writer) error {
	var rows []svgRow
	for i := range r.Baselines {
		bl := &r.Baselines[i]
		rows = append(rows, svgRow{label: "bare (" + sizeName(bl.BodyBytes) + ")", color: colorBare,
			closed: bl.Closed, open: bl.Open, ratio: 1})
	}
	if rl := r.Relay; rl != nil && rl.Closed != nil {
		rows = append(rows, svgRow{label: "relay (forward only)", color: colorBare, closed: rl.Closed, open: rl.Open,
			bare: rl.BareRPS, ratio: rl.Ratio})
	}
	for _, s := range r.Scenarios {
		if s.Closed == nil {
			continue
		}
		// The marker is the bare run beside the reported round, which the
		// ratio divides by, not the suite's first bare run: the machine's
		// load drifts between them, and the bar against the marker should
		// show the ratio the label prints.
		row := svgRow{label: s.Name, color: colorAccept, closed: s.Closed, open: s.Open, bare: s.BareRPS, ratio: s.Ratio}
		if _, ok := s.Closed.Codes["0"]; !ok || s.Closed.Codes["0"]*2 < s.Closed.Answers {
			row.color = colorRefuse
		}
		rows = append(rows, row)
	}

	var b bytes.Buffer
	panelH := 70 + len(rows)*svgRowH + 50
	height := 60 + 2*panelH + 30
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s font-size="12" fill="#202124">
<rect width="100%%" height="100%%" fill="#ffffff"/>
`, svgWidth, height, svgWidth, height, svgFont)
	m := r.Machine
	title := fmt.Sprintf("hookbench %s", r.Date)
	sub := fmt.Sprintf("%d CPU, %s, %d connections, %s per run", m.NumCPU, m.GoVersion, r.Settings.Conns, r.Settings.Duration)
	if m.Hookgate != "" {
		sub = m.Hookgate + " · " + sub
	}
	fmt.Fprintf(&b, `<text x="24" y="32" font-size="20" font-weight="600">%s</text>
<text x="24" y="52" font-size="12" fill="%s">%s</text>
`, esc(title), colorAxis, esc(sub))

	top := 60
	r.svgThroughput(&b, rows, top)
	r.svgLatency(&b, rows, top+panelH)
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func svgLegendSwatch(b *bytes.Buffer, x, y int, color, label string) int {
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" rx="2" fill="%s"/><text x="%d" y="%d">%s</text>
`, x, y-10, color, x+17, y, esc(label))
	return x + 17 + 7*len(label) + 18
}

func (r *Report) svgThroughput(b *bytes.Buffer, rows []svgRow, top int) {
	fmt.Fprintf(b, `<text x="24" y="%d" font-size="15" font-weight="600">Throughput, closed loop</text>
`, top+20)
	ly := top + 44
	x := svgPlotX0
	x = svgLegendSwatch(b, x, ly, colorBare, "bare fasthttp")
	x = svgLegendSwatch(b, x, ly, colorAccept, "accepted / matched")
	x = svgLegendSwatch(b, x, ly, colorRefuse, "refused")
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="3,2"/><text x="%d" y="%d">bare, run beside it</text>
`, x, ly-12, x, ly+2, colorMark, x+8, ly)

	maxRPS := 0.0
	for _, row := range rows {
		maxRPS = max(maxRPS, row.closed.RPS, row.bare)
	}
	step := niceCeil(maxRPS / 5)
	xmax := math.Ceil(maxRPS/step) * step
	if xmax == 0 {
		xmax = step
	}
	y0 := top + 60
	y1 := y0 + len(rows)*svgRowH
	scale := func(v float64) float64 { return svgPlotX0 + v/xmax*(svgPlotX1-svgPlotX0) }
	for v := 0.0; v <= xmax*1.0001; v += step {
		px := scale(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/><text x="%.1f" y="%d" text-anchor="middle" fill="%s">%s</text>
`, px, y0, px, y1, colorGrid, px, y1+16, colorAxis, trimZeros(fmtRate(v)))
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>
<text x="%d" y="%d" text-anchor="middle" fill="%s">requests per second</text>
`, svgPlotX0, y0, svgPlotX0, y1, colorAxis, (svgPlotX0+svgPlotX1)/2, y1+34, colorAxis)
	for i, row := range rows {
		cy := y0 + i*svgRowH + svgRowH/2
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s</text>
<rect x="%d" y="%d" width="%.1f" height="%d" rx="2" fill="%s"><title>%s: %.0f req/s</title></rect>
`, svgLabelX, cy+4, esc(row.label), svgPlotX0, cy-svgBarH/2, scale(row.closed.RPS)-svgPlotX0, svgBarH, row.color,
			esc(row.label), row.closed.RPS)
		label := fmtRate(row.closed.RPS)
		if row.bare > 0 {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="3,2"/>
`, scale(row.bare), cy-svgRowH/2+1, scale(row.bare), cy+svgRowH/2-1, colorMark)
			label += "  " + cut2(row.ratio) + "×"
		}
		lx := max(scale(row.closed.RPS), scale(row.bare)) + 6
		fmt.Fprintf(b, `<text x="%.1f" y="%d" fill="%s">%s</text>
`, lx, cy+4, colorAxis, esc(label))
	}
}

func (r *Report) svgLatency(b *bytes.Buffer, rows []svgRow, top int) {
	fmt.Fprintf(b, `<text x="24" y="%d" font-size="15" font-weight="600">Latency: closed-loop percentiles, and p99 at half load (open loop)</text>
`, top+20)
	ly := top + 44
	x := svgPlotX0
	for _, p := range svgPercentiles {
		fmt.Fprintf(b, `<circle cx="%d" cy="%d" r="5" fill="%s"/><text x="%d" y="%d">%s</text>
`, x+5, ly-4, p.color, x+14, ly, p.name)
		x += 14 + 7*len(p.name) + 18
	}
	fmt.Fprintf(b, `<path d="M%d %d l6 6 l-6 6 l-6 -6 z" fill="none" stroke="%s" stroke-width="2"/><text x="%d" y="%d">p99 at ½ load</text>
`, x+6, ly-10, colorMark, x+16, ly)

	lo, hi := math.Inf(1), 0.0
	for _, row := range rows {
		for _, p := range svgPercentiles {
			if v := float64(p.get(row.closed.Latency)); v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		if row.open != nil && row.open.Latency.P99 > 0 {
			v := float64(row.open.Latency.P99)
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if hi == 0 {
		lo, hi = 1e3, 1e6
	}
	dlo := math.Floor(math.Log10(lo))
	dhi := math.Max(math.Ceil(math.Log10(hi)), dlo+1)
	scale := func(ns float64) float64 {
		if ns <= 0 {
			ns = math.Pow(10, dlo)
		}
		return svgPlotX0 + (math.Log10(ns)-dlo)/(dhi-dlo)*(svgPlotX1-svgPlotX0)
	}
	y0 := top + 60
	y1 := y0 + len(rows)*svgRowH
	for d := dlo; d <= dhi; d++ {
		v := math.Pow(10, d)
		px := scale(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c7cacf"/><text x="%.1f" y="%d" text-anchor="middle" fill="%s">%s</text>
`, px, y0, px, y1, px, y1+16, colorAxis, trimZeros(fmtDur(time.Duration(v))))
		if d < dhi {
			for _, m := range []float64{2, 5} {
				px := scale(m * v)
				fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>
`, px, y0, px, y1, colorGrid)
			}
		}
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" fill="%s">latency (log scale)</text>
`, (svgPlotX0+svgPlotX1)/2, y1+34, colorAxis)
	for i, row := range rows {
		cy := y0 + i*svgRowH + svgRowH/2
		if i%2 == 1 {
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#f6f7f8" fill-opacity="0.6"/>
`, svgPlotX0, cy-svgRowH/2, svgPlotX1-svgPlotX0, svgRowH)
		}
		p := row.closed.Latency
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s</text>
<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#b0b4ba" stroke-width="2"/>
`, svgLabelX, cy+4, esc(row.label), scale(float64(p.P50)), cy, scale(float64(p.Max)), cy)
		for _, pc := range svgPercentiles {
			v := pc.get(p)
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%d" r="5" fill="%s"><title>%s %s: %s</title></circle>
`, scale(float64(v)), cy, pc.color, esc(row.label), pc.name, fmtDur(v))
		}
		if row.open != nil {
			v := row.open.Latency.P99
			fmt.Fprintf(b, `<path d="M%.1f %d l6 6 l-6 6 l-6 -6 z" fill="#ffffff" fill-opacity="0.7" stroke="%s" stroke-width="2"><title>%s p99 at %s req/s: %s</title></path>
`, scale(float64(v)), cy-6, colorMark, esc(row.label), fmtRate(row.open.Rate), fmtDur(v))
		}
		fmt.Fprintf(b, `<text x="%d" y="%d" fill="%s">p99 %s</text>
`, svgPlotX1+8, cy+4, colorAxis, fmtDur(p.P99))
	}

}
