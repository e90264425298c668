package cluster

import (
	"context"
	"testing"
	"time"
)

// TestDeadlines: every command's context ends no sooner than the timeout
// and no later than an eighth more; commands in one slot share a context
// (one timer), later ones get a fresh one; an ended context reports
// DeadlineExceeded, as context.WithTimeout's does.
func TestDeadlines(t *testing.T) {
	for _, timeout := range []time.Duration{time.Millisecond, 40 * time.Millisecond, 200 * time.Millisecond} {
		t.Run(timeout.String(), func(t *testing.T) {
			d := newDeadlines(timeout, time.Now())
			slot := max(timeout/8, time.Millisecond)
			seen := map[*slotCtx]bool{}
			var first *slotCtx
			// At least three slots, and on until a second context came
			// (under -race this goroutine can sleep through a 1ms slot).
			start := time.Now()
			for time.Since(start) < 3*slot || len(seen) < 2 {
				if time.Since(start) > 5*time.Second {
					t.Fatal("no second context in 5s")
				}
				before := time.Now()
				ctx := d.get()
				after := time.Now()
				dl, ok := ctx.Deadline()
				if !ok {
					t.Fatal("no deadline")
				}
				if dl.Before(before.Add(timeout)) || dl.After(after.Add(timeout+slot)) {
					t.Fatalf("deadline %v after the call, want within [%v, %v]", dl.Sub(before), timeout, timeout+slot)
				}
				if opened := d.opened(ctx); opened.After(after) || !ctx.deadline.Equal(opened.Add(timeout+slot)) {
					t.Fatalf("slot opened %v after the call, deadline %v after it; want opened no later than the call",
						opened.Sub(after), ctx.deadline.Sub(opened))
				}
				// Ended before its deadline would be wrong; after it (this
				// goroutine can be held up past a 1ms timeout) is right.
				if err := ctx.Err(); err != nil && time.Now().Before(dl) {
					t.Fatalf("context ended before its deadline: %v", err)
				}
				if first == nil {
					first = ctx
				}
				seen[ctx] = true
			}
			// Commands in one slot share its context: no more contexts
			// than the slots the loop spanned, and one more for each end.
			elapsed := time.Since(start)
			if n := len(seen); n > int(elapsed/slot)+2 {
				t.Errorf("%d contexts in %v (%d slots of %v): commands in one slot must share one", n, elapsed, elapsed/slot, slot)
			}
			select {
			case <-first.Done():
				if first.Err() != context.DeadlineExceeded {
					t.Errorf("Err after Done = %v", first.Err())
				}
			case <-time.After(timeout + slot + time.Second):
				t.Fatal("the first context never ended")
			}
			if first.Value("any") != nil {
				t.Error("Value returned something")
			}
		})
	}
}
