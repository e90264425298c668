//go:build !race

package cluster_test

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/cluster/redistest"
	"github.com/hookgate/hookgate/idempotency"
	"github.com/hookgate/hookgate/limiter"
)

// TestAllocs: the paths that spare Redis — a flood refused by the local
// note, a repeat answered by the cache of done tokens — do not allocate.
func TestAllocs(t *testing.T) {
	srv := redistest.Start(t)
	c := open(t, srv, prefixFor(t), nil)
	l, s := c.Limiter(), c.Tokens()
	ab, tb := limiter.NewBucket(1), limiter.NewBucket(50)
	l.Allow("t1", "a1", tb, ab, now())
	if sc, _ := l.Allow("t1", "a1", tb, ab, now()); sc != limiter.Automation {
		t.Fatalf("second request: %v, want automation", sc)
	}
	token := []byte("6f1c1a57-1d9c-4a1e-9b1a-6a2f0e0b7c11")
	tk, _ := s.Claim("tbl", "a1", token, now())
	s.Done(tk, now())
	if !eventually(t, time.Second, func() bool {
		s.Claim("tbl", "a1", token, now()) // Duplicate, from Redis until the cache has it
		return c.Stats().CacheHits > 0
	}) {
		t.Fatal("the done token never reached the cache")
	}
	tests := []struct {
		name string
		f    func()
	}{
		{"Allow refused by the local note", func() {
			if sc, _ := l.Allow("t1", "a1", tb, ab, now()); sc != limiter.Automation {
				t.Fatalf("Allow = %v", sc)
			}
		}},
		{"Claim of a cached done token", func() {
			if _, r := s.Claim("tbl", "a1", token, now()); r != idempotency.Duplicate {
				t.Fatalf("Claim = %v", r)
			}
		}},
	}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(200, tc.f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", tc.name, n)
		}
	}
}
