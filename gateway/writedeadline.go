package gateway

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A slow reader (a client that sends requests and stops reading the
// answers) would hold a connection's goroutine in a blocked write for
// ever; server.write_timeout bounds that write. fasthttp's WriteTimeout
// does it by setting the connection's write deadline before every
// response: a wall-clock read in fasthttp, two monotonic ones and a timer
// change in the runtime, a quarter of a microsecond per request on the
// virtual machines hookgate is measured on, which every refusal and
// keyword miss paid.
//
// writeDeadlines gives the same bound for a fraction of that: each
// connection keeps its deadline between requests and moves it forward
// only once it is an eighth of the timeout old, reading a clock that a
// ticker advances instead of the system's. Every write then has at
// least three quarters of write_timeout (the deadline's age, at most an
// eighth, plus the clock's lag, at most a sixteenth) and at most all
// of it.
type writeDeadlines struct {
	net.Listener
	timeout int64 // ns
	clock   *coarseClock
}

// listenWithWriteTimeout wraps ln so that its connections' writes time
// out after between three quarters and all of timeout (see
// writeDeadlines). Closing the listener stops its clock.
func listenWithWriteTimeout(ln net.Listener, timeout time.Duration) net.Listener {
	return &writeDeadlines{Listener: ln, timeout: int64(timeout), clock: newCoarseClock(clockTick(timeout))}
}

// clockTick is how often the clock advances for timeout: a sixteenth of
// it, between 1 ms and 100 ms.
func clockTick(timeout time.Duration) time.Duration {
	return min(max(timeout/16, time.Millisecond), 100*time.Millisecond)
}

func (l *writeDeadlines) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &deadlineConn{Conn: c, timeout: l.timeout, clock: l.clock}, nil
}

func (l *writeDeadlines) Close() error {
	l.clock.stop()
	return l.Listener.Close()
}

// deadlineConn is a connection whose writes keep a write deadline. Its
// Write is called by one goroutine at a time (fasthttp's, then a hijack
// handler's), as are its deadline setters.
type deadlineConn struct {
	net.Conn
	timeout int64
	clock   *coarseClock
	// deadline is the write deadline set, in clock time; 0 before the
	// first write, -1 once a caller set a deadline of its own, which is
	// then left alone.
	deadline int64
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if err := c.keepDeadline(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// keepDeadline moves the write deadline to the timeout from now once it
// is an eighth of the timeout old, unless a caller set its own.
func (c *deadlineConn) keepDeadline() error {
	if c.deadline < 0 {
		return nil
	}
	if now := c.clock.now(); c.deadline-now < c.timeout-c.timeout/8 {
		c.deadline = now + c.timeout
		return c.Conn.SetWriteDeadline(c.clock.wall(c.deadline))
	}
	return nil
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.deadline = -1
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.deadline = -1
	return c.Conn.SetDeadline(t)
}

// coarseClock is a monotonic clock read with one atomic load: nanoseconds
// since it started, advanced by a ticker, so it lags the real time by at
// most a tick (more if the ticker's goroutine is held up).
type coarseClock struct {
	start    time.Time
	ns       atomic.Int64
	done     chan struct{}
	stopOnce sync.Once
}

func newCoarseClock(tick time.Duration) *coarseClock {
	c := &coarseClock{start: time.Now(), done: make(chan struct{})}
	c.ns.Store(1) // never 0, which a connection reads as "no deadline yet"
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				c.ns.Store(int64(time.Since(c.start)))
			case <-c.done:
				return
			}
		}
	}()
	return c
}

func (c *coarseClock) now() int64 { return c.ns.Load() }

// wall is the time.Time of clock time ns.
func (c *coarseClock) wall(ns int64) time.Time { return c.start.Add(time.Duration(ns)) }

func (c *coarseClock) stop() { c.stopOnce.Do(func() { close(c.done) }) }
