// Package limiter enforces hookgate's two-level rate limits (SPEC §5): a
// token bucket per automation and one per table, each refilling
// continuously with a burst of one second's rate. A request is admitted only
// when both buckets have a token, and a refused request takes from neither.
//
// The request path takes no lock: each bucket is a single atomic GCRA state
// (the theoretical arrival time) updated with compare-and-swap, so buckets
// shared by many connections scale with the cores. Time is passed in by the
// caller as Unix nanoseconds (the request's own timestamp) and never read
// here, which keeps the buckets deterministic under test.
package limiter

import (
	"math"
	"sync/atomic"
	"time"
)

const (
	second = int64(time.Second)

	// minInterval and maxInterval bound the emission interval so that
	// tat+interval cannot overflow for any realistic Unix time: tat is at
	// most an interval past the latest request, and a take adds one more,
	// which stays below 2^63 until 2189. Rates above 1e9/s behave as
	// 1e9/s, rates below one per ~36 years as one per ~36 years.
	minInterval = int64(1)
	maxInterval = int64(1) << 60

	// closedRetry is the wait reported by a bucket whose rate is not
	// positive: no token will ever come, but a config reload may open it,
	// so the caller is told to come back later rather than never.
	closedRetry = time.Second
)

// Bucket is one token bucket: its rate is rps tokens a second and its burst
// max(1, rps) tokens, the burst being refilled continuously.
//
// The state is kept in the GCRA form: tat, the theoretical arrival time, is
// the instant at which the bucket would be full again. A request at now
// takes a token when max(tat, now) + interval - now <= limit, where
// interval = 1s/rps is the time one token takes to refill and
// limit = burst*interval = max(interval, 1s) is the time the whole burst
// takes; it then moves tat to max(tat, now) + interval.
//
// The zero value refuses every request; use NewBucket or SetRate first.
// A Bucket must not be copied after first use.
type Bucket struct {
	// tat is the theoretical arrival time in Unix nanoseconds. Values at
	// or before now all mean "full", so zero needs no initialisation.
	tat atomic.Int64
	// interval is the emission interval in nanoseconds (1s/rps, rounded
	// down so that a burst of n = rps tokens fits exactly in one second);
	// 0 means closed. Kept apart from tat so SetRate changes the limit
	// without losing the bucket's state.
	interval atomic.Int64
	// latest is the latest timestamp at which a token was taken. Requests
	// are stamped when they start and may reach the bucket a little out
	// of order; one stamped before latest is judged at latest, since the
	// bucket's state already reflects that instant: judged at its own
	// stamp it would find the bucket emptier than it is by the difference
	// and be refused a token that is there.
	latest atomic.Int64
	// Pad to a cache line so that buckets allocated side by side (one per
	// automation) do not share one and bounce it between cores.
	_ [64 - 24]byte
}

// NewBucket returns a full bucket with the given rate; see SetRate.
func NewBucket(rps float64) *Bucket {
	b := &Bucket{}
	b.SetRate(rps)
	return b
}

// SetRate changes the bucket's rate to rps tokens a second (burst
// max(1, rps)). It is safe to call concurrently with Allow, e.g. on a config
// reload: the bucket keeps its state, so a bucket drained at the old rate
// refills from where it was at the new one. A bucket that owes more than
// the new rate's whole burst (drained at a rate below one a second, whose
// burst takes its long interval to refill) counts as drained at the new
// rate as of its last request, so a raised rate does not refuse for the
// rest of the old interval. A rate that is not positive (or NaN) closes
// the bucket: it refuses every request until the next SetRate.
func (b *Bucket) SetRate(rps float64) {
	iv := intervalOf(rps)
	b.interval.Store(iv)
	if iv <= 0 {
		return
	}
	for {
		tat, latest := b.tat.Load(), b.latest.Load()
		drained := latest + max(iv, second)
		if tat <= drained || b.tat.CompareAndSwap(tat, drained) {
			return
		}
	}
}

// Rate returns the bucket's rate in tokens a second, as set by SetRate up
// to nanosecond rounding of the interval; 0 for a closed bucket.
func (b *Bucket) Rate() float64 {
	iv := b.interval.Load()
	if iv <= 0 {
		return 0
	}
	return float64(second) / float64(iv)
}

func intervalOf(rps float64) int64 {
	if !(rps > 0) { // also catches NaN
		return 0
	}
	iv := float64(second) / rps
	switch {
	case iv >= float64(maxInterval):
		return maxInterval
	case iv <= float64(minInterval):
		return minInterval
	}
	return int64(math.Floor(iv))
}

// take takes one token at now. On success it returns the interval it
// charged, which give must be handed to return the token. On refusal it
// returns 0 and the time until a token is available.
func (b *Bucket) take(now int64) (charged int64, wait time.Duration) {
	for {
		iv := b.interval.Load()
		if iv <= 0 {
			return 0, closedRetry
		}
		// tat before latest: a take that stored tat raised latest
		// first, so the latest read here is at least its stamp.
		tat := b.tat.Load()
		latest := b.latest.Load()
		at := max(now, latest)
		next, over := admitAt(tat, at, iv)
		if over > 0 {
			return 0, time.Duration(over)
		}
		if at > latest {
			b.raiseLatest(at)
		}
		if b.tat.CompareAndSwap(tat, next) {
			if b.interval.Load() == iv {
				return iv, 0
			}
			// SetRate changed the rate while this take was judged at
			// the old one, and may have settled tat before it was
			// stored: give it back and judge it again at the new rate.
			b.give(iv)
		}
	}
}

// raiseLatest makes latest at least at.
func (b *Bucket) raiseLatest(at int64) {
	for {
		l := b.latest.Load()
		if l >= at || b.latest.CompareAndSwap(l, at) {
			return
		}
	}
}

// admitAt is the GCRA test of a request at now on a bucket at tat with
// interval iv: the tat a token taken would leave, and by how much the
// request is early (≤ 0: a token is there).
func admitAt(tat, now, iv int64) (next, over int64) {
	next = max(tat, now) + iv
	return next, next - now - max(iv, second)
}

// wait is how long until the bucket has a token at now; 0 when it has
// one. It takes nothing.
func (b *Bucket) wait(now int64) time.Duration {
	iv := b.interval.Load()
	if iv <= 0 {
		return closedRetry
	}
	tat := b.tat.Load()
	if _, over := admitAt(tat, max(now, b.latest.Load()), iv); over > 0 {
		return time.Duration(over)
	}
	return 0
}

// give returns a token taken by take by moving tat back by the interval
// that was charged. Takes only ever add to tat, so this undoes the take
// even when other takes happened in between. The one inexact case is an
// idle bucket, where the take also moved tat up to now: a request with a
// later timestamp racing in between may then find the bucket up to a
// fraction of a token fuller afterwards, which errs on the side of
// admitting and never lets the bucket exceed its burst.
func (b *Bucket) give(charged int64) {
	b.tat.Add(-charged)
}

// Scope says which bucket refused a request.
type Scope uint8

const (
	// None: the request was admitted.
	None Scope = iota
	// Automation: the automation's own bucket was empty.
	Automation
	// Table: the automation had a token but its table's bucket was empty.
	Table
)

// String returns the scope's name, for metric labels and logs.
func (s Scope) String() string {
	switch s {
	case None:
		return "none"
	case Automation:
		return "automation"
	case Table:
		return "table"
	}
	return "unknown"
}

// Allow admits or refuses one request at now (Unix nanoseconds) against
// its automation's and its table's buckets. A now before the latest at
// which a bucket gave a token (requests are stamped at their start and
// may arrive out of order) counts as that latest. It returns None when
// both had a token and one was taken from each. Otherwise it returns the
// scope of the bucket that refused and how long until that bucket has a
// token, and takes from neither: the automation is checked first, and
// when the table then refuses, the automation's token is given back.
//
// retryAfter is exact to the nanosecond; the Retry-After header wants it
// rounded up to whole seconds, at least 1. A nil bucket is no limit.
func Allow(automation, table *Bucket, now int64) (scope Scope, retryAfter time.Duration) {
	var charged int64
	if automation != nil {
		var wait time.Duration
		charged, wait = automation.take(now)
		if charged == 0 {
			return Automation, wait
		}
	}
	if table != nil {
		if c, wait := table.take(now); c == 0 {
			if automation != nil {
				automation.give(charged)
			}
			return Table, wait
		}
	}
	return None, 0
}

// Peek answers as Allow would at now, taking nothing: None when both
// buckets have a token, else the scope of the one that has none (the
// automation's first) and how long until it has. Another request may take
// the token before a later Allow, which then refuses.
func Peek(automation, table *Bucket, now int64) (scope Scope, retryAfter time.Duration) {
	if automation != nil {
		if wait := automation.wait(now); wait > 0 {
			return Automation, wait
		}
	}
	if table != nil {
		if wait := table.wait(now); wait > 0 {
			return Table, wait
		}
	}
	return None, 0
}
