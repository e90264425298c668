package gateway

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/downstream"
)

// errBreakerOpen is the hand-over error while the circuit breaker sheds.
var errBreakerOpen = errors.New("flow engine circuit breaker open: shedding until the next probe")

// breaker stops hammering a dead flow engine. After Failures consecutive
// failed hand-overs it opens: for the cooldown every hand-over fails at
// once (the caller gets 503 with Retry-After and its Client-Token is
// released). Then one hand-over is let through as a probe; success closes
// the breaker, failure re-opens it with the cooldown doubled, up to
// MaxCooldown. An engine that answers 4xx is alive and does not trip it.
// State is a few atomics: no lock on the hand-over path.
type breaker struct {
	next        Forwarder
	threshold   int64
	cooldown    time.Duration
	maxCooldown time.Duration

	failures  atomic.Int64 // consecutive failures while closed
	openUntil atomic.Int64 // monoNanos until which it sheds; 0 when closed
	probing   atomic.Bool  // a probe is under way
	current   atomic.Int64 // the cooldown of the present opening
	opened    atomic.Uint64
	shed      atomic.Uint64
}

func newBreaker(next Forwarder, b Breaker) *breaker {
	br := &breaker{next: next, threshold: int64(b.Failures), cooldown: time.Duration(b.Cooldown), maxCooldown: time.Duration(b.MaxCooldown)}
	br.current.Store(int64(br.cooldown))
	return br
}

// Forward hands the event on unless the breaker is open.
func (b *breaker) Forward(eventID, loop, event []byte, start time.Time) error {
	until := b.openUntil.Load()
	if until == 0 {
		err := b.next.Forward(eventID, loop, event, start)
		if !trips(err) {
			if err == nil && b.failures.Load() != 0 {
				b.failures.Store(0)
			}
			return err
		}
		if b.failures.Add(1) >= b.threshold {
			b.open(time.Duration(b.current.Load()))
		}
		return err
	}
	if monoNanos(start) < until || !b.probing.CompareAndSwap(false, true) {
		b.shed.Add(1)
		return errBreakerOpen
	}
	err := b.next.Forward(eventID, loop, event, start)
	if trips(err) {
		b.open(min(2*time.Duration(b.current.Load()), b.maxCooldown))
	} else {
		b.failures.Store(0)
		b.current.Store(int64(b.cooldown))
		b.openUntil.Store(0)
	}
	b.probing.Store(false)
	return err
}

func (b *breaker) open(cooldown time.Duration) {
	b.current.Store(int64(cooldown))
	b.openUntil.Store(monoNanos(time.Now().Add(cooldown))) // not 0: Unix time since 1970
	b.opened.Add(1)
}

// isOpen reports whether the breaker sheds hand-overs now.
func (b *breaker) isOpen() bool { return b.openUntil.Load() != 0 }

// trips reports whether err counts against the engine's health: anything
// but success, an answer the engine gave deliberately (4xx), and an event
// that failed only because an earlier one on its pipelined connection did
// (that one counts, once, rather than up to downstream.pipeline times).
func trips(err error) bool {
	if err == nil || errors.Is(err, downstream.ErrAborted) {
		return false
	}
	var se *downstream.StatusError
	if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 {
		return false
	}
	return true
}

// Ready passes a readiness check on to the wrapped forwarder.
func (b *breaker) Ready(timeout time.Duration) error {
	if r, ok := b.next.(readiness); ok {
		return r.Ready(timeout)
	}
	return nil
}
