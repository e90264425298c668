package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's CPU times: USER_HZ, 100 on
// every Linux architecture Go runs on.
const clockTick = 10 * time.Millisecond

// processCPU returns the CPU time, user and system, that process pid has
// used so far. It reads /proc, so it works on Linux only.
//
// CPU time per request is the suite's second measure beside the ratio of
// throughputs: a neighbour taking CPU slows both runs of a pair unevenly,
// but leaves the CPU each request costs the process nearly as it was.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime, the 14th and 15th fields of a
// /proc/<pid>/stat line. The second field, the command name in
// parentheses, may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat line")
	}
	// After ")": state (field 3), …, utime (14), stime (15).
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat line has %d fields after the command", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat CPU time %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// cpuMeter measures the CPU time processes use over a run's measured
// window: Start is called when the window opens (Load.AtWindow), Stop
// after the run.
type cpuMeter struct {
	pids  []int
	start []time.Duration
	used  []time.Duration
	err   error
}

func newCPUMeter(pids ...int) *cpuMeter {
	return &cpuMeter{pids: pids, start: make([]time.Duration, len(pids)), used: make([]time.Duration, len(pids))}
}

func (m *cpuMeter) Start() {
	for i, pid := range m.pids {
		if m.start[i], m.err = processCPU(pid); m.err != nil {
			return
		}
	}
}

// Stop returns each process's CPU time since Start, nil when it could
// not be read.
func (m *cpuMeter) Stop() []time.Duration {
	if m.err != nil {
		return nil
	}
	for i, pid := range m.pids {
		t, err := processCPU(pid)
		if err != nil {
			return nil
		}
		m.used[i] = t - m.start[i]
	}
	return m.used
}

// perRequest is d spread over n requests, 0 when there were none.
func perRequest(d time.Duration, n uint64) time.Duration {
	if n == 0 {
		return 0
	}
	return d / time.Duration(n)
}

// cpuPerRequest gathers the rounds' CPU time per answered request: the
// measured processes' (the server under test, then the sink if there is
// one) and the bare server's in the run beside each.
type cpuPerRequest struct{ gw, sink, bare []time.Duration }

// add takes one round: used and bareUsed from cpuMeter.Stop over the runs
// that made r and bare. A round whose CPU could not be read adds nothing.
func (c *cpuPerRequest) add(used []time.Duration, r *Result, bareUsed []time.Duration, bare *Result) {
	if used == nil || bareUsed == nil {
		return
	}
	c.bare = append(c.bare, perRequest(bareUsed[0], bare.Answers))
	c.gw = append(c.gw, perRequest(used[0], r.Answers))
	if len(used) > 1 {
		c.sink = append(c.sink, perRequest(used[1], r.Answers))
	}
}

// medians returns the medians over the rounds, zero where there were none.
func (c *cpuPerRequest) medians() (gw, sink, bare time.Duration) {
	return median(c.gw), median(c.sink), median(c.bare)
}
