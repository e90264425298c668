package gateway

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestSamplerBound: however many goroutines log at once, and even when
// some arrive late with the second before, no second gets more than
// `first` lines; every second gets its lines; every thereafter-th line
// past them goes through.
func TestSamplerBound(t *testing.T) {
	var s sampler
	const first, goroutines, perSecond = 5, 16, 2000
	for sec := int64(1_700_000_000); sec < 1_700_000_010; sec++ {
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perSecond / goroutines {
					at := sec
					if (g+i)%7 == 0 {
						at = sec - 1 // a straggler from the second before
					}
					if s.allow(at, first, 0) {
						allowed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		// The first second's stragglers fall in the second before it.
		if got := allowed.Load(); got < first || got > 2*first {
			t.Fatalf("second %d: %d lines, want %d..%d", sec, got, first, 2*first)
		}
		if sec > 1_700_000_000 {
			if got := allowed.Load(); got != first {
				t.Fatalf("second %d: %d lines, want exactly %d", sec, got, first)
			}
		}
	}
	var t2 sampler
	n := 0
	for range 1000 {
		if t2.allow(42, 10, 100) {
			n++
		}
	}
	if n != 10+9 {
		t.Fatalf("first 10 then every 100th of 1000: %d lines, want 19", n)
	}
}
