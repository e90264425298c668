package cluster

import (
	"context"
	"sync/atomic"
	"time"
)

// deadlines hands out the contexts that bound Redis commands. A
// context.WithTimeout per command costs a timer, a channel and a few
// allocations — under load a twentieth of the gateway's time in cluster
// mode. Instead, the commands that start within one slot of time (an
// eighth of the timeout) share one context whose deadline is the slot's
// end plus the timeout: one timer and one channel per slot, whatever
// the rate. Every command so gets at least the timeout and at most an
// eighth more.
type deadlines struct {
	timeout time.Duration
	slot    time.Duration
	epoch   time.Time // origin of the monotonic instants get compares
	cur     atomic.Pointer[slotCtx]
}

func newDeadlines(timeout time.Duration, epoch time.Time) *deadlines {
	return &deadlines{timeout: timeout, slot: max(timeout/8, time.Millisecond), epoch: epoch}
}

// get returns the context of a command starting now.
func (d *deadlines) get() *slotCtx {
	now := time.Since(d.epoch)
	for {
		c := d.cur.Load()
		if c != nil && now >= c.start && now < c.start+d.slot {
			return c
		}
		// The slot starts now, so its context lasts the timeout and one
		// slot from here: at least the timeout for every command that
		// takes it before the slot is over.
		n := &slotCtx{start: now, deadline: d.epoch.Add(now + d.slot + d.timeout), done: make(chan struct{})}
		if d.cur.CompareAndSwap(c, n) {
			time.AfterFunc(d.slot+d.timeout, func() { close(n.done) })
			return n
		}
		// Another command opened a slot meanwhile: take that one.
	}
}

// slotCtx is the context shared by the commands of one slot. It carries
// no values and is never cancelled but by its deadline.
type slotCtx struct {
	start    time.Duration // when the slot opened, since deadlines.epoch
	deadline time.Time
	done     chan struct{} // closed at the deadline
}

// opened is when c's slot opened: no command of the slot was sent
// before it, so a TTL counted from it never outlasts the key.
func (d *deadlines) opened(c *slotCtx) time.Time { return d.epoch.Add(c.start) }

func (c *slotCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *slotCtx) Done() <-chan struct{}       { return c.done }
func (c *slotCtx) Value(any) any               { return nil }

func (c *slotCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}
