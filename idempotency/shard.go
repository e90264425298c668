package idempotency

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
)

// slot is one entry of a shard's open-addressing table: 24 bytes.
type slot struct {
	key Key
	// word is 0 for an empty slot, the expiry (Unix ns, > 0) of a done
	// token, or minus the expiry of a token in flight. One word for both
	// keeps the slot at 24 bytes.
	word int64
}

// expired reports whether a non-empty slot's word has expired at now. An
// expired token counts as absent everywhere.
func expired(word, now int64) bool {
	return abs(word) <= now
}

// stale reports whether a slot's word holds an expired token: not empty,
// and expired at now (Unix ns, not negative: Claim and Done see to it).
// One comparison without branches on the word's sign, since a table
// mixes tokens in flight and done at random and the sweep tests every
// slot.
func stale(word, now int64) bool {
	return uint64(abs(word)-1) < uint64(now)
}

// abs is |w| without a branch.
func abs(w int64) int64 {
	m := w >> 63
	return (w ^ m) - m
}

// shard is one lock stripe of the Store: a linear-probing table with
// backward-shift deletion, so there are no tombstones and probe sequences
// end at the first empty slot.
type shard struct {
	// mu protects slots, cursor and minExpiry, and serialises writes to
	// count.
	mu    sync.Mutex
	slots []slot // nil until the first Claim, so idle shards cost nothing
	// count is the number of occupied slots, live or expired. It is
	// written under mu and read by Len without it.
	count atomic.Int64
	// cursor is where the incremental sweep resumes.
	cursor int
	// claims counts Claims, to sweep at every sweepEvery-th.
	claims uint32
	// minExpiry is a lower bound of the expiries in the table: while now
	// is before it nothing can be reclaimed, so a full shard answers Full
	// without scanning. A full scan makes it exact again.
	minExpiry int64

	// cap and maxSlots are set by New and never change.
	cap      int // live tokens this shard may hold
	maxSlots int // table size that holds cap tokens within the load bound

	// Pad to two cache lines so neighbouring shards' locks don't share one.
	_ [128 - 80]byte
}

// home is where k's probe sequence starts: the high half of lo*len, which
// maps the hash onto any table size without a division or a power of two.
func (sh *shard) home(k Key) int {
	h, _ := bits.Mul64(k.Lo, uint64(len(sh.slots)))
	return int(h)
}

func (sh *shard) next(i int) int {
	if i++; i == len(sh.slots) {
		return 0
	}
	return i
}

// find returns k's slot, expired or not.
func (sh *shard) find(k Key) (int, bool) {
	if len(sh.slots) == 0 {
		return 0, false
	}
	for i := sh.home(k); ; i = sh.next(i) {
		s := &sh.slots[i]
		if s.word == 0 {
			return i, false
		}
		if s.key == k {
			return i, true
		}
	}
}

func (sh *shard) noteExpiry(exp int64) {
	sh.minExpiry = min(sh.minExpiry, exp)
}

func (sh *shard) claim(k Key, now, exp int64) Result {
	if sh.slots == nil {
		sh.slots = make([]slot, minSlots)
		sh.minExpiry = math.MaxInt64
	}
	i := sh.home(k)
	reuse := -1
	for ; ; i = sh.next(i) {
		s := &sh.slots[i]
		if s.word == 0 {
			break
		}
		if s.key == k {
			switch {
			case expired(s.word, now):
				s.word = -exp
				sh.noteExpiry(exp)
				return Claimed
			case s.word < 0:
				return InFlight
			default:
				return Duplicate
			}
		}
		if reuse < 0 && stale(s.word, now) {
			reuse = i
		}
	}
	// k is absent: the probe reached an empty slot without meeting it.
	if reuse >= 0 {
		// Taking over an expired slot on k's own probe path keeps the
		// sequence intact and costs no capacity.
		sh.slots[reuse] = slot{key: k, word: -exp}
		sh.noteExpiry(exp)
		return Claimed
	}
	if int(sh.count.Load()) >= sh.cap {
		// Never evict a live token: only expired ones make room.
		if now < sh.minExpiry || sh.reclaim(now) == 0 {
			return Full
		}
		i, _ = sh.find(k)
	}
	if (int(sh.count.Load())+1)*loadDen > len(sh.slots)*loadNum {
		sh.grow(now)
		i, _ = sh.find(k)
	}
	sh.slots[i] = slot{key: k, word: -exp}
	sh.count.Add(1)
	sh.noteExpiry(exp)
	return Claimed
}

func (sh *shard) done(k Key, now, exp int64) {
	if i, ok := sh.find(k); ok {
		sh.slots[i].word = exp
		sh.noteExpiry(exp)
		return
	}
	// The claim expired and was reclaimed before Done: record the token
	// again if there is room, since its event was delivered.
	if sh.claim(k, now, exp) == Claimed {
		i, _ := sh.find(k)
		sh.slots[i].word = exp
	}
}

// deleteAt empties slot i and shifts the rest of its probe run back so
// that every remaining key stays reachable from its home without
// tombstones. The caller adjusts count.
func (sh *shard) deleteAt(i int) {
	slots := sh.slots
	n := len(slots)
	for j := sh.next(i); slots[j].word != 0; j = sh.next(j) {
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j], where the hole is before its home: that
		// is, unless j is fewer steps from its home than from the hole.
		// (Branches instead of % n, which costs a division.)
		fromHome := j - sh.home(slots[j].key)
		if fromHome < 0 {
			fromHome += n
		}
		fromHole := j - i
		if fromHole < 0 {
			fromHole += n
		}
		if fromHome >= fromHole {
			slots[i] = slots[j]
			i = j
		}
	}
	slots[i] = slot{}
}

// sweep examines up to budget slots from the cursor and deletes expired
// tokens, so that the table is cleaned continuously in small steps.
func (sh *shard) sweep(now int64, budget int) {
	c := sh.cursor
	for ; budget > 0; budget-- {
		if c >= len(sh.slots) {
			c = 0
		}
		if stale(sh.slots[c].word, now) {
			sh.deleteAt(c)
			sh.count.Add(-1)
			continue // the shift may have moved another expired entry here
		}
		c++
	}
	sh.cursor = c
}

// reclaim deletes every expired token, makes minExpiry exact and returns
// how many were deleted. It is the full scan a full shard makes before
// answering Full, and runs only when minExpiry says some token expired.
func (sh *shard) reclaim(now int64) int {
	removed := 0
	for i := 0; i < len(sh.slots); {
		if stale(sh.slots[i].word, now) {
			sh.deleteAt(i)
			removed++
			continue
		}
		i++
	}
	sh.minExpiry = math.MaxInt64
	for i := range sh.slots {
		if w := sh.slots[i].word; w != 0 {
			sh.noteExpiry(abs(w))
		}
	}
	sh.count.Add(int64(-removed))
	return removed
}

// grow rehashes the live tokens into a table sized for them at 0.6 load,
// leaving the expired ones behind. The new table is bigger unless many
// tokens had expired, when it may be smaller.
func (sh *shard) grow(now int64) {
	live := 0
	for i := range sh.slots {
		if w := sh.slots[i].word; w != 0 && !expired(w, now) {
			live++
		}
	}
	size := (live + 1) * loadDen * growNum / (loadNum * growDen)
	size = min(sh.maxSlots, max(minSlots, size))
	old := sh.slots
	sh.slots = make([]slot, size)
	sh.minExpiry = math.MaxInt64
	for _, s := range old {
		if s.word == 0 || expired(s.word, now) {
			continue
		}
		i := sh.home(s.key)
		for sh.slots[i].word != 0 {
			i = sh.next(i)
		}
		sh.slots[i] = s
		sh.noteExpiry(abs(s.word))
	}
	sh.count.Store(int64(live))
	sh.cursor = 0
}
