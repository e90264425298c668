package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/bench"
)

// runAsMain makes this test binary act as hookbench itself, so the suite
// can start it in its sink and bare modes without building it.
const runAsMain = "HOOKBENCH_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSuiteSmoke builds the gateway and runs a tiny suite against it, the
// way `make bench` does: the real binary, the sink and bare servers as
// subprocesses, the report files.
func TestSuiteSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	dir := t.TempDir()
	gw := filepath.Join(dir, "hookgate")
	if out, err := exec.Command("go", "build", "-o", gw, "../../cmd/hookgate").CombinedOutput(); err != nil {
		t.Fatalf("building hookgate: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(dir, "results")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "-hookgate", gw, "-quick", "-scenarios", "accept_json,unknown_url",
		"-duration", "500ms", "-conns", "8", "-rounds", "3", "-out", results, "-workdir", dir)
	cmd.Env = append(os.Environ(), runAsMain+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hookbench: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	md := stdout.String()
	for _, want := range []string{"| scenario | req/s |", "| bare (1 KB) |", "| accept_json |", "| unknown_url |", "800004404 100%"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	date := time.Now().Format("2006-01-02")
	data, err := os.ReadFile(filepath.Join(results, date+"-quick.json"))
	if err != nil {
		// The run may have straddled midnight.
		matches, _ := filepath.Glob(filepath.Join(results, "*-quick.json"))
		if len(matches) != 1 {
			t.Fatalf("no JSON report: %v; stderr:\n%s", err, stderr.String())
		}
		data, _ = os.ReadFile(matches[0])
	}
	var rep bench.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Machine.NumCPU == 0 || rep.Machine.GoVersion == "" || !rep.Settings.Quick || rep.Settings.Conns != 8 || rep.Settings.Rounds != 3 {
		t.Fatalf("machine/settings: %+v %+v", rep.Machine, rep.Settings)
	}
	if len(rep.Baselines) != 1 || rep.Baselines[0].Closed.RPS <= 0 {
		t.Fatalf("baselines: %+v", rep.Baselines)
	}
	if len(rep.Scenarios) != 2 {
		t.Fatalf("%d scenarios", len(rep.Scenarios))
	}
	wantCode := map[string]string{"accept_json": "0", "unknown_url": "800004404"}
	for _, s := range rep.Scenarios {
		if s.Error != "" || s.Closed == nil {
			t.Fatalf("%s: %s", s.Name, s.Error)
		}
		c := s.Closed
		if c.RPS <= 0 || c.Answers == 0 || s.Ratio <= 0 || c.Latency.P99 <= 0 {
			t.Errorf("%s: rps %g answers %d ratio %g p99 %s", s.Name, c.RPS, c.Answers, s.Ratio, c.Latency.P99)
		}
		if len(c.Codes) != 1 || c.Codes[wantCode[s.Name]] != c.Answers || len(s.Unexpected) != 0 || len(c.Errors) != 0 {
			t.Errorf("%s: codes %v, errors %v", s.Name, c.Codes, c.Errors)
		}
		// Three rounds, and the one reported is their median.
		if len(s.Ratios) != 3 || s.Ratio != slices.Sorted(slices.Values(s.Ratios))[1] || s.Ratio != c.RPS/s.BareRPS {
			t.Errorf("%s: ratio %g of rounds %v (%g / %g)", s.Name, s.Ratio, s.Ratios, c.RPS, s.BareRPS)
		}
		// CPU per request, read from /proc, for the gateway and the bare
		// server; the sink's for the scenario that forwards.
		if _, err := os.Stat("/proc/self/stat"); err == nil {
			if s.GatewayCPU <= 0 || s.BareCPU <= 0 || s.CPURatio <= 0 || (s.Name == "accept_json") != (s.SinkCPU > 0) {
				t.Errorf("%s: CPU per request %v, bare %v, ratio %g, sink %v", s.Name, s.GatewayCPU, s.BareCPU, s.CPURatio, s.SinkCPU)
			}
			// And at half load, over the open-loop runs, where the
			// scenario and the bare server beside it answer at one rate.
			if s.OpenGatewayCPU <= 0 || s.OpenBareCPU <= 0 || (s.Name == "accept_json") != (s.OpenSinkCPU > 0) {
				t.Errorf("%s: CPU per request at half load %v, bare %v, sink %v", s.Name, s.OpenGatewayCPU, s.OpenBareCPU, s.OpenSinkCPU)
			}
		}
		if s.Open == nil || s.Open.Sent == 0 || s.Open.Rate <= 0 {
			t.Errorf("%s: no open-loop run: %+v", s.Name, s.Open)
		}
		// An open-loop run per round, each beside the bare server's at
		// the same rate; the one reported has the median p99.
		if len(s.OpenP99s) != 3 || len(s.BareOpenP99s) != 3 || s.Open != nil && s.Open.Latency.P99 != slices.Sorted(slices.Values(s.OpenP99s))[1] ||
			s.BareOpenP99 != slices.Sorted(slices.Values(s.BareOpenP99s))[1] || s.BareOpenP99 <= 0 {
			t.Errorf("%s: open p99s %v (reported %v), bare's %v (reported %v)", s.Name, s.OpenP99s, s.Open, s.BareOpenP99s, s.BareOpenP99)
		}
	}
	// The relay ran, beside the bare server, because accept_json forwards
	// over TCP; every request it answered 200 had reached the sink.
	if rl := rep.Relay; rl == nil || rl.Error != "" || rl.Closed == nil || rl.Closed.Answers == 0 ||
		rl.Closed.Status["200"] != rl.Closed.Answers || len(rl.Ratios) != 3 || rl.Open == nil || len(rl.OpenP99s) != 3 {
		t.Errorf("relay: %+v", rl)
	} else if !strings.Contains(md, "| relay (1 KB, forward only) |") {
		t.Errorf("markdown lacks the relay row:\n%s", md)
	}
	// The sink's count is the reported closed-loop run's, warm-up
	// included: at least an event for every code 0 answered in it,
	// nothing lost, and at most one for every request the run sent, none
	// from the other rounds or the open loops.
	if acc := rep.Scenarios[0]; acc.Closed != nil {
		c := acc.Closed
		if sent := c.Warmup + c.Answers + c.ErrorCount(); acc.Forwarded < c.Codes["0"] || acc.Forwarded > sent {
			t.Errorf("accept_json: sink took %d events in a run that sent %d requests (%d in the warm-up) and had %d answered code 0",
				acc.Forwarded, sent, c.Warmup, c.Codes["0"])
		}
	}

	svg, err := os.Open(filepath.Join(results, rep.Date+"-quick.svg"))
	if err != nil {
		t.Fatal(err)
	}
	defer svg.Close()
	dec := xml.NewDecoder(svg)
	for {
		if _, err := dec.Token(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("SVG: %v", err)
		}
	}
}

func TestFlags(t *testing.T) {
	if err := run(context.Background(), []string{"-scenarios", "nope", "-hookgate", "/nonexistent"}); err == nil ||
		!strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown scenario: %v", err)
	}
	if err := run(context.Background(), []string{"extra"}); err == nil {
		t.Fatal("a stray argument must fail")
	}
}
