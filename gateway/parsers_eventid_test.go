package gateway

import (
	"sync"
	"testing"
)

// TestEventIDsAcrossGoroutinesAndClockSteps: ids issued by goroutines at
// once, by a wall clock that steps back an hour and forward again, and
// over 4096 in one millisecond, are all distinct, each goroutine's
// increase, and so does the sequence of one caller around every step.
func TestEventIDsAcrossGoroutinesAndClockSteps(t *testing.T) {
	var g eventIDs
	const base = int64(1_780_000_000_000)
	// The clock as each request reads it: on, back an hour, on again,
	// ahead, and back before the first reading.
	clock := func(i int) int64 {
		switch {
		case i < 3000:
			return base + int64(i/100)
		case i < 6000:
			return base - 3_600_000 + int64(i/100)
		case i < 8000:
			return base + 7_200_000
		default:
			return base - 86_400_000
		}
	}
	const workers, each = 8, 10000
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ids[w] = append(ids[w], string(g.next(nil, clock(i))))
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for w, list := range ids {
		for i, id := range list {
			if len(id) != 36 || id[14] != '7' || id[19] < '8' || id[19] > 'b' {
				t.Fatalf("worker %d id %d = %q: not a UUIDv7", w, i, id)
			}
			if i > 0 && id <= list[i-1] {
				t.Fatalf("worker %d id %d = %q, not after %q", w, i, id, list[i-1])
			}
			if seen[id] {
				t.Fatalf("worker %d id %d = %q issued twice", w, i, id)
			}
			seen[id] = true
		}
	}
	// One caller across a step back: the id after is still the larger.
	var h eventIDs
	before := string(h.next(nil, base))
	after := string(h.next(nil, base-3_600_000))
	if after <= before {
		t.Fatalf("after the clock stepped back: %q, not after %q", after, before)
	}
}
