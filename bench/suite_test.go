package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writerFunc is an io.Writer that hands each write to a function.
type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// findProcess returns the pid of the process whose command line is argv,
// from /proc, or 0.
func findProcess(t *testing.T, argv ...string) int {
	t.Helper()
	want := []byte(strings.Join(argv, "\x00") + "\x00")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Equal(cmdline, want) {
			return pid
		}
	}
	return 0
}

// TestScenarioReportsGatewayExit: a gateway that is gone before the
// suite stops it — killed here once its scenario is measured — leaves its
// exit in the scenario's error, so the report says the numbers beside it
// come from a gateway that did not stop cleanly.
func TestScenarioReportsGatewayExit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("no /proc")
	}
	dir := t.TempDir()
	gw := filepath.Join(dir, "hookgate")
	if out, err := exec.Command("go", "build", "-o", gw, "../cmd/hookgate").CombinedOutput(); err != nil {
		t.Fatalf("building hookgate: %v\n%s", err, out)
	}
	bare := startServe(t, ServerBare, "", "")
	sink := startServe(t, ServerSink, "", "")
	scs, err := Select(Scenarios(), "unknown_url")
	if err != nil {
		t.Fatal(err)
	}
	sc := &scs[0]
	s := &Suite{Hookgate: gw, Scenarios: scs, Conns: 2, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond,
		Rounds: 1, LogLevel: "warn", Dir: dir, barePID: os.Getpid()}
	killed := false
	s.Progress = writerFunc(func(p []byte) {
		// The scenario's summary line: measured, not yet stopped.
		if killed || !bytes.HasPrefix(p, []byte(sc.Name+":")) {
			return
		}
		pid := findProcess(t, gw, "serve", "-config", filepath.Join(dir, sc.Name, "hookgate.yaml"))
		if pid == 0 {
			t.Error("the gateway's process is not in /proc")
			return
		}
		if p, err := os.FindProcess(pid); err == nil {
			killed = p.Kill() == nil
		}
	})
	sr := s.scenario(context.Background(), sc, sink, bare, &Report{})
	if !killed {
		t.Fatalf("the gateway was not killed; scenario: %+v", sr)
	}
	if sr.Closed == nil || sr.Closed.Answers == 0 {
		t.Fatalf("the scenario was not measured: %s", sr.Error)
	}
	if !strings.Contains(sr.Error, "stopping the gateway") || !strings.Contains(sr.Error, "killed") {
		t.Fatalf("a gateway killed before it was stopped left the scenario's error %q", sr.Error)
	}
}

// TestOpenRate: the open loop runs at half the closed loop's req/s, or
// at -rate when given, for every scenario and the relay alike, so their
// CPU per request at half load compares at one rate.
func TestOpenRate(t *testing.T) {
	for _, tc := range []struct {
		rate, rps, want float64
	}{
		{0, 20000, 10000},
		{0, 1, 0.5},
		{8000, 20000, 8000},
		{8000, 50000, 8000},
	} {
		s := &Suite{Rate: tc.rate}
		if got := s.openRate(tc.rps); got != tc.want {
			t.Errorf("-rate %g after %g req/s: open loop at %g; want %g", tc.rate, tc.rps, got, tc.want)
		}
	}
}
