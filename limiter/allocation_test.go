//go:build !race

package limiter

import "testing"

func TestAllowAllocs(t *testing.T) {
	a, table := NewBucket(5), NewBucket(50)
	now := t0
	n := testing.AllocsPerRun(1000, func() {
		now += 1000
		Allow(a, table, now)
	})
	if n != 0 {
		t.Fatalf("Allow allocates %v times per call", n)
	}
}
