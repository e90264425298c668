package idempotency

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// t0 is an arbitrary realistic Unix time, so the tests cover timestamps of
// the size the gateway passes in.
const t0 = int64(1_767_225_600) * int64(time.Second)

const window = 3 * time.Hour

func tok(i uint64) []byte {
	return binary.LittleEndian.AppendUint64([]byte("client-token-"), i)
}

func TestStateTransitions(t *testing.T) {
	type op struct {
		do   string // "claim", "done", "release"
		at   time.Duration
		want Result // for claim
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{"second claim is in flight", []op{
			{"claim", 0, Claimed},
			{"claim", time.Second, InFlight},
			{"claim", time.Hour, InFlight},
		}},
		{"done is duplicate", []op{
			{"claim", 0, Claimed},
			{"done", time.Second, 0},
			{"claim", 2 * time.Second, Duplicate},
			{"claim", window, Duplicate},
		}},
		{"release lets the retry claim", []op{
			{"claim", 0, Claimed},
			{"release", time.Second, 0},
			{"claim", 2 * time.Second, Claimed},
			{"claim", 3 * time.Second, InFlight},
		}},
		{"done expires a window after done", []op{
			{"claim", 0, Claimed},
			{"done", time.Minute, 0},
			{"claim", time.Minute + window - 1, Duplicate},
			{"claim", time.Minute + window, Claimed},
			{"claim", time.Minute + window + 1, InFlight},
		}},
		// A hand-over may outlast a short window (a slow engine, a
		// stalled disk under the file sink): a claim that lapsed would let
		// a retry trigger while the first request can still trigger too.
		{"in flight outlasts the window", []op{
			{"claim", 0, Claimed},
			{"claim", window, InFlight},
			{"claim", 10 * window, InFlight},
			{"done", 10 * window, 0},
			{"claim", 11*window - 1, Duplicate},
			{"claim", 11 * window, Claimed},
		}},
		{"release keeps a done token", []op{
			{"claim", 0, Claimed},
			{"done", 0, 0},
			{"release", time.Second, 0},
			{"claim", 2 * time.Second, Duplicate},
		}},
		{"release of an absent token is harmless", []op{
			{"release", 0, 0},
			{"claim", 0, Claimed},
		}},
		{"done without a live claim records the token", []op{
			{"claim", 0, Claimed},
			{"release", time.Second, 0},
			{"done", 2 * time.Second, 0},
			{"claim", 3 * time.Second, Duplicate},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(1000, window)
			k := s.Key("auto", []byte("3f2c9c1e-7d0e-4a8f-9d43-0c8b1b7e9a11"))
			for i, o := range tc.ops {
				now := t0 + int64(o.at)
				switch o.do {
				case "claim":
					if got := s.Claim(k, now); got != o.want {
						t.Fatalf("op %d claim at +%v: got %v, want %v", i, o.at, got, o.want)
					}
				case "done":
					s.Done(k, now)
				case "release":
					s.Release(k)
				}
			}
		})
	}
}

func TestKeyIsUnambiguous(t *testing.T) {
	s := New(1000, window)
	f := func(a1, t1, a2, t2 string, same bool) {
		t.Helper()
		k1, k2 := s.Key(a1, []byte(t1)), s.Key(a2, []byte(t2))
		if (k1 == k2) != same {
			t.Fatalf("Key(%q,%q) == Key(%q,%q): %v, want %v", a1, t1, a2, t2, k1 == k2, same)
		}
	}
	f("a", "bc", "ab", "c", false)
	f("", "abc", "abc", "", false)
	f("auto1", "tok", "auto2", "tok", false)
	f("auto", "tok1", "auto", "tok2", false)
	f("auto", "tok", "auto", "tok", true)
	// A length prefix must not be forgeable from inside the automation id.
	f("a\x01\x00\x00\x00\x00\x00\x00\x00", "b", "a", "\x01\x00\x00\x00\x00\x00\x00\x00b", false)

	// Either side of the stack buffer's limit.
	long := strings.Repeat("t", keyBuf)
	f("auto", long, "auto", long, true)
	f("auto", long, "auto", long[1:], false)
	f("auto", long[:keyBuf-8-4], "auto", long[:keyBuf-8-3], false)

	// Two Stores draw their own seeds.
	if New(1000, window).Key("a", []byte("b")) == s.Key("a", []byte("b")) {
		t.Fatal("two Stores share a key: the seeds are not per Store")
	}
}

// TestSameKeyConcurrently releases 100 goroutines at once on one key:
// exactly one may claim it.
func TestSameKeyConcurrently(t *testing.T) {
	for round := range 20 {
		s := New(1000, window)
		k := s.Key("auto", []byte("the-token"))
		var mu sync.Mutex
		counts := map[Result]int{}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				<-start
				r := s.Claim(k, t0)
				mu.Lock()
				counts[r]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if counts[Claimed] != 1 || counts[InFlight] != 99 {
			t.Fatalf("round %d: got %v, want 1 claimed and 99 in flight", round, counts)
		}
	}
}

// TestManyKeysConcurrently races two claimers on each of 10,000 keys:
// goroutines come in pairs that walk the same keys in the same order, so
// the two of a pair keep colliding on one key.
func TestManyKeysConcurrently(t *testing.T) {
	const keys, pairs = 10_000, 4
	s := New(4_000_000, window)
	claimed := make([]atomic.Int32, keys)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 * pairs {
		wg.Go(func() {
			<-start
			for i := g % pairs; i < keys; i += pairs {
				if s.Claim(s.Key("auto", tok(uint64(i))), t0) == Claimed {
					claimed[i].Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range claimed {
		if n := claimed[i].Load(); n != 1 {
			t.Fatalf("key %d claimed %d times", i, n)
		}
	}
	if got := s.Len(); got != keys {
		t.Fatalf("Len() = %d, want %d", got, keys)
	}
}

func TestCapacityBound(t *testing.T) {
	tests := []struct {
		capacity int
		exact    bool // one shard: Full comes exactly at capacity
	}{
		{1, true},
		{100, true},
		{5000, true},
		{40_000, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.capacity), func(t *testing.T) {
			s := New(tc.capacity, window)
			held := 0
			var firstFull int = -1
			var inFlight []Key
			for i := range 2 * tc.capacity {
				k := s.Key("auto", tok(uint64(i)))
				switch r := s.Claim(k, t0+int64(i)); r {
				case Claimed:
					held++
					if i%2 == 0 {
						s.Done(k, t0+int64(i))
					} else {
						inFlight = append(inFlight, k)
					}
				case Full:
					if firstFull < 0 {
						firstFull = i
					}
				default:
					t.Fatalf("claim %d: %v", i, r)
				}
			}
			if held > tc.capacity || s.Len() > tc.capacity {
				t.Fatalf("held %d, Len %d, above capacity %d", held, s.Len(), tc.capacity)
			}
			if tc.exact && firstFull != tc.capacity {
				t.Fatalf("first Full at %d, want %d", firstFull, tc.capacity)
			}
			if held < tc.capacity*9/10 {
				t.Fatalf("held only %d of %d before Full", held, tc.capacity)
			}
			// Nothing held was forgotten to make room.
			for i := range tc.capacity / 2 {
				k := s.Key("auto", tok(uint64(i)))
				if r := s.Claim(k, t0+int64(2*tc.capacity)); r != Duplicate && r != InFlight && r != Full {
					t.Fatalf("token %d: %v after the store filled up", i, r)
				}
			}
			// A window later the done tokens have expired; those in
			// flight stay until released. Both make room.
			later := t0 + int64(window) + int64(2*tc.capacity)
			if len(inFlight) > 0 {
				if r := s.Claim(inFlight[0], later); r != InFlight {
					t.Fatalf("a token in flight a window later: %v", r)
				}
			}
			for _, k := range inFlight {
				s.Release(k)
			}
			for i := range tc.capacity / 2 {
				k := s.Key("other", tok(uint64(i)))
				if r := s.Claim(k, later); r != Claimed {
					t.Fatalf("claim %d after the window: %v", i, r)
				}
			}
		})
	}
}

// TestAgainstModel runs random operations with synthetic time against the
// Store and an obviously correct map. With one shard Full is exact, so the
// model predicts every answer.
func TestAgainstModel(t *testing.T) {
	type entry struct {
		inFlight bool
		exp      int64
	}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		const win, capacity, tokens = 1000, 60, 200
		s := New(capacity, win)
		model := map[Key]entry{}
		// live counts the unexpired entries and drops the rest, which
		// count as absent, so the model stays small.
		live := func(now int64) int {
			for k, e := range model {
				if e.exp <= now {
					delete(model, k)
				}
			}
			return len(model)
		}
		now := t0
		for i := range 20_000 {
			now += int64(rng.IntN(20))
			k := s.Key(fmt.Sprint("auto", rng.IntN(3)), tok(uint64(rng.IntN(tokens))))
			e, ok := model[k]
			present := ok && e.exp > now
			switch op := rng.IntN(10); {
			case op < 6:
				want := Claimed
				switch {
				case present && e.inFlight:
					want = InFlight
				case present:
					want = Duplicate
				case live(now) >= capacity:
					want = Full
				}
				if got := s.Claim(k, now); got != want {
					t.Fatalf("seed %d op %d: claim got %v, want %v", seed, i, got, want)
				}
				if want == Claimed { // in flight until Done or Release
					model[k] = entry{inFlight: true, exp: math.MaxInt64}
				}
			case op < 8:
				if present || live(now) < capacity {
					model[k] = entry{exp: now + win}
				}
				s.Done(k, now)
			default:
				if ok && e.inFlight {
					delete(model, k)
				}
				s.Release(k)
			}
			if n := s.Len(); n < live(now) || n > capacity {
				t.Fatalf("seed %d op %d: Len %d, live %d, capacity %d", seed, i, n, live(now), capacity)
			}
		}
	}
}

// TestSweepReclaims checks that expired tokens are deleted by later
// Claims of other keys, not only when the store fills up.
func TestSweepReclaims(t *testing.T) {
	s := New(100_000, window)
	for i := range 10_000 {
		k := s.Key("a", tok(uint64(i)))
		s.Claim(k, t0)
		s.Done(k, t0)
	}
	if s.Len() != 10_000 {
		t.Fatalf("Len %d", s.Len())
	}
	later := t0 + int64(window)
	for i := range 20_000 {
		s.Claim(s.Key("b", tok(uint64(i))), later+int64(i))
	}
	if got := s.Len(); got != 20_000 {
		t.Fatalf("Len %d after the sweep, want 20000 (the expired 10000 reclaimed)", got)
	}
}

func TestShardLayout(t *testing.T) {
	if got := unsafe.Sizeof(shard{}); got != 128 {
		t.Fatalf("shard is %d bytes, want 128 (two cache lines)", got)
	}
	if got := unsafe.Sizeof(slot{}); got != 24 {
		t.Fatalf("slot is %d bytes, want 24", got)
	}
	f := func(capacity, wantShards int) {
		t.Helper()
		s := New(capacity, window)
		total := 0
		for i := range s.shards {
			sh := &s.shards[i]
			total += sh.cap
			if sh.maxSlots*loadNum < sh.cap*loadDen {
				t.Fatalf("capacity %d: shard %d table of %d cannot hold %d", capacity, i, sh.maxSlots, sh.cap)
			}
		}
		if len(s.shards) != wantShards || total != capacity {
			t.Fatalf("capacity %d: %d shards holding %d, want %d holding %d", capacity, len(s.shards), total, wantShards, capacity)
		}
	}
	f(1, 1)
	f(8191, 1)
	f(8192, 2)
	f(1_000_000, 128)
	f(4_000_000, 256)
	f(4_000_003, 256)
}

func TestNewPanics(t *testing.T) {
	f := func(capacity int, w time.Duration) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Fatalf("New(%d, %v) did not panic", capacity, w)
			}
		}()
		New(capacity, w)
	}
	f(0, window)
	f(10, 0)
}

func TestResultString(t *testing.T) {
	f := func(r Result, want string) {
		t.Helper()
		if got := r.String(); got != want {
			t.Fatalf("%d: got %q, want %q", r, got, want)
		}
	}
	f(Claimed, "claimed")
	f(InFlight, "in_flight")
	f(Duplicate, "duplicate")
	f(Full, "full")
	f(Result(9), "unknown")
}

// TestStale checks the branch-free test the sweep and the probe use
// against its definition: a slot holds a token (word != 0) whose expiry
// |word| is at or before now.
func TestStale(t *testing.T) {
	const now = t0
	for _, tc := range []struct {
		word int64
		want bool
	}{
		{0, false},
		{now, true},
		{-now, true},
		{now - 1, true},
		{-(now - 1), true},
		{1, true},
		{-1, true},
		{now + 1, false},
		{-(now + 1), false},
		{math.MaxInt64, false},
		{-math.MaxInt64, false},
	} {
		want := tc.word != 0 && expired(tc.word, now)
		if want != tc.want {
			t.Fatalf("table row %d: definition says %v", tc.word, want)
		}
		if got := stale(tc.word, now); got != tc.want {
			t.Errorf("stale(%d, now) = %v, want %v", tc.word, got, tc.want)
		}
	}
}

// TestKeyShortEqualsLong checks that the stack-buffer hash is the same
// function as the streaming one, at every length up to and past the
// buffer, so where Key switches from one to the other is not visible.
func TestKeyShortEqualsLong(t *testing.T) {
	s := New(1000, window)
	token := []byte(strings.Repeat("0123456789abcdef", 9))
	for _, automation := range []string{"", "new_product"} {
		for n := range token {
			if got, want := s.Key(automation, token[:n]), s.keyLong(automation, token[:n]); got != want {
				t.Fatalf("automation %q, token of %d bytes: Key %v, keyLong %v", automation, n, got, want)
			}
		}
	}
}

// TestClockEdges claims and marks done one token at the ends of the
// clock's range — the epoch, a clock set before it, the largest window a
// configuration can name, the last representable instants — then claims
// enough other tokens for the sweep to pass over every slot: the token
// must still be a duplicate throughout.
func TestClockEdges(t *testing.T) {
	tests := []struct {
		name   string
		now    int64
		window time.Duration
	}{
		{"epoch", 0, window},
		{"just after the epoch", 1, window},
		{"a clock before the epoch", -1, window},
		{"a clock an hour before the epoch", -int64(time.Hour), window},
		{"a clock more than a window before the epoch", -2 * int64(window), window},
		{"the longest window", t0, time.Duration(math.MaxInt64)}, // idempotency_window: 2562047h47m16.854775807s
		{"a window past the year 2262", t0, 250 * 365 * 24 * time.Hour},
		{"the last instants", math.MaxInt64 - int64(time.Second), window},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(1000, tc.window)
			k := s.Key("auto", []byte("3f2c9c1e-7d0e-4a8f-9d43-0c8b1b7e9a11"))
			if r := s.Claim(k, tc.now); r != Claimed {
				t.Fatalf("first claim: %v", r)
			}
			if r := s.Claim(k, tc.now); r != InFlight {
				t.Fatalf("claim while in flight: %v, want in flight", r)
			}
			s.Done(k, tc.now)
			for i := range 500 { // 63 sweeps of 128 slots: the whole table, many times
				if r := s.Claim(s.Key("other", tok(uint64(i))), tc.now); r != Claimed {
					t.Fatalf("other token %d: %v", i, r)
				}
				if r := s.Claim(k, tc.now); r != Duplicate {
					t.Fatalf("after %d other claims: %v, want duplicate", i+1, r)
				}
			}
			if n := s.Len(); n != 501 {
				t.Fatalf("Len %d, want 501: live tokens were dropped", n)
			}
		})
	}
}
