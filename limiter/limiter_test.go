package limiter

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is an arbitrary realistic Unix time, so the tests cover timestamps of
// the size the gateway passes in.
const t0 = int64(1_767_225_600) * int64(time.Second)

func ms(n int64) int64 { return n * int64(time.Millisecond) }

// step is one request in a script: at offset (from t0), expect scope.
type step struct {
	at   int64
	want Scope
}

func TestBucketScripts(t *testing.T) {
	tests := []struct {
		name  string
		rps   float64
		steps []step
	}{
		{
			name: "credentialed: burst of 5 then 5/s",
			rps:  5,
			steps: []step{
				{0, None}, {0, None}, {0, None}, {0, None}, {0, None},
				{0, Automation},
				{ms(199), Automation},
				{ms(200), None},
				{ms(200), Automation},
				{ms(400), None},
				{ms(600), None},
				{ms(800), None},
				{ms(1000), None},
				{ms(1000), Automation},
			},
		},
		{
			name: "anonymous: 1/s, burst 1",
			rps:  1,
			steps: []step{
				{0, None}, {0, Automation},
				{ms(999), Automation},
				{ms(1000), None},
				{ms(1500), Automation},
				{ms(2000), None},
				// Idle for a long time refills only to the burst.
				{ms(60_000), None}, {ms(60_000), Automation},
			},
		},
		{
			name: "fractional 2.5/s: burst of 2, then one per 400ms",
			rps:  2.5,
			steps: []step{
				{0, None}, {0, None}, {0, Automation},
				// After two takes tat = t0+800ms; a third fits once
				// 800+400-now <= 1000, i.e. at 200ms.
				{ms(199), Automation},
				{ms(200), None},
				{ms(200), Automation},
				{ms(600), None},
				{ms(1000), None},
				{ms(1000), Automation},
			},
		},
		{
			name: "below one per second: 0.5/s, burst 1",
			rps:  0.5,
			steps: []step{
				{0, None}, {0, Automation},
				{ms(1999), Automation},
				{ms(2000), None},
				{ms(2000), Automation},
			},
		},
		{
			name:  "closed bucket refuses",
			rps:   0,
			steps: []step{{0, Automation}, {ms(10_000), Automation}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBucket(tc.rps)
			for i, s := range tc.steps {
				got, wait := Allow(b, nil, t0+s.at)
				if got != s.want {
					t.Fatalf("step %d at +%v: got %v, want %v", i, time.Duration(s.at), got, s.want)
				}
				if (got == None) != (wait == 0) {
					t.Fatalf("step %d: scope %v with retryAfter %v", i, got, wait)
				}
			}
		})
	}
}

func TestRetryAfterIsExact(t *testing.T) {
	f := func(rps float64, burst int, want time.Duration) {
		t.Helper()
		b := NewBucket(rps)
		for i := range burst {
			if s, _ := Allow(b, nil, t0); s != None {
				t.Fatalf("rps %v: request %d refused", rps, i)
			}
		}
		s, wait := Allow(b, nil, t0)
		if s != Automation || wait != want {
			t.Fatalf("rps %v: got %v %v, want automation %v", rps, s, wait, want)
		}
		// Waiting exactly that long is enough, a nanosecond less is not.
		if s, _ := Allow(b, nil, t0+int64(wait)-1); s == None {
			t.Fatalf("rps %v: admitted a nanosecond early", rps)
		}
		if s, _ := Allow(b, nil, t0+int64(wait)); s != None {
			t.Fatalf("rps %v: refused after retryAfter", rps)
		}
	}
	f(5, 5, 200*time.Millisecond)
	f(1, 1, time.Second)
	f(50, 50, 20*time.Millisecond)
	f(0.25, 1, 4*time.Second)
	f(2.5, 2, 200*time.Millisecond)
}

// TestTableSharedByTwelve runs twelve automations of 5/s, each offering
// 10 req/s, against one table of 50/s: the table, not the automations,
// must be what holds them to 50/s in all.
func TestTableSharedByTwelve(t *testing.T) {
	const (
		automations = 12
		seconds     = 10
		offered     = 10 // per automation per second
	)
	table := NewBucket(50)
	autos := make([]*Bucket, automations)
	for i := range autos {
		autos[i] = NewBucket(5)
	}
	perAuto := make([]int, automations)
	perSecond := make([]int, seconds)
	total, tableRefusals := 0, 0
	for tick := range seconds * offered {
		now := t0 + int64(tick)*int64(time.Second)/offered
		for i, a := range autos {
			// Stagger the automations inside the tick so they interleave.
			s, _ := Allow(a, table, now+int64(i))
			switch s {
			case None:
				total++
				perAuto[i]++
				perSecond[tick/offered]++
			case Table:
				tableRefusals++
			}
		}
	}
	// The table admits its burst plus 50/s of refill, nothing more.
	if lo, hi := 50*seconds-50, 50*seconds+50; total < lo || total > hi {
		t.Fatalf("admitted %d over %ds, want within [%d, %d]", total, seconds, lo, hi)
	}
	for s, n := range perSecond[1:] {
		if n < 45 || n > 55 {
			t.Fatalf("second %d admitted %d, want about 50", s+1, n)
		}
	}
	for i, n := range perAuto {
		if n > 5*seconds+5 {
			t.Fatalf("automation %d admitted %d, above its own limit", i, n)
		}
	}
	if tableRefusals == 0 {
		t.Fatal("the table never refused: the test does not exercise it")
	}
}

func TestTableRefusalReturnsAutomationToken(t *testing.T) {
	a := NewBucket(5)
	other := NewBucket(5)
	table := NewBucket(1)
	if s, _ := Allow(other, table, t0); s != None {
		t.Fatalf("first request: %v", s)
	}
	// The table is empty now: a's request is refused by the table and
	// must leave a's bucket as it found it.
	s, wait := Allow(a, table, t0)
	if s != Table || wait != time.Second {
		t.Fatalf("got %v %v, want table 1s", s, wait)
	}
	// a still has its whole burst of 5 at once, with the table out of
	// the way.
	for i := range 5 {
		if s, _ := Allow(a, nil, t0); s != None {
			t.Fatalf("request %d of a's burst refused: %v", i, s)
		}
	}
	if s, _ := Allow(a, nil, t0); s != Automation {
		t.Fatalf("sixth request: %v, want automation", s)
	}
}

func TestAutomationRefusalTakesNothingFromTable(t *testing.T) {
	a := NewBucket(1)
	table := NewBucket(2)
	if s, _ := Allow(a, table, t0); s != None {
		t.Fatal("first refused")
	}
	for range 10 {
		if s, _ := Allow(a, table, t0); s != Automation {
			t.Fatalf("got %v, want automation", s)
		}
	}
	// The table still has the second token of its burst.
	if s, _ := Allow(nil, table, t0); s != None {
		t.Fatal("automation refusals drained the table")
	}
}

func TestSetRateMidStream(t *testing.T) {
	b := NewBucket(5)
	for range 5 {
		Allow(b, nil, t0)
	}
	if s, _ := Allow(b, nil, t0); s != Automation {
		t.Fatal("burst of 5 not enforced")
	}
	// Raising the rate keeps the drained state: no fresh burst, but the
	// refill is faster (one token per 100ms at 10/s).
	b.SetRate(10)
	if s, _ := Allow(b, nil, t0); s != Automation {
		t.Fatal("raising the rate handed out a fresh burst")
	}
	if s, _ := Allow(b, nil, t0+ms(100)); s != None {
		t.Fatal("no token 100ms after raising the rate to 10/s")
	}
	// Lowering to 1/s: the bucket is drained, so the next token comes
	// after the 1s emission interval from tat.
	b.SetRate(1)
	if s, _ := Allow(b, nil, t0+ms(200)); s != Automation {
		t.Fatal("lowering the rate did not slow the bucket")
	}
	if got := b.Rate(); got != 1 {
		t.Fatalf("Rate() = %v, want 1", got)
	}
	// Closing and reopening.
	b.SetRate(0)
	if s, _ := Allow(b, nil, t0+ms(60_000)); s != Automation {
		t.Fatal("closed bucket admitted")
	}
	b.SetRate(3)
	for i := range 3 {
		if s, _ := Allow(b, nil, t0+ms(60_000)); s != None {
			t.Fatalf("reopened bucket refused request %d", i)
		}
	}
}

func TestZeroValueRefuses(t *testing.T) {
	var b Bucket
	if s, wait := Allow(&b, nil, t0); s != Automation || wait <= 0 {
		t.Fatalf("zero Bucket: got %v %v", s, wait)
	}
}

func TestIntervalFitsBurst(t *testing.T) {
	// Rounding the interval down must never cost a token of the burst.
	for rps := 1; rps <= 1000; rps++ {
		b := NewBucket(float64(rps))
		for i := range rps {
			if s, _ := Allow(b, nil, t0); s != None {
				t.Fatalf("rps %d: request %d of the burst refused", rps, i)
			}
		}
		if s, _ := Allow(b, nil, t0); s == None {
			t.Fatalf("rps %d: burst exceeded", rps)
		}
	}
}

// TestConcurrentSameInstant hammers buckets from many goroutines with one
// timestamp: exactly the burst may be admitted, never more.
func TestConcurrentSameInstant(t *testing.T) {
	tests := []struct {
		name      string
		autoRPS   float64
		autos     int
		tableRPS  float64
		wantTotal int
	}{
		{"one automation", 5, 1, 50, 5},
		{"table binds", 5, 20, 50, 50},
		{"automations bind", 2, 10, 50, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table := NewBucket(tc.tableRPS)
			autos := make([]*Bucket, tc.autos)
			for i := range autos {
				autos[i] = NewBucket(tc.autoRPS)
			}
			const goroutines, each = 64, 50
			var admitted atomic.Int64
			start := make(chan struct{})
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					<-start
					for i := range each {
						a := autos[(g+i)%len(autos)]
						if s, _ := Allow(a, table, t0); s == None {
							admitted.Add(1)
						}
					}
				})
			}
			close(start)
			wg.Wait()
			if got := admitted.Load(); got != int64(tc.wantTotal) {
				t.Fatalf("admitted %d, want exactly %d", got, tc.wantTotal)
			}
		})
	}
}

// TestConcurrentSetRate runs SetRate against Allow so the race detector
// sees them together.
func TestConcurrentSetRate(t *testing.T) {
	b := NewBucket(5)
	table := NewBucket(50)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				b.SetRate(float64(1 + i%10))
			}
		}
	})
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				Allow(b, table, t0+int64(g*2000+i)*int64(time.Millisecond))
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
}

func TestScopeString(t *testing.T) {
	f := func(s Scope, want string) {
		t.Helper()
		if got := s.String(); got != want {
			t.Fatalf("%d: got %q, want %q", s, got, want)
		}
	}
	f(None, "none")
	f(Automation, "automation")
	f(Table, "table")
	f(Scope(9), "unknown")
}

// TestPeekAnswersAsAllowTakingNothing: Peek gives Allow's answer at every
// point of a bucket's life, and any number of Peeks leave the buckets as
// they were.
func TestPeekAnswersAsAllowTakingNothing(t *testing.T) {
	tests := []struct {
		name              string
		automation, table *Bucket
		at                int64 // when Peek and Allow are asked, from t0
	}{
		{"both full", NewBucket(2), NewBucket(5), 0},
		{"no table", NewBucket(1), nil, 0},
		{"no automation", nil, NewBucket(1), 0},
		{"closed automation", &Bucket{}, NewBucket(5), 0},
		{"closed table", NewBucket(5), &Bucket{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Ask at t0, t0 again once a token is taken, and so on until
			// the buckets refuse, then once more after a refill.
			for i, at := range []int64{0, 0, 0, 0, 0, 0, ms(250), ms(1000)} {
				now := t0 + tc.at + at
				var ps Scope
				var pw time.Duration
				for range 3 {
					ps, pw = Peek(tc.automation, tc.table, now)
				}
				as, aw := Allow(tc.automation, tc.table, now)
				if ps != as || pw != aw {
					t.Fatalf("request %d: Peek %v %v, Allow %v %v", i, ps, pw, as, aw)
				}
			}
		})
	}
}

// TestStampsOutOfOrder: requests are stamped when they start, so
// concurrent ones reach the bucket a little out of order. One stamped a
// few microseconds before the last must not be refused for that, nor find
// more tokens than the burst.
func TestStampsOutOfOrder(t *testing.T) {
	const skew = 3 * int64(time.Microsecond)
	tests := []struct {
		rps   float64
		burst int
	}{
		{1, 1},
		{2.5, 2},
		{5, 5},
		{50, 50},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.rps), func(t *testing.T) {
			b := NewBucket(tc.rps)
			// The latest stamp comes first, the rest of the burst was
			// stamped a little before it.
			if s, _ := Allow(b, nil, t0+skew); s != None {
				t.Fatalf("first request: %v", s)
			}
			for i := 1; i < tc.burst; i++ {
				if s, _ := Allow(b, nil, t0+int64(i%3)*skew/3); s != None {
					t.Fatalf("request %d of the burst, stamped before the first: %v", i, s)
				}
			}
			// The burst is spent whatever the stamp.
			for _, at := range []int64{0, skew / 2, skew} {
				if s, wait := Allow(b, nil, t0+at); s != Automation || wait <= 0 {
					t.Fatalf("request past the burst at +%v: %v %v", time.Duration(at), s, wait)
				}
			}
			// The next token comes when the burst, taken at the latest
			// stamp, has refilled by one: an interval after it, less the
			// fraction of a token a fractional burst has over.
			iv := int64(float64(time.Second) / tc.rps)
			next := t0 + skew + int64(tc.burst+1)*iv - max(iv, int64(time.Second))
			if s, _ := Allow(b, nil, next-1); s != Automation {
				t.Fatalf("admitted a nanosecond before the next token: %v", s)
			}
			if s, _ := Allow(b, nil, next); s != None {
				t.Fatalf("refused when the next token is there: %v", s)
			}
		})
	}
}

// TestConcurrentJitteredStamps: as many goroutines as the burst take from
// full buckets, stamped a few microseconds apart and run in whatever
// order the scheduler picks: every one is admitted.
func TestConcurrentJitteredStamps(t *testing.T) {
	const burst = 50
	for round := range 50 {
		auto, table := NewBucket(burst), NewBucket(2*burst)
		var admitted atomic.Int64
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range burst {
			wg.Go(func() {
				<-start
				now := t0 + int64((g*37+round)%burst)*int64(time.Microsecond)
				if s, _ := Allow(auto, table, now); s == None {
					admitted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := admitted.Load(); got != burst {
			t.Fatalf("round %d: admitted %d of a burst of %d", round, got, burst)
		}
	}
}

// TestSetRateRaisedFromSlow: a bucket drained at a rate below one a
// second owes up to its long interval. A reload raising the rate must
// not keep it refusing for that interval: it refills at the new rate,
// drained as of its last request.
func TestSetRateRaisedFromSlow(t *testing.T) {
	tests := []struct {
		name     string
		old, new float64
	}{
		{"one an hour to 5/s", 1.0 / 3600, 5},
		{"one a minute to 1/s", 1.0 / 60, 1},
		{"one per 10s to 0.5/s", 0.1, 0.5},
		{"one a day to 1000/s", 1.0 / 86400, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBucket(tc.old)
			if s, _ := Allow(b, nil, t0); s != None {
				t.Fatalf("first request: %v", s)
			}
			b.SetRate(tc.new)
			iv := int64(float64(time.Second) / tc.new)
			// Drained at the new rate as of t0: one token an interval
			// later, and a refusal before says so.
			s, wait := Allow(b, nil, t0+iv/2)
			if s != Automation || wait <= 0 || int64(wait) > iv {
				t.Fatalf("half an interval after: %v %v, want automation within %v", s, wait, time.Duration(iv))
			}
			if s, wait := Allow(b, nil, t0+iv); s != None {
				t.Fatalf("an interval of the new rate after: %v %v", s, wait)
			}
		})
	}
}

// TestConcurrentSetRateSettles races reloads between one an hour and 5/s
// with takes: once the last reload to 5/s is done, the bucket refills at
// 5/s from its latest request, whatever take was judged at the old rate
// meanwhile.
func TestConcurrentSetRateSettles(t *testing.T) {
	for round := range 20 {
		b := NewBucket(5)
		var last atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					b.SetRate(1.0 / 3600)
				} else {
					b.SetRate(5)
				}
			}
		})
		for g := range 2 {
			wg.Go(func() {
				for i := range 2000 {
					now := t0 + int64(2*i+g)*int64(time.Millisecond)
					Allow(b, nil, now)
					for l := last.Load(); now > l && !last.CompareAndSwap(l, now); l = last.Load() {
					}
				}
			})
		}
		time.Sleep(5 * time.Millisecond)
		close(stop)
		wg.Wait()
		b.SetRate(5)
		if s, wait := Allow(b, nil, last.Load()+ms(200)); s != None {
			t.Fatalf("round %d: 200ms after the last request at 5/s: %v %v", round, s, wait)
		}
	}
}

// TestSlowRates: the configuration takes any positive rate, down to one a
// month and below; a bucket enforces it as set, with no overflow near the
// ends of the int64 clock.
func TestSlowRates(t *testing.T) {
	day := 24 * time.Hour
	for _, every := range []time.Duration{
		time.Hour, day, 30 * day, 116 * day, 365 * day, 30 * 365 * day,
	} {
		t.Run(every.String(), func(t *testing.T) {
			rps := float64(time.Second) / float64(every)
			b := NewBucket(rps)
			// 1/rps in float64 is exact to well under a microsecond.
			const slack = int64(time.Microsecond)
			if got := b.Rate(); math.Abs(got-rps) > rps*1e-9 {
				t.Fatalf("Rate() = %v, want %v", got, rps)
			}
			if s, _ := Allow(b, nil, t0); s != None {
				t.Fatalf("first request: %v", s)
			}
			s, wait := Allow(b, nil, t0+int64(every)-slack)
			if s != Automation || wait <= 0 || int64(wait) > 2*slack {
				t.Fatalf("a microsecond before the next token: %v %v", s, wait)
			}
			if s, _ := Allow(b, nil, t0+int64(every)+slack); s != None {
				t.Fatalf("when the next token is there: %v", s)
			}
		})
	}
}
