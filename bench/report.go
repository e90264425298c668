package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fmtDur prints a latency with three significant digits: 87.3µs, 1.24ms.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return sig3(float64(d)/1e3) + "µs"
	case d < time.Second:
		return sig3(float64(d)/1e6) + "ms"
	}
	return sig3(d.Seconds()) + "s"
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// fmtRate prints requests per second: 950, 41.2k, 1.25M.
func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return sig3(r/1e6) + "M"
	case r >= 1e3:
		return sig3(r/1e3) + "k"
	}
	return strconv.FormatFloat(r, 'f', 0, 64)
}

// sizeName prints a body size: 1 KB, 64 KB, 1 MiB.
func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// fmtCounts prints a tally as "a 99.9%, b 0.1%", largest first.
func fmtCounts(m map[string]uint64) string {
	var total uint64
	keys := make([]string, 0, len(m))
	for k, v := range m {
		keys = append(keys, k)
		total += v
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		pct := 100 * float64(m[k]) / float64(total)
		p := strconv.FormatFloat(pct, 'f', 1, 64)
		switch {
		case pct == 100:
			p = "100"
		case pct > 99.95:
			p = ">99.9"
		case pct < 0.05:
			p = "<0.1"
		}
		parts[i] = k + " " + p + "%"
	}
	return strings.Join(parts, ", ")
}

// fmtErrors prints the requests of the closed-loop run c that got no
// answer by kind, then the open-loop run o's in brackets when it had any:
// they are in none of its percentiles and not late.
func fmtErrors(c, o *Result) string {
	t := errorKinds(c)
	if o != nil && len(o.Errors) > 0 {
		t += " (½ load: " + errorKinds(o) + ")"
	}
	return t
}

func errorKinds(r *Result) string {
	if r == nil || len(r.Errors) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, r.Errors[k])
	}
	return strings.Join(parts, ", ")
}

// fmtOpen prints an open-loop run's p99, with the range of the rounds'
// p99s when there were several, at its rate, and how much of the schedule
// slipped: "412µs @ 20.1k/s".
func fmtOpen(r *Result, p99s []time.Duration) (p99, late string) {
	if r == nil {
		return "–", "–"
	}
	p99 = p99Range(r, p99s) + " @ " + fmtRate(r.Rate) + "/s"
	due := r.Sent + r.Unsent
	if due == 0 {
		return p99, "–"
	}
	late = strconv.FormatFloat(100*float64(r.Late+r.Unsent)/float64(due), 'f', 1, 64) + "%"
	return p99, late
}

// fileSinkMetricsMissing reports whether a file-sink scenario ran without
// the gateway exposing its fsync counters.
func (r *Report) fileSinkMetricsMissing() bool {
	for _, s := range r.Scenarios {
		if s.Sink == "file" && s.Closed != nil && s.EventsPerFsync == 0 {
			return true
		}
	}
	return false
}

func (r *Report) hasEventsPerFsync() bool {
	for _, s := range r.Scenarios {
		if s.EventsPerFsync > 0 || s.RoundTripsPerRequest > 0 {
			return true
		}
	}
	return false
}

// WriteMarkdown writes the report as a markdown table with notes.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	m := r.Machine
	fmt.Fprintf(&b, "hookbench %s: %d CPU (%s), %s, kernel %s, %s; %d connections, %s per run after %s warm-up",
		r.Date, m.NumCPU, orDash(m.CPU), m.GoVersion, orDash(m.Kernel), orDash(m.Hookgate),
		r.Settings.Conns, r.Settings.Duration, r.Settings.Warmup)
	if r.Settings.Rounds > 1 {
		fmt.Fprintf(&b, ", %d rounds", r.Settings.Rounds)
	}
	if r.Settings.Quick {
		b.WriteString(" (quick)")
	}
	b.WriteString("\n\n")
	fsync := r.hasEventsPerFsync()
	b.WriteString("| scenario | req/s | × bare | CPU/req · bare's (×) | p50 | p90 | p99 | p99.9 | max | p99 at ½ load | bare's p99 there | CPU/req there · bare's (×) | late | codes | errors |")
	if fsync {
		b.WriteString(" events/fsync · Redis per req |")
	}
	b.WriteString("\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|")
	if fsync {
		b.WriteString("--:|")
	}
	b.WriteString("\n")
	row := func(name string, c, o *Result, ratio, cpu, open, bareOpen, openCPU, late, codes, fsyncCell string) {
		p := c.Latency
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |",
			name, fmtRate(c.RPS), ratio, cpu, fmtDur(p.P50), fmtDur(p.P90), fmtDur(p.P99), fmtDur(p.P999), fmtDur(p.Max),
			open, bareOpen, openCPU, late, codes, fmtErrors(c, o))
		if fsync {
			fmt.Fprintf(&b, " %s |", fsyncCell)
		}
		b.WriteString("\n")
	}
	for _, bl := range r.Baselines {
		open, late := fmtOpen(bl.Open, nil)
		row("bare ("+sizeName(bl.BodyBytes)+")", bl.Closed, bl.Open, "1", "", open, "", "", late, httpCodes(bl.Closed), "")
	}
	scenarioRow := func(s *ScenarioResult, name, codes string) {
		if s.Closed == nil {
			fmt.Fprintf(&b, "| %s | failed: %s |\n", name, strings.ReplaceAll(firstLine(s.Error), "|", "/"))
			return
		}
		fs := ""
		if s.EventsPerFsync > 0 {
			fs = strconv.FormatFloat(s.EventsPerFsync, 'f', 1, 64)
		}
		if s.RoundTripsPerRequest > 0 {
			fs = strconv.FormatFloat(s.RoundTripsPerRequest, 'f', 2, 64) + " RT"
			if s.CommandsPerRequest > 0 {
				fs = strconv.FormatFloat(s.CommandsPerRequest, 'f', 2, 64) + " cmds in " + fs
			}
			if s.MarksPerBatch > 0 {
				fs += fmt.Sprintf(" (%.1f marks/batch)", s.MarksPerBatch)
			}
		}
		open, late := fmtOpen(s.Open, s.OpenP99s)
		bareOpen := ""
		if s.BareOpenP99 > 0 {
			bareOpen = fmtDur(s.BareOpenP99)
		}
		row(name, s.Closed, s.Open, s.ratioText(), fmtCPU(s.GatewayCPU, s.BareCPU, s.SinkCPU), open, bareOpen,
			fmtCPU(s.OpenGatewayCPU, s.OpenBareCPU, s.OpenSinkCPU), late, codes, fs)
	}
	if rl := r.Relay; rl != nil {
		scenarioRow(rl, "relay ("+sizeName(rl.BodyBytes)+", forward only)", httpCodes(rl.Closed))
	}
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		codes := ""
		if s.Closed != nil {
			codes = fmtCounts(s.Closed.Codes)
		}
		if len(s.Unexpected) > 0 {
			codes += " (unexpected: " + strings.Join(s.Unexpected, ", ") + ")"
		}
		scenarioRow(s, s.Name, codes)
	}
	b.WriteString("\nreq/s and p50…max: closed loop (every connection sends as soon as it has its answer); req/s is the answers to the requests sent in the measured window, over the window. " +
		"× bare: req/s over the bare fasthttp server's with the same body size, measured right before the scenario under the same load (the bare rows are the suite's first measurement); " +
		"with several rounds, bare and scenario runs alternate, the median ratio is shown with the rounds' range in brackets, and the scenario's other columns are from the median round. " +
		"CPU/req: the gateway process's CPU time (user + system) per answered request in the closed-loop run, then the bare server's in the run beside it, and in brackets bare's over the gateway's (medians over the rounds); neighbours' load moves it far less than req/s. + sink: the flow-engine sink's CPU per answered request, which is per event where every request forwards one (the accept and body scenarios), and less than that in mix, where some are refused. " +
		"p99 at ½ load: open loop at half the closed-loop req/s, latency from each request's intended send time; with several rounds, one open-loop run per round, the median p99 shown with the rounds' range in brackets, and late from the median run. " +
		"relay: a fasthttp server that only forwards each request's body to the sink, one at a time per connection, and answers when the sink has; CPU/req is the relay's: the ceiling of the scenarios that forward over TCP. " +
		"bare's p99 there: the bare server's open loop at the same rate and body size, run right before each of the scenario's (the median over the rounds), so a stall of the machine shows in both. " +
		"CPU/req there: CPU/req over those open-loop runs, where the scenario and bare answer at one rate: what a request costs at that load (closed-loop CPU/req falls as a process answers more requests per wake-up, so a slower path also looks dearer there). " +
		"late: requests sent more than 1ms after their intended time or not sent at all (those are in the percentiles with how long they had waited by the run's end). codes: the answers' `code`. errors: requests without an answer in the closed loop, and in brackets in the open loop shown, whose percentiles leave them out. " +
		"events/fsync and Redis per req: from the gateway's counters over the closed-loop run shown (warm-up included). Redis per req: commands the gateway sent to Redis per answered request and the round trips they took (concurrent ones also share network writes); Client-Tokens' done marks are sent after the answers, in batches (marks/batch), each batch one round trip.\n")
	if r.fileSinkMetricsMissing() {
		b.WriteString("\nThe gateway exposes no file-sink counters (" + metricSinkEvents + ", " + metricSinkFsyncs +
			"), so events per fsync is not reported.\n")
	}
	if r.Relay != nil && r.Relay.Error != "" && r.Relay.Closed != nil {
		fmt.Fprintf(&b, "\nrelay: %s\n", firstLine(r.Relay.Error))
	}
	for _, s := range r.Scenarios {
		if s.Error != "" && s.Closed != nil {
			fmt.Fprintf(&b, "\n%s: %s\n", s.Name, firstLine(s.Error))
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// fmtCPU is a CPU/req cell: the gateway's CPU per request, the bare
// server's, bare's over the gateway's in brackets, and the sink's; empty
// when not measured.
func fmtCPU(gw, bare, sink time.Duration) string {
	if gw <= 0 || bare <= 0 {
		return ""
	}
	c := fmt.Sprintf("%s · %s (%.2f)", fmtDur(gw), fmtDur(bare), float64(bare)/float64(gw))
	if sink > 0 {
		c += " + sink " + fmtDur(sink)
	}
	return c
}

// httpCodes is the codes cell of a server that answers no `code`: its
// HTTP statuses.
func httpCodes(r *Result) string {
	if r == nil {
		return ""
	}
	return "HTTP " + fmtCounts(r.Status)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// Save writes <date>.json and <date>.svg into dir and returns their
// paths. A full run never overwrites an earlier one: the day's second
// run is <date>b.*, the third <date>c.*, and so on. A quick run is
// <date>-quick.*, which the day's next quick run replaces, so a smoke run
// never takes the place of full results.
func (r *Report) Save(dir string) (jsonPath, svgPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	base := r.Date
	if r.Settings.Quick {
		base += "-quick"
	} else if base, err = freeName(dir, base); err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, base+".json")
	svgPath = filepath.Join(dir, base+".svg")
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(jsonPath, append(js, '\n'), 0o644); err != nil {
		return "", "", err
	}
	var svg bytes.Buffer
	if err := r.WriteSVG(&svg); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(svgPath, svg.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	return jsonPath, svgPath, nil
}

// freeName returns date, or date followed by the first letter from b to z
// for which neither a .json nor a .svg exists in dir.
func freeName(dir, date string) (string, error) {
	for c := 'a'; c <= 'z'; c++ {
		name := date
		if c > 'a' {
			name += string(c)
		}
		_, errJSON := os.Stat(filepath.Join(dir, name+".json"))
		_, errSVG := os.Stat(filepath.Join(dir, name+".svg"))
		if errors.Is(errJSON, fs.ErrNotExist) && errors.Is(errSVG, fs.ErrNotExist) {
			return name, nil
		}
	}
	return "", fmt.Errorf("%s holds results for %s up to %sz already: move some away", dir, date, date)
}
