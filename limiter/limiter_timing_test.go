package limiter

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var sinkScope atomic.Uint64

// BenchmarkAllow measures the two-level check the gateway makes on every
// request that passes checks 1–7. Timestamps advance per goroutine so the
// buckets both admit and refuse, as under real load.
func BenchmarkAllow(b *testing.B) {
	tests := []struct {
		name        string
		automations int
		tables      int
		rps         float64 // automation rate; tables get 10x
	}{
		// Default rates: at one simulated microsecond per request most
		// requests are refused, the flood case.
		{"distinct", 4096, 64, 5},
		{"hot", 1, 1, 5},
		// Rates high enough that nearly every request is admitted, so
		// every call takes the CAS path on both buckets.
		{"distinct-admit", 4096, 64, 1e9},
		{"hot-admit", 1, 1, 1e9},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			tables := make([]*Bucket, tc.tables)
			for i := range tables {
				tables[i] = NewBucket(10 * tc.rps)
			}
			autos := make([]*Bucket, tc.automations)
			for i := range autos {
				autos[i] = NewBucket(tc.rps)
			}
			var seq atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				// Each goroutine walks the automations from its own
				// offset with a stride, so goroutines rarely collide.
				i := int(seq.Add(1) * 7919)
				now := time.Now().UnixNano()
				var local uint64
				for pb.Next() {
					i++
					now += 1000
					s, _ := Allow(autos[i%len(autos)], tables[i%len(tables)], now)
					local += uint64(s)
				}
				sinkScope.Add(local)
			})
		})
	}
}

// BenchmarkMutexBaseline is the same two-level check as a mutex-guarded
// token bucket, the design Allow's lock-free GCRA replaces.
func BenchmarkMutexBaseline(b *testing.B) {
	type mutexBucket struct {
		mu     sync.Mutex // protects tokens and last
		tokens float64
		last   int64
		rps    float64
		_      [32]byte
	}
	take := func(m *mutexBucket, now int64) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		if now > m.last {
			m.tokens = min(m.rps, m.tokens+float64(now-m.last)*m.rps/1e9)
			m.last = now
		}
		if m.tokens < 1 {
			return false
		}
		m.tokens--
		return true
	}
	give := func(m *mutexBucket) {
		m.mu.Lock()
		m.tokens++
		m.mu.Unlock()
	}
	autos := make([]*mutexBucket, 4096)
	for i := range autos {
		autos[i] = &mutexBucket{rps: 5, tokens: 5}
	}
	tables := make([]*mutexBucket, 64)
	for i := range tables {
		tables[i] = &mutexBucket{rps: 50, tokens: 50}
	}
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1) * 7919)
		now := time.Now().UnixNano()
		var local uint64
		for pb.Next() {
			i++
			now += 1000
			a, t := autos[i%len(autos)], tables[i%len(tables)]
			if take(a, now) {
				if take(t, now) {
					local++
				} else {
					give(a)
				}
			}
		}
		sinkScope.Add(local)
	})
}
