package bench

import (
	"context"
	"testing"
	"time"
)

// TestFineTimer: a sleep lasts at least what was asked, the timer can be
// armed again, and ending the watched context interrupts a sleep at once.
func TestFineTimer(t *testing.T) {
	ft, err := newFineTimer()
	if err != nil {
		t.Fatalf("newFineTimer: %v", err)
	}
	defer ft.close()
	ctx, cancel := context.WithCancel(context.Background())
	stop := ft.watch(ctx)
	defer stop()
	for _, d := range []time.Duration{50 * time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond} {
		start := time.Now()
		if !ft.sleep(d) {
			t.Fatalf("sleep(%v) reported an interruption", d)
		}
		if got := time.Since(start); got < d {
			t.Errorf("sleep(%v) returned after %v", d, got)
		}
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	if ft.sleep(time.Minute) {
		t.Fatal("a sleep of a minute was not interrupted by the context")
	}
	if got := time.Since(start); got > 10*time.Second {
		t.Errorf("interrupted after %v", got)
	}
}
