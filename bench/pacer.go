package bench

import (
	"context"
	"sync/atomic"
	"time"
)

// pacer releases an open loop's requests at their due times for all of its
// connections. One goroutine sleeps on one fine timer and, each time it
// wakes, releases every request then due to its connection's worker. A
// timer per connection, as before, cost the generator a timer set, a read
// that found nothing and a poller wake-up per request — at 50,000 req/s a
// good part of a core on the two it shares with the server it measures.
// One timer wakes at most once per request and fewer times when requests
// are due closer together than the kernel's timer slack, whose release
// they then share.
type pacer struct {
	sched Schedule
	// released[c] is how many of connection c's requests are due.
	released []atomic.Int64
	// bells[c] (capacity 1) is rung after released[c] moves, so a worker
	// waiting for its next request wakes; a ring while it is busy waits
	// in the channel.
	bells []chan struct{}
	sleep sleeper
}

func newPacer(sched Schedule) *pacer {
	p := &pacer{sched: sched, released: make([]atomic.Int64, sched.Conns), bells: make([]chan struct{}, sched.Conns)}
	for i := range p.bells {
		p.bells[i] = make(chan struct{}, 1)
	}
	return p
}

// run releases every request due before end (an offset from t0), each
// once it is due, and returns when all are or ctx is done.
func (p *pacer) run(ctx context.Context, t0 time.Time, end time.Duration) {
	defer p.sleep.close()
	if p.sleep.fine, _ = newFineTimer(); p.sleep.fine != nil {
		defer p.sleep.fine.watch(ctx)()
	}
	done := ctx.Done()
	conns := int64(p.sched.Conns)
	for n := int64(0); ; {
		due := p.sched.nth(n)
		if due >= end {
			return
		}
		if now := time.Since(t0); now < due && !p.sleep.sleep(done, due-now) {
			return
		}
		now := time.Since(t0)
		for ; due <= now && due < end; due = p.sched.nth(n) {
			c := n % conns
			p.released[c].Store(n/conns + 1)
			select {
			case p.bells[c] <- struct{}{}:
			default:
			}
			n++
		}
	}
}

// wait returns once connection conn's request k is due, or false when the
// run ended first.
func (p *pacer) wait(done <-chan struct{}, conn, k int) bool {
	for p.released[conn].Load() <= int64(k) {
		select {
		case <-p.bells[conn]:
		case <-done:
			return false
		}
	}
	return true
}

// sleeper waits on a timerfd where there is one and on a Go timer
// elsewhere; both are reused, so waiting allocates nothing.
type sleeper struct {
	fine  *fineTimer
	timer *time.Timer
}

// sleep waits d and reports whether it did: false when done closed first.
func (s *sleeper) sleep(done <-chan struct{}, d time.Duration) bool {
	if s.fine != nil {
		return s.fine.sleep(d) // watched: ends when done does
	}
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	select {
	case <-s.timer.C:
		return true
	case <-done:
		s.timer.Stop()
		return false
	}
}

func (s *sleeper) close() {
	if s.fine != nil {
		s.fine.close()
	}
}
