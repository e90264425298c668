package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	for _, c := range []struct {
		line string
		want time.Duration
		ok   bool
	}{
		{"4242 (hookgate) S 1 4242 4242 0 -1 4194560 3000 0 0 0 150 25 0 0 20 0 9 0 100 2000000 3000 18446744073709551615", 175 * clockTick, true},
		// A command name with spaces and a ')' of its own.
		{"7 (a) b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1 1", 7 * clockTick, true},
		{"no parenthesis", 0, false},
		{"1 (x) S 1 2 3", 0, false},
		{"1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 4 0", 0, false},
	} {
		got, err := parseStatCPU(c.line)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v, ok %v", c.line, got, err, c.want, c.ok)
		}
	}
}

// TestProcessCPU burns CPU in this process and finds it in /proc.
func TestProcessCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		sinkInt++
	}
	after, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// At least part of the 300 ms of spinning, whatever the neighbours.
	if used := after - before; used < 50*time.Millisecond {
		t.Fatalf("spent %v of CPU spinning 300ms", used)
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}

var sinkInt int
