package cluster_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/cluster"
	"github.com/hookgate/hookgate/cluster/redistest"
	"github.com/hookgate/hookgate/idempotency"
	"github.com/hookgate/hookgate/limiter"
	"github.com/redis/rueidis"
)

func TestTokenKey(t *testing.T) {
	f := func(a1, t1, a2, t2 string, same bool) {
		t.Helper()
		if got := cluster.TokenKey(a1, []byte(t1)) == cluster.TokenKey(a2, []byte(t2)); got != same {
			t.Errorf("TokenKey(%q, %q) == TokenKey(%q, %q): %v, want %v", a1, t1, a2, t2, got, same)
		}
	}
	f("a", "tok", "a", "tok", true)
	f("a", "bc", "ab", "c", false)
	f("a", "tok", "b", "tok", false)
	f("a", "tok", "a", "tok2", false)
	long := strings.Repeat("x", 1000) // beyond the stack buffer
	f("a", long, "a", long, true)
	f("a", long, "a", long+"y", false)
	// Fixed across processes and versions: replicas must agree.
	if k := cluster.TokenKey("new_product", []byte("6f1c1a57-1d9c-4a1e-9b1a-6a2f0e0b7c11")); k == (idempotency.Key{}) {
		t.Errorf("zero key")
	}
}

// TestClaimConcurrent: 100 concurrent Claims of one token split across two
// gateways: exactly one is Claimed; after Done both answer Duplicate.
func TestClaimConcurrent(t *testing.T) {
	srv := redistest.Start(t)
	prefix := prefixFor(t)
	c1, c2 := open(t, srv, prefix, nil), open(t, srv, prefix, nil)
	stores := []*cluster.Tokens{c1.Tokens(), c2.Tokens()}
	token := []byte("6f1c1a57-1d9c-4a1e-9b1a-6a2f0e0b7c11")
	var (
		mu      sync.Mutex
		results = map[idempotency.Result]int{}
		claimer *cluster.Tokens
		ticket  idempotency.Ticket
		wg      sync.WaitGroup
		ready   = make(chan struct{})
	)
	for i := range 100 {
		s := stores[i%2]
		wg.Go(func() {
			<-ready
			tk, r := s.Claim("tbl", "new_product", token, now())
			mu.Lock()
			results[r]++
			if r == idempotency.Claimed {
				claimer, ticket = s, tk
			}
			mu.Unlock()
		})
	}
	close(ready)
	wg.Wait()
	if results[idempotency.Claimed] != 1 || results[idempotency.InFlight] != 99 {
		t.Fatalf("results %v: want 1 claimed, 99 in flight", results)
	}
	other := stores[0]
	if other == claimer {
		other = stores[1]
	}
	claimer.Done(ticket, now())
	awaitDuplicate(t, "the other gateway's Claim", func() idempotency.Result {
		_, r := other.Claim("tbl", "new_product", token, now())
		return r
	})
	// The other gateway learnt it from Redis and caches it: soon it
	// answers without asking (the cache's writes are asynchronous).
	oc := c1
	if other == stores[1] {
		oc = c2
	}
	if !eventually(t, time.Second, func() bool {
		_, r := other.Claim("tbl", "new_product", token, now())
		return r == idempotency.Duplicate && oc.Stats().CacheHits > 0
	}) {
		t.Errorf("no cache hit: %+v", oc.Stats())
	}
	// Another automation's same token is a different pair.
	if _, r := other.Claim("tbl", "other_automation", token, now()); r != idempotency.Claimed {
		t.Errorf("same token, other automation: %v, want claimed", r)
	}
}

// TestClaimRelease: a released token can be claimed again, by any
// gateway; a done one cannot be released.
func TestClaimRelease(t *testing.T) {
	srv := redistest.Start(t)
	prefix := prefixFor(t)
	s1, s2 := open(t, srv, prefix, nil).Tokens(), open(t, srv, prefix, nil).Tokens()
	var tk idempotency.Ticket
	steps := []struct {
		name string
		do   func() idempotency.Result
		want idempotency.Result
	}{
		{"claim on 1", claimOn(s1, &tk), idempotency.Claimed},
		{"claim on 2 while in flight", claimOn(s2, nil), idempotency.InFlight},
		{"release on 1", func() idempotency.Result { s1.Release(tk); return idempotency.Claimed }, idempotency.Claimed},
		{"claim on 2 after release", claimOn(s2, &tk), idempotency.Claimed},
		{"done on 2", func() idempotency.Result {
			s2.Done(tk, now())
			awaitDuplicate(t, "claim on 2 after done", claimOn(s2, nil))
			return idempotency.Claimed
		}, idempotency.Claimed},
		{"release on 1 of a done token", func() idempotency.Result { s1.Release(tk); return idempotency.Claimed }, idempotency.Claimed},
		{"claim on 1 after done and release", claimOn(s1, nil), idempotency.Duplicate},
	}
	for _, st := range steps {
		if got := st.do(); got != st.want {
			t.Fatalf("%s: %v, want %v", st.name, got, st.want)
		}
	}
}

// claimOn claims the token "tok" of automation "a1" on s, keeping the
// ticket in tk when it is not nil.
func claimOn(s *cluster.Tokens, tk *idempotency.Ticket) func() idempotency.Result {
	return func() idempotency.Result {
		got, r := s.Claim("tbl", "a1", []byte("tok"), now())
		if tk != nil {
			*tk = got
		}
		return r
	}
}

// TestClaimOutage: with Redis stopped or hung, Claim answers Unavailable
// within Timeout, never Claimed; claims work again when it returns.
func TestClaimOutage(t *testing.T) {
	srv := redistest.Start(t)
	if !srv.CanStop() {
		t.Skip("needs a private redis-server")
	}
	for _, mode := range []string{"stopped", "hung"} {
		t.Run(mode, func(t *testing.T) {
			const timeout = 150 * time.Millisecond
			c := open(t, srv, prefixFor(t), func(cfg *cluster.Config) {
				cfg.Timeout = timeout
				cfg.RetryInterval = 30 * time.Millisecond
			})
			s := c.Tokens()
			if _, r := s.Claim("tbl", "a1", []byte("warm"), now()); r != idempotency.Claimed {
				t.Fatalf("before the outage: %v", r)
			}
			if mode == "stopped" {
				srv.Stop(t, true)
			} else {
				srv.Pause(t)
			}
			for i := range 20 {
				start := time.Now()
				_, r := s.Claim("tbl", "a1", []byte("tok"), now())
				if r != idempotency.Unavailable {
					t.Fatalf("claim %d during the outage: %v, want unavailable", i, r)
				}
				if d := time.Since(start); d > timeout+timeout/8+50*time.Millisecond {
					t.Errorf("claim %d took %v, more than the timeout %v", i, d, timeout)
				}
				time.Sleep(10 * time.Millisecond)
			}
			// Done and Release fail within the timeout too.
			start := time.Now()
			s.Release(idempotency.Ticket{Table: "tbl", Automation: "a1", Key: cluster.TokenKey("a1", []byte("warm"))})
			if d := time.Since(start); d > 2*(timeout+timeout/8)+50*time.Millisecond {
				t.Errorf("Release took %v", d)
			}
			if st := c.Stats(); st.Unavailable != 20 || !st.Down {
				t.Errorf("stats %+v: want 20 unavailable, down", st)
			}
			if mode == "stopped" {
				srv.Restart(t)
			} else {
				srv.Resume(t)
			}
			if !eventually(t, 5*time.Second, func() bool {
				_, r := s.Claim("tbl", "a1", []byte("fresh"), now())
				return r == idempotency.Claimed
			}) {
				t.Fatalf("claims still refused 5s after redis returned: %+v", c.Stats())
			}
			// A claim that timed out while Redis hung was still sent, and
			// Redis ran it when it woke: the token is then in flight
			// (until InFlightTTL), which refuses retries but never
			// triggers twice. A stopped Redis ran none of them.
			_, r := s.Claim("tbl", "a1", []byte("tok"), now())
			if want := map[string]idempotency.Result{"stopped": idempotency.Claimed, "hung": idempotency.InFlight}[mode]; r != want {
				t.Errorf("token claimed during the outage: %v, want %v", r, want)
			}
			// The token claimed before the outage survived it (kept data):
			// it is still in flight.
			if _, r := s.Claim("tbl", "a1", []byte("warm"), now()); r != idempotency.InFlight {
				t.Errorf("token claimed before the outage: %v, want in flight", r)
			}
		})
	}
}

// TestKeysNamespacedWithTTL: every key the package writes is under the
// prefix, has the documented shape, and expires.
func TestKeysNamespacedWithTTL(t *testing.T) {
	srv := redistest.Start(t)
	rdb := inspect(t, srv)
	prefix := prefixFor(t)
	const inFlight, window = 30 * time.Second, time.Hour
	c := open(t, srv, prefix, func(cfg *cluster.Config) {
		cfg.InFlightTTL = inFlight
		cfg.Window = window
	})
	l, s := c.Limiter(), c.Tokens()
	for range 3 {
		l.Allow("tbl_menu", "new_product", limiter.NewBucket(50), limiter.NewBucket(5), now())
	}
	s.Claim("tbl_menu", "new_product", []byte("in-flight"), now())
	tk, _ := s.Claim("tbl_menu", "new_product", []byte("done"), now())
	s.Done(tk, now())
	awaitDuplicate(t, "the done token", func() idempotency.Result {
		_, r := s.Claim("tbl_menu", "new_product", []byte("done"), now())
		return r
	})
	tk, _ = s.Claim("tbl_menu", "new_product", []byte("released"), now())
	s.Release(tk)

	all := keys(t, rdb, "")
	if !srv.CanStop() { // a shared Redis holds others' keys
		all = keys(t, rdb, prefix)
	}
	doneKey := prefix + "ct:{tbl_menu}:" + hexKey(cluster.TokenKey("new_product", []byte("done")))
	want := map[string]time.Duration{
		prefix + "rl:{tbl_menu}:t":             2 * time.Second,
		prefix + "rl:{tbl_menu}:a:new_product": 2 * time.Second,
		doneKey:                                window,
		prefix + "ct:{tbl_menu}:" + hexKey(cluster.TokenKey("new_product", []byte("in-flight"))): inFlight,
	}
	if len(all) != len(want) {
		t.Errorf("keys %q, want %d", all, len(want))
	}
	for _, k := range all {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("key %q is not under the prefix %q", k, prefix)
			continue
		}
		max, ok := want[k]
		if !ok {
			t.Errorf("unexpected key %q", k)
			continue
		}
		if d := pttl(t, rdb, k); d <= 0 || d > max {
			t.Errorf("PTTL %s = %v, want in (0, %v]", k, d, max)
		}
	}
	if v := get(t, rdb, doneKey); v != "d" {
		t.Errorf("done token holds %q, want d", v)
	}
}

func hexKey(k idempotency.Key) string {
	const digits = "0123456789abcdef"
	var b [32]byte
	for i := range 16 {
		w := k.Hi
		if i >= 8 {
			w = k.Lo
		}
		x := byte(w >> (56 - 8*(i%8)))
		b[2*i], b[2*i+1] = digits[x>>4], digits[x&15]
	}
	return string(b[:])
}

// TestMemoryUsage measures what one token and one bucket cost in Redis;
// the package documentation quotes these figures.
func TestMemoryUsage(t *testing.T) {
	srv := redistest.Start(t)
	rdb := inspect(t, srv)
	c := open(t, srv, cluster.DefaultPrefix, nil)
	if !srv.CanStop() {
		t.Skip("measures with the default prefix: needs a private redis-server")
	}
	if s, _ := c.Limiter().Allow("tbl_1234", "aut_1234", limiter.NewBucket(50), limiter.NewBucket(5), now()); s != limiter.None {
		t.Fatalf("refused by %v", s)
	}
	s := c.Tokens()
	tk, _ := s.Claim("tbl_1234", "aut_1234", []byte("6f1c1a57-1d9c-4a1e-9b1a-6a2f0e0b7c11"), now())
	s.Done(tk, now())
	awaitDuplicate(t, "the done token", func() idempotency.Result {
		_, r := s.Claim("tbl_1234", "aut_1234", []byte("6f1c1a57-1d9c-4a1e-9b1a-6a2f0e0b7c11"), now())
		return r
	})
	usage := func(key string) int64 {
		n, err := rdb.Do(context.Background(), rdb.B().MemoryUsage().Key(key).Build()).AsInt64()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", key, err)
		}
		return n
	}
	tests := []struct {
		name, key string
		max       int64 // what the package documentation says
		// A Lua loop making n keys of the key's shape, for the memory
		// they take at scale: with their expiries and the hash tables.
		many string
	}{
		{"client-token", "hookgate:ct:{tbl_1234}:" + hexKey(tk.Key), 120,
			`for i=1,50000 do redis.call('SET', string.format('hookgate:ct:{t%07d}:%032x', i, i), 'd', 'PX', 600000) end`},
		{"table bucket", "hookgate:rl:{tbl_1234}:t", 72,
			`for i=1,50000 do redis.call('SET', string.format('hookgate:rl:{t%07d}:t', i), '1700000000123456', 'PX', 600000) end`},
		{"automation bucket", "hookgate:rl:{tbl_1234}:a:aut_1234", 88,
			`for i=1,50000 do redis.call('SET', string.format('hookgate:rl:{t%07d}:a:aut_1234', i), '1700000000123456', 'PX', 600000) end`},
	}
	ctx := context.Background()
	usedMemory := func() int64 {
		info, err := rdb.Do(ctx, rdb.B().Info().Section("memory").Build()).ToString()
		if err != nil {
			t.Fatalf("INFO memory: %v", err)
		}
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					t.Fatalf("used_memory %q: %v", v, err)
				}
				return n
			}
		}
		t.Fatalf("no used_memory in INFO memory")
		return 0
	}
	sizes := make([]int64, len(tests))
	for i, tc := range tests {
		if sizes[i] = usage(tc.key); sizes[i] > tc.max {
			t.Errorf("%s: %d bytes, documented as %d", tc.name, sizes[i], tc.max)
		}
	}
	for i, tc := range tests {
		n := sizes[i]
		if err := rdb.Do(ctx, rdb.B().Flushall().Build()).Error(); err != nil {
			t.Fatal(err)
		}
		before := usedMemory()
		if err := rdb.Do(ctx, rdb.B().Eval().Script(tc.many).Numkeys(0).Build()).Error(); err != nil && !rueidis.IsRedisNil(err) {
			t.Fatalf("making keys: %v", err)
		}
		each := (usedMemory() - before) / 50000
		t.Logf("%s %s: MEMORY USAGE %d bytes; %d bytes each among 50000", tc.name, tc.key, n, each)
		if each > 2*tc.max {
			t.Errorf("%s: %d bytes each at scale", tc.name, each)
		}
	}
}

// TestDoneTokenCache: a token marked done is cached once a Claim finds it
// done in Redis, not by Done itself (most tokens never come back); when
// Done cannot reach Redis the token is cached at once, so this gateway
// still answers its repeats Duplicate.
func TestDoneTokenCache(t *testing.T) {
	srv := redistest.Start(t)
	c := open(t, srv, prefixFor(t), func(cfg *cluster.Config) {
		cfg.Timeout = 150 * time.Millisecond
		cfg.RetryInterval = 10 * time.Millisecond
	})
	s := c.Tokens()
	tk, r := s.Claim("tbl", "a1", []byte("once"), now())
	if r != idempotency.Claimed {
		t.Fatalf("claim: %v", r)
	}
	s.Done(tk, now())
	time.Sleep(100 * time.Millisecond) // were Done to cache, the cache's asynchronous write would land
	before := c.Stats()
	if _, r := s.Claim("tbl", "a1", []byte("once"), now()); r != idempotency.Duplicate {
		t.Fatalf("first repeat: %v, want duplicate", r)
	}
	if st := c.Stats(); st.RoundTrips != before.RoundTrips+1 || st.CacheHits != 0 {
		t.Errorf("first repeat: %d round trips, %d cache hits; want 1 and 0 (Done does not cache)",
			st.RoundTrips-before.RoundTrips, st.CacheHits)
	}
	if !eventually(t, time.Second, func() bool {
		_, r := s.Claim("tbl", "a1", []byte("once"), now())
		return r == idempotency.Duplicate && c.Stats().CacheHits > 0
	}) {
		t.Fatalf("repeats never answered by the cache: %+v", c.Stats())
	}

	if !srv.CanStop() {
		t.Skip("the rest needs a private redis-server")
	}
	tk, r = s.Claim("tbl", "a1", []byte("lost-done"), now())
	if r != idempotency.Claimed {
		t.Fatalf("claim: %v", r)
	}
	srv.Stop(t, true)
	s.Done(tk, now()) // fails: Redis is down
	hits := c.Stats().CacheHits
	if !eventually(t, time.Second, func() bool {
		_, r := s.Claim("tbl", "a1", []byte("lost-done"), now())
		return r == idempotency.Duplicate
	}) {
		t.Fatalf("a token whose Done failed is not answered duplicate here: %+v", c.Stats())
	}
	if c.Stats().CacheHits == hits {
		t.Error("the duplicate did not come from the cache")
	}
	srv.Restart(t)
}

// TestDoneQueued: Done returns before Redis has the mark; concurrent marks
// all land, with the window's TTL, and Close sends those still queued —
// a gateway stopping gracefully leaves no answered token in flight.
func TestDoneQueued(t *testing.T) {
	srv := redistest.Start(t)
	rdb := inspect(t, srv)
	prefix := prefixFor(t)
	c, err := cluster.Open(cluster.Config{URL: srv.URL, Prefix: prefix, Timeout: time.Second})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s := c.Tokens()
	const n = 2000
	tks := claimMany(t, s, n)
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for i := g; i < n; i += 20 {
				s.Done(tks[i], now())
			}
		})
	}
	wg.Wait()
	c.Close()
	checkDone(t, rdb, prefix, tks)
	if st := c.Stats(); st.Errors != 0 || st.RoundTrips != 2*n || st.DoneMarks != n || st.MarkBatches < 1 || st.MarkBatches > n {
		t.Errorf("stats %+v: want no errors, %d commands, %d marks in 1 to %d batches", st, 2*n, n, n)
	} else {
		t.Logf("%d marks in %d batches", st.DoneMarks, st.MarkBatches)
	}
}

// TestDoneQueueBounded: while Redis does not answer, Done queues up to
// MaxQueuedMarks marks and returns; past them a Done sends its own mark
// and waits for Redis, so a slow Redis slows the requests instead of
// growing the queue. Every mark lands once Redis answers.
func TestDoneQueueBounded(t *testing.T) {
	srv := redistest.Start(t)
	if !srv.CanStop() {
		t.Skip("needs a private redis-server to pause")
	}
	rdb := inspect(t, srv)
	prefix := prefixFor(t)
	c, err := cluster.Open(cluster.Config{URL: srv.URL, Prefix: prefix, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s := c.Tokens()
	n := 2 * cluster.MaxQueuedMarks // past the bound, whatever the writer took first
	tks := claimMany(t, s, n)
	const paused = 300 * time.Millisecond
	srv.Pause(t)
	resumed := time.AfterFunc(paused, func() { srv.Resume(t) })
	defer resumed.Stop()
	start := time.Now()
	for _, tk := range tks {
		s.Done(tk, now())
	}
	// The Dones past the bound waited for Redis, which answered only
	// once resumed; an unbounded queue would have returned at once.
	if d := time.Since(start); d < paused-50*time.Millisecond {
		t.Errorf("%d Dones returned after %v with Redis paused for %v: the queue is not bounded", n, d, paused)
	}
	c.Close()
	checkDone(t, rdb, prefix, tks)
	if st := c.Stats(); st.DoneMarks != uint64(n) || st.Errors != 0 {
		t.Errorf("stats %+v: want %d marks and no errors", st, n)
	}
}

// claimMany claims n distinct tokens of automation a1 in table tbl.
func claimMany(t *testing.T, s *cluster.Tokens, n int) []idempotency.Ticket {
	t.Helper()
	tks := make([]idempotency.Ticket, n)
	for i := range tks {
		tk, r := s.Claim("tbl", "a1", []byte(fmt.Sprintf("token-%d", i)), now())
		if r != idempotency.Claimed {
			t.Fatalf("claim %d: %v", i, r)
		}
		tks[i] = tk
	}
	return tks
}

// checkDone fails unless every ticket's key in Redis is done, for the
// window.
func checkDone(t *testing.T, rdb rueidis.Client, prefix string, tks []idempotency.Ticket) {
	t.Helper()
	for i, tk := range tks {
		key := prefix + "ct:{tbl}:" + hexKey(tk.Key)
		if v := get(t, rdb, key); v != "d" {
			t.Fatalf("token %d after Done and Close: %q, want d", i, v)
		}
		if ttl := pttl(t, rdb, key); ttl < cluster.DefaultWindow-time.Minute {
			t.Fatalf("token %d: TTL %v, want the window", i, ttl)
		}
	}
}
