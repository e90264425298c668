package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeResult makes a result with latencies spread around p50.
func fakeResult(mode string, rps float64, p50 time.Duration, codes map[string]uint64) *Result {
	h := NewHistogram()
	for i := range 1000 {
		h.Record(int64(p50) * int64(50+i) / 500)
	}
	r := &Result{Mode: mode, Conns: 64, RPS: rps, Hist: h, Latency: h.Percentiles(), Codes: codes,
		Status: map[string]uint64{"200": 1000}}
	for _, n := range codes {
		r.Answers += n
	}
	if mode == "open" {
		r.Rate, r.Sent, r.Late = rps, 1000, 12
	}
	return r
}

func fakeReport() *Report {
	ok := map[string]uint64{"0": 1000}
	return &Report{
		Date:     "2026-11-26",
		Machine:  Machine{NumCPU: 2, GoVersion: "go1.26.8", Kernel: "6.1", Hookgate: "hookgate dev"},
		Settings: Settings{Conns: 64, Duration: 5 * time.Second, Warmup: time.Second, Rounds: 3},
		Baselines: []Baseline{
			{BodyBytes: 1024, Closed: fakeResult("closed", 120000, 400*time.Microsecond, map[string]uint64{"none": 1000}),
				Open: fakeResult("open", 60000, 300*time.Microsecond, nil)},
			{BodyBytes: 4 << 20, Closed: fakeResult("closed", 300, 200*time.Millisecond, map[string]uint64{"none": 1000})},
		},
		Relay: &ScenarioResult{Name: "relay", Sink: "http", BodyBytes: 1024, BareRPS: 119000, Ratio: 0.47, Ratios: []float64{0.47, 0.44, 0.49},
			GatewayCPU: 9 * time.Microsecond, BareCPU: 7100 * time.Nanosecond, CPURatio: 0.79, SinkCPU: 6 * time.Microsecond,
			Closed: fakeResult("closed", 56000, 1200*time.Microsecond, nil), Open: fakeResult("open", 28000, 500*time.Microsecond, nil)},
		Scenarios: []ScenarioResult{
			{Name: "accept_json", Sink: "http", BodyBytes: 1024, BareRPS: 120000, Ratio: 0.3,
				GatewayCPU: 14200 * time.Nanosecond, BareCPU: 7100 * time.Nanosecond, CPURatio: 0.5, SinkCPU: 6 * time.Microsecond,
				Closed: fakeResult("closed", 36000, 1700*time.Microsecond, ok), Open: fakeResult("open", 18000, time.Millisecond, ok),
				OpenP99s:    []time.Duration{4500 * time.Microsecond, 1940 * time.Microsecond, 604 * time.Microsecond},
				BareOpenP99: 420 * time.Microsecond, BareOpenP99s: []time.Duration{420 * time.Microsecond, 3 * time.Millisecond, 380 * time.Microsecond},
				OpenGatewayCPU: 30 * time.Microsecond, OpenBareCPU: 12 * time.Microsecond, OpenSinkCPU: 9 * time.Microsecond},
			{Name: "accept_file", Sink: "file", BodyBytes: 1024, BareRPS: 120000, Ratio: 0.2, EventsPerFsync: 20.5,
				Closed: fakeResult("closed", 24000, 2*time.Millisecond, ok)},
			{Name: "rate_<limited>&", Sink: "http", BodyBytes: 1024, BareRPS: 120000, Ratio: 0.8,
				Closed:     fakeResult("closed", 96000, 500*time.Microsecond, map[string]uint64{"800005652": 999, "0": 1}),
				Unexpected: []string{"800006003"}},
			{Name: "body_4m", Sink: "http", BodyBytes: 4 << 20, BareRPS: 273, Ratio: 0.55, Ratios: []float64{0.62, 0.41, 0.55},
				Closed: fakeResult("closed", 150, 400*time.Millisecond, ok)},
			{Name: "broken", Sink: "http", BodyBytes: 1024, Error: "hookgate exited while starting: exit status 1\nlog …"},
		},
	}
}

func TestSVGWellFormed(t *testing.T) {
	for _, rep := range []*Report{fakeReport(), {Date: "2026-11-26"}} {
		var b bytes.Buffer
		if err := rep.WriteSVG(&b); err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(&b)
		root := ""
		for {
			tok, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("SVG is not well-formed XML: %v", err)
			}
			if se, ok := tok.(xml.StartElement); ok && root == "" {
				root = se.Name.Local
				if se.Name.Space != "http://www.w3.org/2000/svg" {
					t.Fatalf("root namespace %q", se.Name.Space)
				}
			}
		}
		if root != "svg" {
			t.Fatalf("root element %q", root)
		}
	}
	var b bytes.Buffer
	_ = fakeReport().WriteSVG(&b)
	for _, want := range []string{"bare (1 KB)", "accept_json", "rate_&lt;limited&gt;&amp;", "requests per second", "latency (log scale)", "0.30×", "relay (forward only)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

// TestSummary: a scenario's progress line gives its CPU per request in
// the closed loop and at half load, each with bare's and the sink's, in
// the table's words.
func TestSummary(t *testing.T) {
	rep := fakeReport()
	got := rep.Scenarios[0].summary()
	for _, want := range []string{
		"accept_json: 36000 req/s (0.30× bare)",
		", CPU/req 14.2µs · 7.10µs (0.50) + sink 6.00µs,",
		", CPU/req there 30.0µs · 12.0µs (0.40) + sink 9.00µs",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
	if got := rep.Scenarios[1].summary(); strings.Contains(got, "CPU") {
		t.Errorf("summary of a scenario without CPU figures: %q", got)
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := fakeReport().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| scenario | req/s | × bare |", "events/fsync · Redis per req |",
		"| bare (1 KB) | 120k | 1 |", "| accept_json | 36.0k | 0.30 |", "| 20.5 |",
		"800005652 99.9%, 0 0.1% (unexpected: 800006003)", "| broken | failed: hookgate exited while starting: exit status 1 |",
		"ms (604µs–4.50ms) @ 18.0k/s | 420µs | 30.0µs · 12.0µs (0.40) + sink 9.00µs | 1.2% |", "| bare's p99 there | CPU/req there · bare's (×) |", "| 0.55 (0.41–0.62) |", "| relay (1 KB, forward only) | 56.0k | 0.47 (0.44–0.49) | 9.00µs · 7.10µs (0.79) + sink 6.00µs |", ", 3 rounds", "| 14.2µs · 7.10µs (0.50) + sink 6.00µs |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// Requests of the open loop that got no answer are in none of its
	// percentiles: the errors cell says how many there were.
	rep := fakeReport()
	rep.Scenarios[0].Open.Errors = map[string]uint64{"closed": 7}
	rep.Baselines[0].Open.Errors = map[string]uint64{"timeout": 2}
	b.Reset()
	_ = rep.WriteMarkdown(&b)
	for _, want := range []string{"| HTTP 200 100% | 0 (½ load: timeout 2) |", "| 0 100% | 0 (½ load: closed 7) |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
	// A cluster scenario's cell: commands, round trips, marks per batch.
	rep = fakeReport()
	rep.Scenarios[0].CommandsPerRequest, rep.Scenarios[0].RoundTripsPerRequest, rep.Scenarios[0].MarksPerBatch = 2, 1.13, 8
	b.Reset()
	_ = rep.WriteMarkdown(&b)
	if want := "| 2.00 cmds in 1.13 RT (8.0 marks/batch) |"; !strings.Contains(b.String(), want) {
		t.Errorf("markdown lacks %q:\n%s", want, b.String())
	}
	// Without the gateway's fsync counters the column goes and a note says why.
	rep = fakeReport()
	rep.Scenarios[1].EventsPerFsync = 0
	b.Reset()
	_ = rep.WriteMarkdown(&b)
	if strings.Contains(b.String(), "events/fsync · Redis per req |") || !strings.Contains(b.String(), "events per fsync is not reported") {
		t.Errorf("missing fsync counters not explained:\n%s", b.String())
	}
}

func TestSave(t *testing.T) {
	dir := t.TempDir()
	rep := fakeReport()
	jp, sp, err := rep.Save(filepath.Join(dir, "results"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(jp) != "2026-11-26.json" || filepath.Base(sp) != "2026-11-26.svg" {
		t.Fatalf("paths %s %s", jp, sp)
	}
	data, err := os.ReadFile(jp)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Machine.NumCPU != 2 || len(back.Scenarios) != 5 || back.Scenarios[0].Closed.RPS != 36000 ||
		back.Scenarios[0].Closed.Latency.P99 == 0 {
		t.Fatalf("JSON round trip: %+v", back)
	}
	// The day's later full runs are kept beside the first.
	for _, want := range []string{"2026-11-26b", "2026-11-26c"} {
		jp, sp, err := rep.Save(filepath.Join(dir, "results"))
		if err != nil || filepath.Base(jp) != want+".json" || filepath.Base(sp) != want+".svg" {
			t.Fatalf("next full run saved to %s %s (%v); want %s.*", jp, sp, err, want)
		}
	}
	if again, err := os.ReadFile(filepath.Join(dir, "results", "2026-11-26.json")); err != nil || !bytes.Equal(again, data) {
		t.Fatalf("the first run's JSON changed after later runs (%v)", err)
	}
	rep.Settings.Quick = true
	for range 2 {
		jp, _, _ = rep.Save(filepath.Join(dir, "results"))
		if filepath.Base(jp) != "2026-11-26-quick.json" {
			t.Fatalf("quick run path %s", jp)
		}
	}
}

func TestFormat(t *testing.T) {
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(fmtDur(0), "0")
	f(fmtDur(850), "850ns")
	f(fmtDur(87300), "87.3µs")
	f(fmtDur(1240*time.Microsecond), "1.24ms")
	f(fmtDur(2*time.Second), "2.00s")
	f(fmtRate(950), "950")
	f(fmtRate(41234), "41.2k")
	f(fmtRate(1.25e6), "1.25M")
	f(trimZeros("40.0k"), "40k")
	f(trimZeros("1.00ms"), "1ms")
	f(trimZeros("2.50s"), "2.50s")
	f(trimZeros("100µs"), "100µs")
	f(sizeName(1024), "1 KB")
	f(sizeName(4<<20), "4 MiB")
	f(sizeName(300), "300 B")
	f(fmtCounts(map[string]uint64{"a": 1, "b": 3}), "b 75.0%, a 25.0%")
	f(fmtCounts(map[string]uint64{"0": 7}), "0 100%")
	f(fmtCounts(map[string]uint64{"429": 99999, "0": 1}), "429 >99.9%, 0 <0.1%")
	if niceCeil(123000) != 200000 || niceCeil(24600) != 50000 || niceCeil(0) != 1 {
		t.Errorf("niceCeil")
	}
}

// svgBar is one row of the SVG's throughput panel: the bar's width, the
// bare marker's x (0 without one) and the label.
var svgBar = regexp.MustCompile(`<rect x="200" y="\d+" width="([\d.]+)" height="14" rx="2" fill="[^"]+"><title>([^<]*): \d+ req/s</title></rect>\n` +
	`(?:<line x1="([\d.]+)"[^>]*stroke-dasharray="3,2"/>\n)?<text[^>]*>([^<]*)</text>`)

// TestSVGBareMarker: each bar's bare marker is the bare run its ratio was
// taken against, so bar and marker show the ratio the label prints.
func TestSVGBareMarker(t *testing.T) {
	rep := fakeReport()
	// The bare run beside a scenario saw another machine than the
	// suite's first: its req/s differs from the bare row's.
	rep.Scenarios[0].Ratio, rep.Scenarios[0].BareRPS = 0.4, 90000
	var b bytes.Buffer
	if err := rep.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	rows := svgBar.FindAllStringSubmatch(b.String(), -1)
	if len(rows) != 7 {
		t.Fatalf("%d bars in the throughput panel, want 7", len(rows))
	}
	for _, m := range rows {
		label, ratioText, _ := strings.Cut(m[4], "  ")
		if m[3] == "" || !strings.HasSuffix(ratioText, "×") {
			if !strings.HasPrefix(m[2], "bare (") {
				t.Errorf("%s: no bare marker or ratio (%q)", m[2], m[4])
			}
			continue
		}
		width, _ := strconv.ParseFloat(m[1], 64)
		marker, _ := strconv.ParseFloat(m[3], 64)
		ratio, err := strconv.ParseFloat(strings.TrimSuffix(ratioText, "×"), 64)
		if err != nil {
			t.Fatalf("%s: label %q", m[2], m[4])
		}
		// Positions are drawn to a tenth of a pixel: a tiny bar's ratio
		// is only that exact.
		tol := 0.01 + 0.1/(marker-svgPlotX0)
		if drawn := width / (marker - svgPlotX0); math.Abs(drawn-ratio) > tol {
			t.Errorf("%s (%s): bar and bare marker show %.3f×, the label %.2f×", m[2], label, drawn, ratio)
		}
	}
}

// TestRatioTextCuts: a ratio is cut to two decimals, never rounded up to
// a target it misses.
func TestRatioTextCuts(t *testing.T) {
	for _, tc := range []struct {
		ratio  float64
		ratios []float64
		want   string
	}{
		{0.849, nil, "0.84"},
		{0.85, nil, "0.85"},
		{0.8500001, nil, "0.85"},
		{0.4499, []float64{0.4499, 0.3, 0.456}, "0.44 (0.30–0.45)"},
		{1, []float64{1, 0.999}, "1.00 (0.99–1.00)"},
		{0.29, nil, "0.29"}, // 0.29*100 is 28.999…
	} {
		sr := ScenarioResult{Ratio: tc.ratio, Ratios: tc.ratios}
		if got := sr.ratioText(); got != tc.want {
			t.Errorf("ratioText(%v, %v) = %q, want %q", tc.ratio, tc.ratios, got, tc.want)
		}
	}
}
