//go:build !race

package idempotency

import (
	"runtime"
	"testing"
)

func TestKeyClaimDoneAllocs(t *testing.T) {
	s := New(4_000_000, window)
	automation := "new_product"
	token := []byte("3f2c9c1e-7d0e-4a8f-9d43-0c8b1b7e9a11")
	// Warm up so the shard tables exist and have grown past the first
	// sizes: a table growing is an allocation the steady state does not
	// make on every request.
	for i := range 100_000 {
		k := s.Key(automation, tok(uint64(i)))
		s.Claim(k, t0)
	}
	now := t0
	n := testing.AllocsPerRun(1000, func() {
		now++
		token[0]++
		k := s.Key(automation, token)
		if s.Claim(k, now) == Claimed {
			s.Done(k, now)
		}
		s.Release(k)
	})
	if n != 0 {
		t.Fatalf("Key+Claim+Done allocates %v times per call", n)
	}
	long := make([]byte, 4*keyBuf)
	if n := testing.AllocsPerRun(1000, func() { long[0]++; s.Key(automation, long) }); n != 0 {
		t.Fatalf("Key of a %d-byte token allocates %v times per call", len(long), n)
	}
}

// TestBytesPerToken holds 1,000,000 tokens in a Store sized for the
// default 4,000,000 and checks the heap it takes.
func TestBytesPerToken(t *testing.T) {
	if testing.Short() {
		t.Skip("holds a million tokens")
	}
	perToken, s := heapPerToken(1_000_000)
	runtime.KeepAlive(s)
	t.Logf("%.1f B/token", perToken)
	if perToken > 48 {
		t.Fatalf("%.1f bytes per token, want at most 48", perToken)
	}
}
