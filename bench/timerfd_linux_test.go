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

// TestSleeper: the pacer's wait on either clock lasts what was asked and
// ends early when the run does — the timerfd here, and the Go timer that
// paces where there is none.
func TestSleeper(t *testing.T) {
	for _, useFine := range []bool{true, false} {
		w := &sleeper{}
		ctx, cancel := context.WithCancel(context.Background())
		if useFine {
			ft, err := newFineTimer()
			if err != nil {
				t.Fatal(err)
			}
			defer ft.close()
			w.fine = ft
			defer ft.watch(ctx)()
		}
		start := time.Now()
		if !w.sleep(ctx.Done(), 2*time.Millisecond) {
			t.Fatalf("fine=%v: sleep reported the run over", useFine)
		}
		if d := time.Since(start); d < 2*time.Millisecond {
			t.Errorf("fine=%v: slept %v, want at least 2ms", useFine, d)
		}
		cancel()
		if w.sleep(ctx.Done(), time.Minute) {
			t.Errorf("fine=%v: a sleep after the run ended reported done", useFine)
		}
	}
}
