package cluster_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/cluster"
	"github.com/hookgate/hookgate/cluster/redistest"
	"github.com/hookgate/hookgate/idempotency"
	"github.com/hookgate/hookgate/limiter"
)

var (
	sinkScope  limiter.Scope
	sinkResult idempotency.Result
)

// parallelism is goroutines per CPU in the Redis benchmarks: a gateway
// serves many requests at once, and that is what lets their commands share
// round trips.
const parallelism = 32

// reportRoundTrips reports Redis commands per operation.
func reportRoundTrips(b *testing.B, c *cluster.Client, before cluster.Stats) {
	st := c.Stats()
	b.ReportMetric(float64(st.RoundTrips-before.RoundTrips)/float64(b.N), "roundtrips/op")
	if st.Fallbacks != before.Fallbacks || st.Unavailable != before.Unavailable {
		b.Errorf("redis failed during the benchmark: %+v", st)
	}
}

// BenchmarkAllow compares the fleet-wide check with the process's own
// buckets. "redis" is admitted every time (5,000/s for each of 64
// automations, more than the benchmark sends; its interval, 200 µs, has
// more digits than Go keeps preformatted, as real rates do), so each call
// is a round trip, pipelined with the other goroutines';
// "redis flood" is refused, nearly always by the local note.
func BenchmarkAllow(b *testing.B) {
	const automations = 64
	ids := make([]string, automations)
	for i := range ids {
		ids[i] = "aut_" + strconv.Itoa(i)
	}
	run := func(b *testing.B, allow func(auto int, tb, ab *limiter.Bucket) limiter.Scope, rps float64) {
		tb := limiter.NewBucket(1e6)
		abs := make([]*limiter.Bucket, automations)
		for i := range abs {
			abs[i] = limiter.NewBucket(rps)
		}
		var next atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var s limiter.Scope
			for pb.Next() {
				i := int(next.Add(1) % automations)
				s = allow(i, tb, abs[i])
			}
			sinkScope = s
		})
	}
	b.Run("local", func(b *testing.B) {
		run(b, func(_ int, tb, ab *limiter.Bucket) limiter.Scope {
			s, _ := limiter.Allow(ab, tb, time.Now().UnixNano())
			return s
		}, 1e6)
	})
	srv := redistest.Start(b)
	for _, bc := range []struct {
		name string
		rps  float64
	}{{"redis", 5000}, {"redis flood", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			c := open(b, srv, prefixFor(b), nil)
			l := c.Limiter()
			before := c.Stats()
			b.SetParallelism(parallelism)
			run(b, func(i int, tb, ab *limiter.Bucket) limiter.Scope {
				s, _ := l.Allow("tbl", ids[i], tb, ab, time.Now().UnixNano())
				return s
			}, bc.rps)
			reportRoundTrips(b, c, before)
		})
	}
}

// BenchmarkClaim compares the fleet-wide Client-Token store with the
// process's own: a fresh token claimed, a fresh token claimed and done
// (what an accepted request with a Client-Token costs), and a repeated
// done token (answered by the cache).
func BenchmarkClaim(b *testing.B) {
	var seq atomic.Uint64
	fresh := func(buf []byte) []byte {
		return strconv.AppendUint(append(buf[:0], "tok-"...), seq.Add(1), 10)
	}
	b.Run("local", func(b *testing.B) {
		st := idempotency.New(1<<22, 3*time.Hour)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var buf []byte
			var r idempotency.Result
			for pb.Next() {
				buf = fresh(buf)
				r = st.Claim(st.Key("a1", buf), time.Now().UnixNano())
				if r != idempotency.Claimed {
					b.Errorf("claim: %v", r)
				}
			}
			sinkResult = r
		})
	})
	srv := redistest.Start(b)
	cases := []struct {
		name string
		op   func(s *cluster.Tokens, buf []byte) idempotency.Result
	}{
		{"redis claim", func(s *cluster.Tokens, buf []byte) idempotency.Result {
			_, r := s.Claim("tbl", "a1", buf, 0)
			return r
		}},
		{"redis claim+done", func(s *cluster.Tokens, buf []byte) idempotency.Result {
			tk, r := s.Claim("tbl", "a1", buf, 0)
			s.Done(tk, 0)
			return r
		}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			c := open(b, srv, prefixFor(b), nil)
			s := c.Tokens()
			before := c.Stats()
			b.SetParallelism(parallelism)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var buf []byte
				var r idempotency.Result
				for pb.Next() {
					buf = fresh(buf)
					if r = bc.op(s, buf); r != idempotency.Claimed {
						b.Errorf("claim: %v", r)
					}
				}
				sinkResult = r
			})
			reportRoundTrips(b, c, before)
		})
	}
	b.Run("redis cached duplicate", func(b *testing.B) {
		c := open(b, srv, prefixFor(b), nil)
		s := c.Tokens()
		tk, _ := s.Claim("tbl", "a1", []byte("dup"), 0)
		s.Done(tk, 0)
		for c.Stats().CacheHits == 0 { // the cache's writes are asynchronous
			s.Claim("tbl", "a1", []byte("dup"), 0)
		}
		before := c.Stats()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			tok := []byte("dup")
			var r idempotency.Result
			for pb.Next() {
				_, r = s.Claim("tbl", "a1", tok, 0)
			}
			sinkResult = r
		})
		reportRoundTrips(b, c, before)
	})
}
