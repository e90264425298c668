package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Suite runs scenarios against a real hookgate process and compares them
// with a bare fasthttp server under the same load.
type Suite struct {
	// Hookgate is the gateway binary to run as `hookgate serve -config F`.
	Hookgate string
	// Self is the command line that starts this program; the suite appends
	// `sink -listen ADDR` or `bare -listen ADDR` to start the helper
	// servers. SelfEnv is added to their environment.
	Self    []string
	SelfEnv []string
	// Scenarios are run in order.
	Scenarios []Scenario
	// Conns is the number of connections of every run.
	Conns int
	// Duration is each run's measured window, Warmup what is sent before it.
	Duration time.Duration
	Warmup   time.Duration
	// Rate is the open-loop arrival rate; 0 runs each scenario at half of
	// its own closed-loop throughput.
	Rate float64
	// Rounds is how many times each scenario's closed-loop run is made,
	// each right after a bare run; its ratio is the median (default 1).
	Rounds int
	// LogLevel is the gateway's log level.
	LogLevel string
	// Dir holds the generated configurations, file sinks and logs.
	Dir string
	// Quick marks a smoke run in the report.
	Quick bool
	// Progress gets one line per finished run; nil discards them.
	Progress io.Writer

	// barePID and sinkPID are the helper servers' processes, whose CPU
	// time the scenarios measure.
	barePID, sinkPID int
}

// Machine describes where the suite ran.
type Machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Kernel     string `json:"kernel,omitempty"`
	CPU        string `json:"cpu,omitempty"`
	Hookgate   string `json:"hookgate_version,omitempty"`
}

// Settings are the suite's knobs as run.
type Settings struct {
	Conns    int           `json:"conns"`
	Duration time.Duration `json:"duration_ns"`
	Warmup   time.Duration `json:"warmup_ns"`
	// Rate is the fixed open-loop rate, 0 when each scenario ran at half
	// its own closed-loop throughput.
	Rate     float64 `json:"rate,omitempty"`
	LogLevel string  `json:"log_level"`
	Rounds   int     `json:"rounds,omitempty"`
	Quick    bool    `json:"quick,omitempty"`
}

// Baseline is the bare server's numbers for one body size.
type Baseline struct {
	BodyBytes int     `json:"body_bytes"`
	Closed    *Result `json:"closed"`
	Open      *Result `json:"open,omitempty"`
}

// ScenarioResult is one scenario's numbers.
type ScenarioResult struct {
	Name        string `json:"name"`
	About       string `json:"about"`
	Sink        string `json:"sink"`
	BodyBytes   int    `json:"body_bytes"`
	Automations int    `json:"automations"`
	// Closed is the closed-loop run: the throughput.
	Closed *Result `json:"closed,omitempty"`
	// Open is the open-loop run at half of Closed's throughput (or the
	// suite's Rate): latency under a load the gateway can carry. With
	// several rounds there is one open-loop run per round, and Open is
	// the one whose p99 is the median; OpenP99s are every round's p99, in
	// the order run.
	Open     *Result         `json:"open,omitempty"`
	OpenP99s []time.Duration `json:"open_p99s_ns,omitempty"`
	// BareOpenP99 is the bare server's open-loop p99 at Open's rate and
	// body size, run right before each of the scenario's open-loop runs
	// (the median over the rounds): the machine's own tail at that load
	// and at that moment, so a stall of the machine is told apart from
	// one of the gateway. BareOpenP99s are every round's.
	BareOpenP99  time.Duration   `json:"bare_open_p99_ns,omitempty"`
	BareOpenP99s []time.Duration `json:"bare_open_p99s_ns,omitempty"`
	// BareRPS is the bare server's closed-loop throughput with the same
	// body size, measured right before Closed.
	BareRPS float64 `json:"bare_rps_adjacent"`
	// Ratio is Closed's throughput over BareRPS. With several rounds,
	// Closed is the round whose ratio is the median.
	Ratio float64 `json:"ratio_to_bare"`
	// Ratios are every round's ratio, in the order run (several rounds
	// only).
	Ratios []float64 `json:"ratios,omitempty"`
	// CPU time per answered request in the closed-loop runs, the median
	// over the rounds: the gateway's, the flow-engine sink's (http sink
	// scenarios), and the bare server's in the run beside each. CPURatio
	// is BareCPU over GatewayCPU: the share of the bare server's
	// efficiency the gateway keeps, a measure the neighbours' load moves
	// far less than throughput. Zero where /proc is not there to read.
	GatewayCPU time.Duration `json:"gateway_cpu_per_request_ns,omitempty"`
	SinkCPU    time.Duration `json:"sink_cpu_per_request_ns,omitempty"`
	BareCPU    time.Duration `json:"bare_cpu_per_request_ns,omitempty"`
	CPURatio   float64       `json:"cpu_ratio_to_bare,omitempty"`
	// The same in the open-loop runs, where the scenario and the bare
	// server beside it answer at one rate: what a request costs at a
	// given load. Closed-loop CPU per request is not that: a process
	// answering more requests per wake-up pays less for each, so a path
	// that answers fewer per second also looks dearer per request there.
	OpenGatewayCPU time.Duration `json:"open_gateway_cpu_per_request_ns,omitempty"`
	OpenSinkCPU    time.Duration `json:"open_sink_cpu_per_request_ns,omitempty"`
	OpenBareCPU    time.Duration `json:"open_bare_cpu_per_request_ns,omitempty"`
	// Forwarded is the events the flow-engine sink took during the
	// closed-loop run (the median round's), its warm-up included (http
	// and unix sinks only).
	Forwarded uint64 `json:"forwarded,omitempty"`
	// EventsPerFsync is the file sink's group-commit batch size in the
	// closed-loop run (the median round's, warm-up included), from the
	// gateway's metrics (file sink only).
	EventsPerFsync float64 `json:"events_per_fsync,omitempty"`
	// CommandsPerRequest is the Redis commands per answered request in
	// the closed-loop run (the median round's), warm-up included, and
	// RoundTripsPerRequest the
	// round trips they took: a batch of done marks, sent after the
	// answers, is one. MarksPerBatch is the done marks per batch. From
	// the gateway's metrics (cluster scenarios only). Results written
	// before the marks were batched have no CommandsPerRequest, and each
	// of their commands was a round trip.
	CommandsPerRequest   float64 `json:"redis_commands_per_request,omitempty"`
	RoundTripsPerRequest float64 `json:"redis_round_trips_per_request,omitempty"`
	MarksPerBatch        float64 `json:"redis_done_marks_per_batch,omitempty"`
	// Unexpected lists answer codes the scenario should not see.
	Unexpected []string `json:"unexpected_codes,omitempty"`
	// Error says why the scenario has no numbers, or what went wrong.
	Error string `json:"error,omitempty"`
}

// Report is a suite run.
type Report struct {
	Date      string     `json:"date"`
	Started   time.Time  `json:"started"`
	Machine   Machine    `json:"machine"`
	Settings  Settings   `json:"settings"`
	Baselines []Baseline `json:"baselines"`
	// Relay is the relay server's run (ServerRelay), made when a scenario
	// forwards to the sink over TCP: the ceiling of those scenarios. Its
	// GatewayCPU is the relay's.
	Relay     *ScenarioResult  `json:"relay,omitempty"`
	Scenarios []ScenarioResult `json:"scenarios"`
}

// Baseline returns the bare numbers for a body size, nil when not run.
func (r *Report) Baseline(bodyBytes int) *Baseline {
	for i := range r.Baselines {
		if r.Baselines[i].BodyBytes == bodyBytes {
			return &r.Baselines[i]
		}
	}
	return nil
}

func (s *Suite) progress(format string, args ...any) {
	if s.Progress != nil {
		fmt.Fprintf(s.Progress, format+"\n", args...)
	}
}

// Run runs the baselines and then every scenario. A scenario that fails
// is reported with its error and the suite goes on; Run fails only when
// nothing can be measured (no bare server, no sink, a cancelled ctx).
func (s *Suite) Run(ctx context.Context) (*Report, error) {
	if s.Conns <= 0 || s.Duration <= 0 || len(s.Scenarios) == 0 || len(s.Self) == 0 {
		return nil, fmt.Errorf("suite needs conns, a duration, scenarios and its own command line")
	}
	if s.LogLevel == "" {
		s.LogLevel = "warn"
	}
	if _, err := os.Stat(s.Hookgate); err != nil {
		return nil, fmt.Errorf("hookgate binary: %w (build it with `make build` or pass -hookgate)", err)
	}
	rep := &Report{
		Started: time.Now(),
		Date:    time.Now().Format("2006-01-02"),
		Machine: s.machine(),
		Settings: Settings{Conns: s.Conns, Duration: s.Duration, Warmup: s.Warmup, Rate: s.Rate,
			LogLevel: s.LogLevel, Rounds: s.Rounds, Quick: s.Quick},
	}

	// The bare baseline, once per body size the scenarios use.
	var sizes []int
	for i := range s.Scenarios {
		if n := s.Scenarios[i].BodyBytes(); !slices.Contains(sizes, n) {
			sizes = append(sizes, n)
		}
	}
	bare, bareAddr, err := startServer(s.Self, s.SelfEnv, ServerBare, filepath.Join(s.Dir, "bare.log"))
	if err != nil {
		return nil, err
	}
	defer bare.stop(10 * time.Second)
	s.barePID = bare.cmd.Process.Pid
	if err := s.baselines(ctx, rep, sizes, bareAddr); err != nil {
		return nil, err
	}

	// The flow-engine sink, shared by every http scenario.
	sinkAddr := ""
	if slices.ContainsFunc(s.Scenarios, func(sc Scenario) bool { return sc.Sink.engine() }) {
		sink, addr, err := startServer(s.Self, s.SelfEnv, ServerSink, filepath.Join(s.Dir, "sink.log"),
			"-socket", s.sinkSocket())
		if err != nil {
			return nil, err
		}
		defer sink.stop(10 * time.Second)
		sinkAddr = addr
		s.sinkPID = sink.cmd.Process.Pid
	}
	if slices.ContainsFunc(s.Scenarios, func(sc Scenario) bool { return sc.Sink == SinkHTTP }) {
		rep.Relay = s.relay(ctx, sinkAddr, bareAddr)
	}

	for i := range s.Scenarios {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		sr := s.scenario(ctx, &s.Scenarios[i], sinkAddr, bareAddr, rep)
		rep.Scenarios = append(rep.Scenarios, sr)
		if sr.Error != "" {
			s.progress("%s: %s", sr.Name, sr.Error)
		}
	}
	return rep, ctx.Err()
}

// sinkSocket is the Unix socket the flow-engine sink serves on beside TCP.
func (s *Suite) sinkSocket() string { return filepath.Join(s.Dir, "sink.sock") }

func (s *Suite) load(rate float64) Load {
	return Load{Conns: s.Conns, Duration: s.Duration, Warmup: s.Warmup, Rate: rate}
}

// metered runs the suite's load at rate (0: closed loop) against t and
// returns, beside its result, the CPU time each of pids used from the
// measured window's opening to the run's end, nil where /proc could not
// be read.
func (s *Suite) metered(ctx context.Context, rate float64, t Target, pids ...int) (*Result, []time.Duration, error) {
	m := newCPUMeter(pids...)
	l := s.load(rate)
	l.AtWindow = m.Start
	r, err := l.Run(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	return r, m.Stop(), nil
}

// openRate is the open-loop rate after a closed-loop run of rps.
func (s *Suite) openRate(rps float64) float64 {
	if s.Rate > 0 {
		return s.Rate
	}
	return rps / 2
}

func (s *Suite) baselines(ctx context.Context, rep *Report, sizes []int, addr string) error {
	for _, n := range sizes {
		reqs, err := BareRequests(n)
		if err != nil {
			return err
		}
		t := Target{Addr: addr, Requests: reqs}
		b := Baseline{BodyBytes: n}
		if b.Closed, err = s.load(0).Run(ctx, t); err != nil {
			return fmt.Errorf("bare baseline: %w", err)
		}
		if rate := s.openRate(b.Closed.RPS); rate >= 1 {
			if b.Open, err = s.load(rate).Run(ctx, t); err != nil {
				return fmt.Errorf("bare baseline: %w", err)
			}
		}
		rep.Baselines = append(rep.Baselines, b)
		s.progress("bare %s: %.0f req/s, p99 %s", sizeName(n), b.Closed.RPS, fmtDur(b.Closed.Latency.P99))
	}
	return nil
}

// Counters scraped from the gateway's admin /metrics for the file sink
// and the cluster scenarios.
const (
	metricRoundTrips  = "hookgate_cluster_round_trips_total"
	metricDoneMarks   = "hookgate_cluster_done_marks_total"
	metricMarkBatches = "hookgate_cluster_done_mark_batches_total"
	metricAnswered    = "hookgate_request_duration_seconds_count"
	metricSinkEvents  = "hookgate_file_sink_events_total"
	metricSinkFsyncs  = "hookgate_file_sink_fsyncs_total"
	// sinkEventsKey is the flow-engine sink's own count among a
	// scenario's counters.
	sinkEventsKey = "sink events"
)

// counters reads counters of the processes under test that only grow,
// by name; measure reads them at both ends of each closed-loop run. A
// counter it could not read is absent.
type counters func() map[string]float64

// delta is after minus before for each counter read both times.
func delta(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, a := range after {
		if b, ok := before[k]; ok {
			d[k] = a - b
		}
	}
	return d
}

// scenario measures one scenario against a gateway of its own. Its result
// is named so that what the deferred stop of the gateway finds (an exit
// with an error, or a gateway that would not stop) reaches the report.
func (s *Suite) scenario(ctx context.Context, sc *Scenario, sinkAddr, bareAddr string, rep *Report) (sr ScenarioResult) {
	sr = ScenarioResult{Name: sc.Name, About: sc.About, Sink: sc.Sink.String(), BodyBytes: sc.BodyBytes()}
	fail := func(err error) ScenarioResult {
		sr.Error = err.Error()
		return sr
	}
	f, err := NewFleet(sc.Groups)
	if err != nil {
		return fail(err)
	}
	sr.Automations = f.Automations()
	reqs, err := Requests(sc, f)
	if err != nil {
		return fail(err)
	}
	listen, err := freeAddr()
	if err != nil {
		return fail(err)
	}
	admin, err := freeAddr()
	if err != nil {
		return fail(err)
	}
	dir := filepath.Join(s.Dir, sc.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	p := ConfigParams{Listen: listen, AdminListen: admin, LogLevel: s.LogLevel,
		Downstream: "http://" + sinkAddr + "/events", Pipeline: sc.Pipeline}
	if sc.Cluster {
		redis, url, err := startRedis(dir)
		if err != nil {
			return fail(err)
		}
		defer redis.stop(10 * time.Second)
		p.RedisURL = url
	}
	switch sc.Sink {
	case SinkFile:
		p.Downstream = "file:" + filepath.Join(dir, "events.jsonl")
	case SinkUnix:
		p.Downstream, p.Socket = "http://sink/events", s.sinkSocket()
	}
	cfgPath := filepath.Join(dir, "hookgate.yaml")
	if err := os.WriteFile(cfgPath, f.AppendYAML(nil, p), 0o600); err != nil {
		return fail(err)
	}
	gw, _, err := startChild("hookgate", []string{s.Hookgate, "serve", "-config", cfgPath}, nil,
		filepath.Join(dir, "hookgate.log"), false)
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err := gw.stop(30 * time.Second); err != nil && sr.Error == "" {
			sr.Error = "stopping the gateway: " + err.Error()
		}
		// The file sink's events are not needed after the run.
		_ = os.Remove(filepath.Join(dir, "events.jsonl"))
	}()
	if err := gw.waitReady(ctx, listen, admin, 30*time.Second); err != nil {
		return fail(err)
	}

	metricsURL := "http://" + admin + "/metrics"
	var metrics []string
	if sc.Cluster {
		metrics = append(metrics, metricRoundTrips, metricDoneMarks, metricMarkBatches, metricAnswered)
	}
	if sc.Sink == SinkFile {
		metrics = append(metrics, metricSinkEvents, metricSinkFsyncs)
	}
	read := func() map[string]float64 {
		m := map[string]float64{}
		if len(metrics) > 0 {
			if got, err := scrape(metricsURL, metrics...); err == nil {
				m = got
			}
		}
		if sc.Sink.engine() {
			if n, err := sinkEvents(sinkAddr); err == nil {
				m[sinkEventsKey] = float64(n)
			}
		}
		return m
	}
	pids := []int{gw.cmd.Process.Pid}
	if sc.Sink.engine() {
		pids = append(pids, s.sinkPID)
	}
	counted, err := s.measure(ctx, &sr, Target{Addr: listen, Requests: reqs}, bareAddr, pids, read)
	if err != nil {
		return fail(err)
	}
	if n, ok := counted[sinkEventsKey]; ok {
		sr.Forwarded = uint64(n)
	}
	if sc.Cluster {
		d := func(m string) float64 { return counted[m] }
		if n := d(metricAnswered); n > 0 {
			sr.CommandsPerRequest = d(metricRoundTrips) / n
			sr.RoundTripsPerRequest = (d(metricRoundTrips) - d(metricDoneMarks) + d(metricMarkBatches)) / n
		}
		if b := d(metricMarkBatches); b > 0 {
			sr.MarksPerBatch = d(metricDoneMarks) / b
		}
	}
	if sc.Sink == SinkFile {
		ev, okE := counted[metricSinkEvents]
		fs, okF := counted[metricSinkFsyncs]
		if okE && okF && fs > 0 {
			sr.EventsPerFsync = ev / fs
		}
	}
	for code := range sr.Closed.Codes {
		if !slices.ContainsFunc(sc.Expect, func(c int64) bool { return fmt.Sprint(c) == code }) {
			sr.Unexpected = append(sr.Unexpected, code)
		}
	}
	slices.Sort(sr.Unexpected)
	s.progress("%s", sr.summary())
	return sr
}

// relay measures the relay server in front of the sink as a scenario of
// its own: what forwarding alone costs on this machine.
func (s *Suite) relay(ctx context.Context, sinkAddr, bareAddr string) *ScenarioResult {
	sr := &ScenarioResult{Name: "relay", About: "a fasthttp server that only forwards each request to the sink", Sink: SinkHTTP.String(), BodyBytes: 1 << 10}
	relay, addr, err := startServer(s.Self, s.SelfEnv, ServerRelay, filepath.Join(s.Dir, "relay.log"), "-to", sinkAddr)
	if err != nil {
		sr.Error = err.Error()
		return sr
	}
	defer relay.stop(10 * time.Second)
	reqs, err := BareRequests(sr.BodyBytes)
	if err == nil {
		_, err = s.measure(ctx, sr, Target{Addr: addr, Requests: reqs}, bareAddr, []int{relay.cmd.Process.Pid, s.sinkPID}, nil)
	}
	if err != nil {
		sr.Error = err.Error()
		return sr
	}
	s.progress("%s", sr.summary())
	return sr
}

// summary is the progress line of a measured scenario.
func (sr *ScenarioResult) summary() string {
	line := fmt.Sprintf("%s: %.0f req/s (%s× bare), p99 %s", sr.Name, sr.Closed.RPS, sr.ratioText(), fmtDur(sr.Closed.Latency.P99))
	if c := fmtCPU(sr.GatewayCPU, sr.BareCPU, sr.SinkCPU); c != "" {
		line += ", CPU/req " + c
	}
	if sr.Open != nil {
		line += fmt.Sprintf(", p99 at %.0f req/s %s (bare %s)", sr.Open.Rate, p99Range(sr.Open, sr.OpenP99s), fmtDur(sr.BareOpenP99))
		if c := fmtCPU(sr.OpenGatewayCPU, sr.OpenBareCPU, sr.OpenSinkCPU); c != "" {
			line += ", CPU/req there " + c
		}
	}
	return line
}

// measure makes sr's closed-loop rounds against t, each right after the
// bare server's with the same body size, and then its open-loop rounds.
// pids are the processes whose CPU time is the scenario's: the server
// under test first, then the flow-engine sink when it forwards there.
// It returns how much each of count's counters grew over the closed-loop
// run it reports (the median round's), warm-up included; count may be nil.
func (s *Suite) measure(ctx context.Context, sr *ScenarioResult, t Target, bareAddr string, pids []int, count counters) (map[string]float64, error) {
	// The bare server again, right before the scenario and with its body
	// size: the machine's load drifts over a suite, and the ratio should
	// compare runs that saw the same conditions. With several rounds the
	// two alternate, and the round with the median ratio is reported.
	bareReqs, err := BareRequests(sr.BodyBytes)
	if err != nil {
		return nil, err
	}
	type round struct {
		bare, closed *Result
		ratio        float64
		counted      map[string]float64
	}
	var rounds []round
	var cpu cpuPerRequest
	for range max(s.Rounds, 1) {
		adjacent, bareUsed, err := s.metered(ctx, 0, Target{Addr: bareAddr, Requests: bareReqs}, s.barePID)
		if err != nil {
			return nil, fmt.Errorf("bare run beside the scenario: %w", err)
		}
		var before map[string]float64
		if count != nil {
			before = count()
		}
		closed, used, err := s.metered(ctx, 0, t, pids...)
		if err != nil {
			return nil, err
		}
		cpu.add(used, closed, bareUsed, adjacent)
		r := round{bare: adjacent, closed: closed}
		if count != nil {
			r.counted = delta(before, count())
		}
		if adjacent.RPS > 0 {
			r.ratio = closed.RPS / adjacent.RPS
		}
		rounds = append(rounds, r)
		if s.Rounds > 1 {
			sr.Ratios = append(sr.Ratios, r.ratio)
		}
	}
	sr.GatewayCPU, sr.SinkCPU, sr.BareCPU = cpu.medians()
	if sr.GatewayCPU > 0 {
		sr.CPURatio = float64(sr.BareCPU) / float64(sr.GatewayCPU)
	}
	med := slices.Clone(rounds)
	slices.SortFunc(med, func(a, b round) int { return cmp.Compare(a.ratio, b.ratio) })
	pick := med[(len(med)-1)/2]
	sr.BareRPS, sr.Closed, sr.Ratio = pick.bare.RPS, pick.closed, pick.ratio
	if rate := s.openRate(sr.Closed.RPS); rate >= 1 {
		if err := s.openRounds(ctx, sr, rate, t, Target{Addr: bareAddr, Requests: bareReqs}, pids); err != nil {
			return nil, err
		}
	}
	return pick.counted, nil
}

// openRounds makes a scenario's open-loop runs at rate, one per round,
// each right after the bare server's at the same rate, and keeps the
// median p99 of each: a single run's p99 is at the mercy of one stall of
// a shared machine. The CPU time per request of pids (as measure's) and
// of the bare server is taken over each run too.
func (s *Suite) openRounds(ctx context.Context, sr *ScenarioResult, rate float64, t, bare Target, pids []int) error {
	var opens []*Result
	var cpu cpuPerRequest
	for range max(s.Rounds, 1) {
		b, bareUsed, err := s.metered(ctx, rate, bare, s.barePID)
		if err != nil {
			return fmt.Errorf("bare open loop beside the scenario: %w", err)
		}
		o, used, err := s.metered(ctx, rate, t, pids...)
		if err != nil {
			return err
		}
		cpu.add(used, o, bareUsed, b)
		sr.BareOpenP99s = append(sr.BareOpenP99s, b.Latency.P99)
		sr.OpenP99s = append(sr.OpenP99s, o.Latency.P99)
		opens = append(opens, o)
	}
	sr.BareOpenP99 = median(sr.BareOpenP99s)
	sr.OpenGatewayCPU, sr.OpenSinkCPU, sr.OpenBareCPU = cpu.medians()
	slices.SortStableFunc(opens, func(a, b *Result) int { return cmp.Compare(a.Latency.P99, b.Latency.P99) })
	sr.Open = opens[(len(opens)-1)/2]
	if len(opens) == 1 {
		sr.OpenP99s, sr.BareOpenP99s = nil, nil
	}
	return nil
}

// p99Range is r's p99, followed by the range of the rounds' p99s when
// there were several: "812µs (604µs–4.50ms)".
func p99Range(r *Result, p99s []time.Duration) string {
	t := fmtDur(r.Latency.P99)
	if len(p99s) > 1 {
		t += fmt.Sprintf(" (%s–%s)", fmtDur(slices.Min(p99s)), fmtDur(slices.Max(p99s)))
	}
	return t
}

func (s *Suite) machine() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	} else if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command(s.Hookgate, "version").Output(); err == nil {
		m.Hookgate = strings.TrimSpace(string(out))
	}
	return m
}

// ratioText is the ratio to bare cut to two decimals, followed by the
// range of the rounds' ratios when there were several: "0.72 (0.66–0.78)".
// Cut, not rounded, so a ratio never reads as reaching a target it
// misses: 0.849 is 0.84. The JSON keeps the exact values.
func (sr *ScenarioResult) ratioText() string {
	t := cut2(sr.Ratio)
	if len(sr.Ratios) > 1 {
		t += " (" + cut2(slices.Min(sr.Ratios)) + "–" + cut2(slices.Max(sr.Ratios)) + ")"
	}
	return t
}

// cut2 formats r with two decimals, dropping the rest. The nudge keeps a
// ratio such as 0.85, stored as 0.8499999…, at 0.85.
func cut2(r float64) string {
	return strconv.FormatFloat(math.Floor(r*100+1e-9)/100, 'f', 2, 64)
}

// median returns the median of ds (the lower of the middle two), 0 for
// none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	return s[(len(s)-1)/2]
}
