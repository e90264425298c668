package cluster_test

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/cluster"
	"github.com/hookgate/hookgate/cluster/redistest"
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/idempotency"
	"github.com/hookgate/hookgate/limiter"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

var (
	_ gateway.RateLimiter = (*cluster.Limiter)(nil)
	_ gateway.TokenStore  = (*cluster.Tokens)(nil)
)

func now() int64 { return time.Now().UnixNano() }

// TestLimitsBurstThenRate drives each case's automations round-robin,
// faster than their limits, and checks that what is admitted is the burst
// and then the rate: burst + rate×elapsed, to within one token.
func TestLimitsBurstThenRate(t *testing.T) {
	srv := redistest.Start(t)
	tests := []struct {
		name               string
		automationRPS      float64
		tableRPS           float64
		automations        int
		wantBurst, wantRPS float64
	}{
		{"credentialed 5/s", 5, 50, 1, 5, 5},
		{"anonymous 1/s", 1, 50, 1, 1, 1},
		{"table 50/s over 20 automations at 5/s", 5, 50, 20, 50, 50},
		{"automation rps above its table", 40, 10, 1, 10, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, srv, prefixFor(t), nil)
			l := c.Limiter()
			table := limiter.NewBucket(tc.tableRPS)
			autos := make([]*limiter.Bucket, tc.automations)
			for i := range autos {
				autos[i] = limiter.NewBucket(tc.automationRPS)
			}
			// The burst: one round as fast as it goes.
			burst := 0
			start := time.Now()
			for range 2 * int(tc.wantBurst) / tc.automations {
				for i, b := range autos {
					if s, _ := l.Allow("tbl", fmt.Sprintf("a%d", i), table, b, now()); s == limiter.None {
						burst++
					}
				}
			}
			burstTook := time.Since(start).Seconds()
			if lo, hi := tc.wantBurst, tc.wantBurst+math.Ceil(burstTook*tc.wantRPS); float64(burst) < lo || float64(burst) > hi {
				t.Errorf("burst: admitted %d in %.3fs, want %v..%v", burst, burstTook, lo, hi)
			}
			// Then the rate, for a little over a second.
			admitted := burst
			var last time.Time
			for time.Since(start) < 1300*time.Millisecond {
				for i, b := range autos {
					if s, _ := l.Allow("tbl", fmt.Sprintf("a%d", i), table, b, now()); s == limiter.None {
						admitted++
						last = time.Now()
					}
				}
				time.Sleep(2 * time.Millisecond)
			}
			want := tc.wantBurst + tc.wantRPS*last.Sub(start).Seconds()
			if math.Abs(float64(admitted)-want) > 1.5 {
				t.Errorf("admitted %d in %.3fs, want %.1f ± 1", admitted, last.Sub(start).Seconds(), want)
			}
			if st := c.Stats(); st.Fallbacks != 0 || st.Errors != 0 {
				t.Errorf("stats %+v: want no fallbacks or errors", st)
			}
		})
	}
}

// TestLimitsRefusedTakesFromNeither reads the buckets in Redis around a
// refusal by either scope.
func TestLimitsRefusedTakesFromNeither(t *testing.T) {
	srv := redistest.Start(t)
	rdb := inspect(t, srv)
	tests := []struct {
		name                    string
		automationRPS, tableRPS float64
		admitted                int
		scope                   limiter.Scope
	}{
		{"table refuses", 5, 3, 3, limiter.Table},
		{"automation refuses", 1, 50, 1, limiter.Automation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := prefixFor(t)
			l := open(t, srv, prefix, nil).Limiter()
			ab, tb := limiter.NewBucket(tc.automationRPS), limiter.NewBucket(tc.tableRPS)
			for i := range tc.admitted {
				if s, _ := l.Allow("t1", "a1", tb, ab, now()); s != limiter.None {
					t.Fatalf("request %d refused by %v", i, s)
				}
			}
			akey, tkey := prefix+"rl:{t1}:a:a1", prefix+"rl:{t1}:t"
			a0, t0 := get(t, rdb, akey), get(t, rdb, tkey)
			if a0 == "" || t0 == "" {
				t.Fatalf("buckets %q=%q %q=%q: want both set", akey, a0, tkey, t0)
			}
			s, wait := l.Allow("t1", "a1", tb, ab, now())
			if s != tc.scope || wait <= 0 || wait > time.Second {
				t.Fatalf("Allow = %v, %v; want %v and a wait in (0, 1s]", s, wait, tc.scope)
			}
			if a1, t1 := get(t, rdb, akey), get(t, rdb, tkey); a1 != a0 || t1 != t0 {
				t.Errorf("refused request changed the buckets: automation %s→%s, table %s→%s", a0, a1, t0, t1)
			}
		})
	}
}

// TestLimitsShared: two gateways on one Redis admit together what one
// would, even when they ask at the same time.
func TestLimitsShared(t *testing.T) {
	srv := redistest.Start(t)
	prefix := prefixFor(t)
	ls := []*cluster.Limiter{open(t, srv, prefix, nil).Limiter(), open(t, srv, prefix, nil).Limiter()}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	var lastMu sync.Mutex
	var last time.Time
	for g := range 8 {
		l := ls[g%2]
		// Each goroutine has the process's own buckets, as each gateway
		// would; they only matter when Redis fails.
		ab, tb := limiter.NewBucket(5), limiter.NewBucket(50)
		wg.Go(func() {
			for time.Since(start) < 1200*time.Millisecond {
				if s, _ := l.Allow("t1", "a1", tb, ab, now()); s == limiter.None {
					admitted.Add(1)
					lastMu.Lock()
					last = time.Now()
					lastMu.Unlock()
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	want := 5 + 5*last.Sub(start).Seconds()
	if got := float64(admitted.Load()); math.Abs(got-want) > 1.5 {
		t.Errorf("two gateways admitted %v in %.3fs, want %.1f ± 1", got, last.Sub(start).Seconds(), want)
	}
}

// TestLimitsLocalNote: a flood at a bucket Redis refused is refused
// locally, without round trips, until its next token is due.
func TestLimitsLocalNote(t *testing.T) {
	srv := redistest.Start(t)
	c := open(t, srv, prefixFor(t), nil)
	l := c.Limiter()
	ab, tb := limiter.NewBucket(1), limiter.NewBucket(50)
	const n = 2000
	admitted := 0
	start := time.Now()
	for range n {
		s, wait := l.Allow("t1", "a1", tb, ab, now())
		switch {
		case s == limiter.None:
			admitted++
		case s != limiter.Automation || wait <= 0 || wait > time.Second:
			t.Fatalf("Allow = %v, %v; want automation and a wait in (0, 1s]", s, wait)
		}
	}
	took := time.Since(start)
	st := c.Stats()
	t.Logf("%d requests in %v: %+v", n, took, st)
	if took > 900*time.Millisecond {
		t.Skipf("the flood took %v, longer than the note lasts", took)
	}
	if admitted != 1 {
		t.Errorf("admitted %d, want 1", admitted)
	}
	if st.RoundTrips != 2 || st.LocalDenials != n-2 {
		t.Errorf("round trips %d, local denials %d; want 2 and %d", st.RoundTrips, st.LocalDenials, n-2)
	}
	// The note ends when the token is due: Redis is asked again.
	time.Sleep(time.Second)
	if s, _ := l.Allow("t1", "a1", tb, ab, now()); s != limiter.None {
		t.Errorf("after the wait: refused by %v", s)
	}
	if got := c.Stats().RoundTrips; got != 3 {
		t.Errorf("round trips %d, want 3", got)
	}
}

// TestLimitsClosedAndNil: a closed bucket refuses without Redis; nil ones
// are no limit.
func TestLimitsClosedAndNil(t *testing.T) {
	srv := redistest.Start(t)
	c := open(t, srv, prefixFor(t), nil)
	l := c.Limiter()
	open1 := limiter.NewBucket(1)
	f := func(tb, ab *limiter.Bucket, want limiter.Scope) {
		t.Helper()
		if s, _ := l.Allow("t1", "a1", tb, ab, now()); s != want {
			t.Errorf("Allow = %v, want %v", s, want)
		}
	}
	f(limiter.NewBucket(0), limiter.NewBucket(0), limiter.Automation)
	f(limiter.NewBucket(0), open1, limiter.Table)
	f(nil, nil, limiter.None)
	if got := c.Stats().RoundTrips; got != 0 {
		t.Errorf("round trips %d, want 0", got)
	}
	f(nil, open1, limiter.None)
	f(nil, open1, limiter.Automation)
}

// TestLimitsOutage: with Redis stopped or hung, Allow answers from the
// local buckets within Timeout, logs the outage once, and goes back to
// Redis when it returns.
func TestLimitsOutage(t *testing.T) {
	srv := redistest.Start(t)
	if !srv.CanStop() {
		t.Skip("needs a private redis-server")
	}
	for _, mode := range []string{"stopped", "hung"} {
		t.Run(mode, func(t *testing.T) {
			core, logs := observer.New(zapcore.InfoLevel)
			const timeout = 150 * time.Millisecond
			c := open(t, srv, prefixFor(t), func(cfg *cluster.Config) {
				cfg.Timeout = timeout
				cfg.RetryInterval = 50 * time.Millisecond
				cfg.Log = zap.New(core)
			})
			l := c.Limiter()
			// Each round gets fresh local buckets, so what the fallback
			// admits is theirs alone.
			tb := limiter.NewBucket(1000)
			if s, _ := l.Allow("t1", "a1", tb, limiter.NewBucket(1000), now()); s != limiter.None {
				t.Fatalf("before the outage: refused by %v", s)
			}
			if mode == "stopped" {
				srv.Stop(t, false)
			} else {
				srv.Pause(t)
			}
			ab := limiter.NewBucket(5)
			admitted := 0
			outage := time.Now()
			for i := range 40 {
				start := time.Now()
				if s, _ := l.Allow("t1", "a1", tb, ab, now()); s == limiter.None {
					admitted++
				}
				if d := time.Since(start); d > timeout+timeout/8+50*time.Millisecond {
					t.Errorf("request %d took %v, more than the timeout %v", i, d, timeout)
				}
				time.Sleep(5 * time.Millisecond)
			}
			st := c.Stats()
			if !st.Down || st.Fallbacks != 40 || st.Errors == 0 {
				t.Errorf("stats %+v: want down, 40 fallbacks, some errors", st)
			}
			// The local bucket: its burst, then 5/s.
			if took := time.Since(outage).Seconds(); admitted < 5 || float64(admitted) > 5+math.Ceil(5*took) {
				t.Errorf("fallback admitted %d in %.3fs, want the local bucket's 5 + 5/s", admitted, took)
			}
			if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
				t.Errorf("%d warnings during the outage, want 1", n)
			}
			if mode == "stopped" {
				srv.Restart(t)
			} else {
				srv.Resume(t)
			}
			ab = limiter.NewBucket(1000)
			if !eventually(t, 5*time.Second, func() bool {
				l.Allow("t1", "a1", tb, ab, now())
				return !c.Stats().Down
			}) {
				t.Fatalf("still down 5s after redis returned: %+v", c.Stats())
			}
			before := c.Stats()
			for range 10 {
				l.Allow("t1", "a1", tb, ab, now())
			}
			after := c.Stats()
			if after.Fallbacks != before.Fallbacks || after.RoundTrips != before.RoundTrips+10 {
				t.Errorf("after recovery: %+v → %+v; want 10 round trips, no fallbacks", before, after)
			}
			if n := logs.FilterMessage("redis available again").Len(); n != 1 {
				t.Errorf("%d recovery notices, want 1", n)
			}
			if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
				t.Errorf("%d warnings in all, want 1", n)
			}
		})
	}
}

var _ gateway.JointLimiter = (*cluster.Limiter)(nil)

// TestAdmit: the rate check and the Client-Token claim in one round trip.
// An admitted request takes its rate tokens whatever the claim says; a
// refused one claims nothing; Shed refuses a bucket Redis refused without
// asking again; and a request without a token or limits asks nothing.
func TestAdmit(t *testing.T) {
	srv := redistest.Start(t)
	rdb := inspect(t, srv)
	prefix := prefixFor(t)
	c := open(t, srv, prefix, nil)
	l := c.Limiter()
	ab, tb := limiter.NewBucket(2), limiter.NewBucket(50) // a burst of 2
	tokenKey := func(token string) string {
		return prefix + "ct:{t1}:" + hexKey(cluster.TokenKey("a1", []byte(token)))
	}
	steps := []struct {
		name       string
		token      string
		scope      limiter.Scope
		res        idempotency.Result // when admitted with a token
		roundTrips uint64
		tokenState string // the token's key in Redis after the step; "i": in flight for the first claim
	}{
		{"new token: admitted and claimed", "one", limiter.None, idempotency.Claimed, 1, "i"},
		{"same token: in flight, takes the second rate token", "one", limiter.None, idempotency.InFlight, 1, "i"},
		{"bucket empty: refused, claims nothing", "two", limiter.Automation, 0, 1, ""},
		{"noted empty: refused without redis", "two", limiter.Automation, 0, 0, ""},
	}
	var claim uint64
	for _, s := range steps {
		before := c.Stats().RoundTrips
		scope, wait, tk, res := l.Admit("t1", "a1", tb, ab, now(), []byte(s.token))
		if res == idempotency.Claimed {
			claim = tk.Claim
		}
		if scope != s.scope {
			t.Fatalf("%s: scope %v, want %v", s.name, scope, s.scope)
		}
		if scope == limiter.None && res != s.res {
			t.Errorf("%s: claim %v, want %v", s.name, res, s.res)
		}
		if scope != limiter.None && (res == idempotency.Claimed || wait <= 0) {
			t.Errorf("%s: refused with claim %v and wait %v", s.name, res, wait)
		}
		if n := c.Stats().RoundTrips - before; n != s.roundTrips {
			t.Errorf("%s: %d round trips, want %d", s.name, n, s.roundTrips)
		}
		want := s.tokenState
		if want == "i" {
			want = fmt.Sprintf("i%016x", claim)
		}
		if got := get(t, rdb, tokenKey(s.token)); got != want {
			t.Errorf("%s: token key %q, want %q", s.name, got, want)
		}
		if res == idempotency.Claimed && (tk.Table != "t1" || tk.Automation != "a1") {
			t.Errorf("%s: ticket %+v", s.name, tk)
		}
	}
	if s, _ := l.Shed("t1", "a1", tb, ab, now()); s != limiter.Automation {
		t.Errorf("Shed after a refusal = %v, want automation", s)
	}
	before := c.Stats().RoundTrips
	if s, _, _, _ := l.Admit("t1", "a2", nil, nil, now(), nil); s != limiter.None {
		t.Errorf("no limits, no token: %v", s)
	}
	if s, _ := l.Shed("t1", "a2", nil, limiter.NewBucket(5), now()); s != limiter.None {
		t.Errorf("Shed of a fresh bucket = %v, want none", s)
	}
	if n := c.Stats().RoundTrips - before; n != 0 {
		t.Errorf("%d round trips for no limits and no token, and Shed; want 0", n)
	}
	// A token done is a duplicate, still taking rate tokens.
	_, _, tk, _ := l.Admit("t1", "a3", tb, nil, now(), []byte("done"))
	c.Tokens().Done(tk, now())
	awaitDuplicate(t, "done token", func() idempotency.Result {
		_, _, _, r := l.Admit("t1", "a3", tb, nil, now(), []byte("done"))
		return r
	})
	if s, _, _, r := l.Admit("t1", "a3", tb, limiter.NewBucket(1), now(), []byte("done")); s != limiter.None || r != idempotency.Duplicate {
		t.Errorf("done token: %v %v, want none duplicate", s, r)
	}
	if s, _ := l.Allow("t1", "a3", tb, limiter.NewBucket(1), now()); s != limiter.Automation {
		t.Errorf("after a duplicate took the 1/s bucket's token: %v, want automation", s)
	}
}

// TestLimitsRateChange: a reload that lowers an automation's rate takes
// effect at once in Redis — the interval sent is the bucket's new one,
// not the text kept from earlier checks.
func TestLimitsRateChange(t *testing.T) {
	srv := redistest.Start(t)
	l := open(t, srv, prefixFor(t), nil).Limiter()
	tb := limiter.NewBucket(1e6)
	// 10/s, not faster: three tokens then put the bucket 300 ms ahead of
	// Redis's clock, and the check below holds for that long. At 1000/s
	// they were 3 ms ahead, and a loaded machine's stall between the
	// calls let the fourth request in.
	fast := limiter.NewBucket(10)
	for i := range 3 {
		if s, _ := l.Allow("t1", "a1", tb, fast, now()); s != limiter.None {
			t.Fatalf("request %d at 10/s: %v", i, s)
		}
	}
	// At 1/s the three tokens just taken leave no room for a fourth
	// within the second's burst.
	if s, _ := l.Allow("t1", "a1", tb, limiter.NewBucket(1), now()); s != limiter.Automation {
		t.Fatalf("after the rate fell to 1/s: %v, want automation", s)
	}
}
