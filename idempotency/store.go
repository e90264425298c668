// Package idempotency remembers Client-Tokens (SPEC §2, §3 rows 12 and 12b,
// §7) so that the same non-empty token for the same automation triggers at
// most once within the window, exactly, under any concurrency.
//
// A cache that may drop or delay writes cannot be the authority for "at most
// once", so the Store is an exact set with set-if-absent: Claim puts a token
// in flight until Done remembers it until the window has passed, or Release
// forgets it (the flow engine refused the event, so the caller's retry must
// trigger). It never forgets an unexpired token to make room: when it holds
// its capacity of live tokens, Claim answers Full and the gateway refuses
// the request instead of risking a second trigger.
//
// Time is passed in by the caller as Unix nanoseconds (the request's own
// timestamp) and never read here. No goroutine runs in the background:
// expired tokens are reclaimed by the calls themselves.
package idempotency

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"time"
)

// Key identifies one (automation, Client-Token) pair: 128 bits of hash.
// A Key made by Store.Key is keyed with that Store's random seeds and only
// meaningful to it; other stores (a shared one across gateways) fill in
// their own deterministic hash.
type Key struct {
	Hi, Lo uint64
}

// Ticket names one claimed (automation, Client-Token) pair, to be passed
// back to Done or Release by whichever store issued it. Table is the
// automation's table, by which a shared store keeps a table's keys
// together. Claim tells this claim from later ones of the same key, for a
// store whose Release must free only its own claim (a shared one, where
// a claim can lapse, or a Release be delivered twice); 0 where unused.
type Ticket struct {
	Table      string
	Automation string
	Key        Key
	Claim      uint64
}

// Key returns the key of token for automation. The hash is keyed with two
// seeds drawn at random when the Store is made, so a caller cannot craft
// two tokens that collide, and the automation id is length-prefixed so
// ("a", "bc") and ("ab", "c") hash differently. It does not allocate and
// does not retain token.
func (s *Store) Key(automation string, token []byte) Key {
	if len(automation)+len(token) <= keyBuf-8 {
		// The common case (an id and a UUID) hashes a copy on the stack:
		// maphash.Bytes is the same hash as Hash.Write then Sum64, at a
		// third of the cost.
		var b [keyBuf]byte
		binary.LittleEndian.PutUint64(b[:8], uint64(len(automation)))
		n := 8 + copy(b[8:], automation)
		n += copy(b[n:], token)
		return Key{Hi: maphash.Bytes(s.seedHi, b[:n]), Lo: maphash.Bytes(s.seedLo, b[:n])}
	}
	return s.keyLong(automation, token)
}

// keyBuf is the stack buffer Key hashes from: the length prefix, the
// automation id and the token.
const keyBuf = 128

// keyLong is Key for an automation id and token too long for the stack
// buffer: the same bytes, hashed as they are written.
func (s *Store) keyLong(automation string, token []byte) Key {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(automation)))
	var h maphash.Hash
	h.SetSeed(s.seedHi)
	h.Write(n[:])
	h.WriteString(automation)
	h.Write(token)
	hi := h.Sum64()
	h.SetSeed(s.seedLo) // SetSeed also resets the written data
	h.Write(n[:])
	h.WriteString(automation)
	h.Write(token)
	return Key{Hi: hi, Lo: h.Sum64()}
}

// Result is the answer of Claim.
type Result uint8

const (
	// Claimed: the token was absent (or expired) and is now in flight for
	// this caller, which must follow up with Done or Release.
	Claimed Result = iota
	// InFlight: another request holds the token and has not finished
	// (SPEC §3 row 12b, 409).
	InFlight
	// Duplicate: the token already triggered within the window (SPEC §3
	// row 12, 200 with data.duplicate=true).
	Duplicate
	// Full: the Store holds as many live tokens as it may and none can be
	// reclaimed yet; the token was not recorded. The gateway must not
	// trigger, since it could not then recognise a retry.
	Full
	// Unavailable: the store could not be asked (a shared store is down or
	// slow). The caller must not trigger — it could not recognise a retry
	// — and should answer with a retryable error.
	Unavailable
)

// String returns the result's name, for metric labels and logs.
func (r Result) String() string {
	switch r {
	case Claimed:
		return "claimed"
	case InFlight:
		return "in_flight"
	case Duplicate:
		return "duplicate"
	case Full:
		return "full"
	case Unavailable:
		return "unavailable"
	}
	return "unknown"
}

const (
	// maxShards bounds the lock striping: 256 locks leave two cores (or
	// sixty-four) rarely waiting on one another.
	maxShards = 256
	// minShardCap keeps each shard's share of the capacity large enough
	// that the shares fill evenly: with fewer tokens per shard the first
	// shard to fill would do so well before the Store as a whole.
	minShardCap = 4096
	// minSlots is a shard's first table size.
	minSlots = 16
	// Tables hold at most loadNum/loadDen live-or-expired slots, keeping
	// linear probe sequences short, and grow by growNum/growDen, so the
	// load stays between 0.6 and 0.75 once past minSlots: 32 to 40 bytes
	// of table per token.
	loadNum, loadDen = 3, 4
	growNum, growDen = 5, 4
	// sweepBudget is how many slots a Claim examines for expired tokens
	// beyond its own probe, on average. A shard's table is swept once per
	// slots/sweepBudget claims, so at steady load an expired token
	// lingers for at most about window/(0.6*sweepBudget), a tenth of the
	// window: few enough that the table does not grow for garbage and
	// the full scan before answering Full is rare. Fewer slots are
	// cheaper per Claim but let garbage build up: at 4 a fifth of the
	// table is expired tokens and tables regrow now and then.
	sweepBudget = 16
	// sweepEvery: every sweepEvery-th Claim of a shard sweeps
	// sweepEvery*sweepBudget slots (3 KB) and the others none. The sweep
	// is bound by the cache miss at the cursor, not by the slots after
	// it, so one longer sweep costs about what a short one does. With a
	// million tokens held, BenchmarkClaim/distinct gave medians of 217 ns
	// sweeping at every Claim, 195 ns every 8th, and 16 was slower again.
	sweepEvery = 8
)

// Store is an exact, bounded set of Client-Tokens. It is safe for
// concurrent use. The zero value is unusable; use New.
type Store struct {
	capacity       int
	window         int64
	seedHi, seedLo maphash.Seed
	shardShift     uint // key.Hi >> shardShift picks the shard (64 for one shard: Go shifts that far to 0)
	shards         []shard
}

// New returns a Store that remembers each token for window after Done and
// holds at most capacity live tokens (in flight or done and unexpired).
//
// The capacity is split evenly among the shards (up to 256, each with at
// least 4096 tokens' share) and each share is a hard limit: a Claim is Full
// when its own shard is, so with random keys the first Full comes when the
// Store as a whole holds a few percent less than capacity (about 97% at
// 4,000,000; exactly capacity below 8192, which is one shard).
//
// Memory grows with the tokens held, not with capacity: an idle Store
// holds a few kilobytes, and a held token costs 32 to 40 bytes of table.
//
// New panics when capacity or window is not positive: those are checked
// when the configuration is validated.
func New(capacity int, window time.Duration) *Store {
	if capacity <= 0 {
		panic("BUG: idempotency.New: capacity must be positive")
	}
	if window <= 0 {
		panic("BUG: idempotency.New: window must be positive")
	}
	n := 1
	for n < maxShards && capacity/(2*n) >= minShardCap {
		n *= 2
	}
	s := &Store{
		capacity:   capacity,
		window:     int64(window),
		seedHi:     maphash.MakeSeed(),
		seedLo:     maphash.MakeSeed(),
		shardShift: uint(64 - bits.TrailingZeros(uint(n))),
		shards:     make([]shard, n),
	}
	per := capacity / n
	for i := range s.shards {
		sh := &s.shards[i]
		sh.cap = per
		if i < capacity%n {
			sh.cap++ // hand out the remainder so the shares sum to capacity
		}
		// The largest table that cap tokens need at the load bound.
		sh.maxSlots = max(minSlots, (sh.cap*loadDen+loadNum-1)/loadNum+1)
	}
	return s
}

func (s *Store) shard(k Key) *shard {
	return &s.shards[k.Hi>>s.shardShift]
}

// Claim records k as in flight at now unless it is already live, and says
// which it was. Only one of any number of concurrent Claims of one key
// gets Claimed. A Claimed key stays in flight until Done or Release,
// however long that takes: a hand-over may outlast the window (a slow
// engine, a stalled disk under the file sink), and a claim that lapsed
// would let a retry trigger while the first request may still trigger
// too. Every request that claims ends in one of the two, so no claim is
// left behind; a store shared by processes, one of which may die holding
// a claim, needs a deadline instead (cluster's in_flight_ttl).
//
// A now before the epoch (a clock set before 1970) counts as the epoch,
// here and in Done: the table's test for expired slots (stale) holds only
// for a now that is not negative, and took every token for expired, so
// that the sweep deleted live ones.
func (s *Store) Claim(k Key, now int64) Result {
	now = max(now, 0)
	sh := s.shard(k)
	sh.mu.Lock()
	r := sh.claim(k, now, math.MaxInt64) // in flight: never stale
	if sh.claims++; sh.claims%sweepEvery == 0 {
		sh.sweep(now, sweepEvery*sweepBudget)
	}
	sh.mu.Unlock()
	return r
}

// Done marks k, claimed before, as triggered: Claims of it answer
// Duplicate until now+window. If k is no longer held (its claim expired)
// it is recorded afresh when there is room.
func (s *Store) Done(k Key, now int64) {
	now = max(now, 0) // see Claim
	sh := s.shard(k)
	sh.mu.Lock()
	sh.done(k, now, s.expiry(now))
	sh.mu.Unlock()
}

// Release forgets k if it is in flight, so that the caller's retry can
// trigger (SPEC §7: the flow engine did not take the event). A token that
// is done is kept: once an event was delivered its token must not trigger
// again.
func (s *Store) Release(k Key) {
	sh := s.shard(k)
	sh.mu.Lock()
	if i, ok := sh.find(k); ok && sh.slots[i].word < 0 {
		sh.deleteAt(i)
		sh.count.Add(-1)
	}
	sh.mu.Unlock()
}

// Len returns the number of tokens held, for metrics. It counts expired
// tokens not reclaimed yet and is read without locking, so it is
// approximate while Claims run.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		n += int(s.shards[i].count.Load())
	}
	return n
}

// expiry is the deadline of a token recorded at now (not negative: see
// Claim). It is kept positive because a slot's word uses its sign for the
// state and 0 for empty, and it saturates rather than wrap: a window as
// long as idempotency_window can name (292 years) would otherwise wrap
// now+window negative, and the token would expire as it was recorded.
func (s *Store) expiry(now int64) int64 {
	if now > math.MaxInt64-s.window {
		return math.MaxInt64
	}
	return max(now+s.window, 1)
}

// Cap returns the capacity the Store was made with.
func (s *Store) Cap() int { return s.capacity }
