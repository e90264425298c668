package idempotency

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

var sinkResult atomic.Uint64

// BenchmarkKey measures hashing one (automation, Client-Token) pair.
func BenchmarkKey(b *testing.B) {
	s := New(4_000_000, window)
	token := []byte("3f2c9c1e-7d0e-4a8f-9d43-0c8b1b7e9a11")
	b.SetBytes(int64(len(token)))
	b.ReportAllocs()
	var local uint64
	for b.Loop() {
		local += s.Key("new_product", token).Lo
	}
	sinkResult.Add(local)
}

// BenchmarkClaim measures Key+Claim from many goroutines.
//
// distinct: the steady state of a busy gateway. The Store holds about
// 1,000,000 tokens spread over the last window, every claim is a fresh
// token marked done at once (Key+Claim+Done: a claim stays in flight
// until Done), and time advances so that one token expires for each one
// claimed: probing, slot reuse and the sweep all run.
//
// hot: every goroutine claims one key, which is in flight after the first
// claim, so all of them contend for one shard lock.
func BenchmarkClaim(b *testing.B) {
	const held = 1_000_000
	step := int64(window) / held
	b.Run("distinct", func(b *testing.B) {
		s := New(4_000_000, window)
		var buf [8]byte
		for i := range held {
			buf[0], buf[1], buf[2], buf[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
			s.Done(s.Key("new_product", buf[:]), t0-int64(window)+int64(i)*step)
		}
		procs := int64(runtime.GOMAXPROCS(0))
		var seq atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			g := seq.Add(1) << 40
			now := t0
			var buf [8]byte
			var local uint64
			for i := g; pb.Next(); i++ {
				buf[0], buf[1], buf[2], buf[3], buf[4], buf[5] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24), byte(i>>32), byte(i>>40)
				// The goroutines together advance one step per claim.
				now += procs * step
				// Claimed, then done, as the gateway does once the
				// engine has the event: a claim stays in flight until
				// then.
				k := s.Key("new_product", buf[:])
				r := s.Claim(k, now)
				if r == Claimed {
					s.Done(k, now)
				}
				local += uint64(r)
			}
			sinkResult.Add(local)
		})
		b.StopTimer()
		if n := s.Len(); n > 2*held {
			b.Fatalf("Store holds %d tokens: expired ones are not reclaimed", n)
		}
	})
	b.Run("hot", func(b *testing.B) {
		s := New(4_000_000, window)
		k := s.Key("new_product", []byte("3f2c9c1e-7d0e-4a8f-9d43-0c8b1b7e9a11"))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var local uint64
			for pb.Next() {
				local += uint64(s.Claim(k, t0))
			}
			sinkResult.Add(local)
		})
	})
}

// BenchmarkBytesPerToken reports the heap a Store takes per token while it
// holds 1,000,000 of them.
func BenchmarkBytesPerToken(b *testing.B) {
	var perToken float64
	for b.Loop() {
		var s *Store
		perToken, s = heapPerToken(1_000_000)
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perToken, "B/token")
}

// heapPerToken fills a fresh Store sized for the default 4,000,000 tokens
// with n done tokens and returns the heap it holds per token, and the
// Store so the caller keeps it alive until it has read the figure.
func heapPerToken(n int) (float64, *Store) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := New(4_000_000, 3*time.Hour)
	var buf [8]byte
	for i := range n {
		buf[0], buf[1], buf[2], buf[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		s.Done(s.Key("new_product", buf[:]), t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n), s
}
