package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Options are the suite's settings as a command line gives them; zero
// fields take the defaults documented beside them.
type Options struct {
	// Hookgate is the gateway binary. Default bin/hookgate.
	Hookgate string
	// Duration is each run's measured window. Default 5s, 1s when Quick.
	Duration time.Duration
	// Conns is the connections of every run. Default 64.
	Conns int
	// Scenarios is a comma-separated list or "all". Default all, or
	// QuickScenarios when Quick.
	Scenarios string
	// Rate is the open-loop rate; 0 is half of each scenario's
	// closed-loop throughput.
	Rate float64
	// Rounds is how many times each scenario's closed-loop run and the
	// bare run beside it are repeated, alternating; the ratio reported is
	// the median. Default 1.
	Rounds int
	// Quick is a smoke run: short runs, few scenarios.
	Quick bool
	// LogLevel is the gateway's log level. Default warn: request lines
	// are logged at info, and the suite measures the gateway, not its log.
	LogLevel string
	// WorkDir is where the run's temporary directory is made. Default
	// the system's temporary directory.
	WorkDir string
}

// Default settings.
const (
	DefaultHookgate = "bin/hookgate"
	DefaultDuration = 5 * time.Second
	QuickDuration   = time.Second
	DefaultConns    = 64
)

// Suite resolves o into a Suite whose files live in a fresh temporary
// directory; cleanup removes it. self is the command line that starts this
// program (for its sink and bare modes).
func (o Options) Suite(self []string, progress io.Writer) (s *Suite, cleanup func(), err error) {
	if o.Hookgate == "" {
		o.Hookgate = DefaultHookgate
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
		if o.Quick {
			o.Duration = QuickDuration
		}
	}
	if o.Duration < 0 {
		return nil, nil, fmt.Errorf("duration %s is negative", o.Duration)
	}
	if o.Conns == 0 {
		o.Conns = DefaultConns
	}
	if o.Conns < 0 {
		return nil, nil, fmt.Errorf("conns %d is negative", o.Conns)
	}
	if o.Rounds == 0 {
		o.Rounds = 1
	}
	if o.Rounds < 0 {
		return nil, nil, fmt.Errorf("rounds %d is negative", o.Rounds)
	}
	if o.Rate < 0 {
		return nil, nil, fmt.Errorf("rate %g is negative", o.Rate)
	}
	list := o.Scenarios
	if list == "" && o.Quick {
		list = joinNames(QuickScenarios)
	}
	scenarios, err := Select(Scenarios(), list)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp(o.WorkDir, "hookbench-")
	if err != nil {
		return nil, nil, err
	}
	s = &Suite{
		Hookgate:  o.Hookgate,
		Self:      self,
		Scenarios: scenarios,
		Conns:     o.Conns,
		Duration:  o.Duration,
		// A fifth of the window, at most a second, warms connections,
		// pools and the gateway's caches before anything is recorded.
		Warmup:   min(o.Duration/5, time.Second),
		Rate:     o.Rate,
		Rounds:   o.Rounds,
		LogLevel: o.LogLevel,
		Dir:      dir,
		Quick:    o.Quick,
		Progress: progress,
	}
	return s, func() { os.RemoveAll(dir) }, nil
}

func joinNames(names []string) string { return strings.Join(names, ",") }
