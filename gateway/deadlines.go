package gateway

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The server's three timeouts bound how long a connection can hold a
// goroutine: server.read_timeout a request's arrival (a slow sender),
// server.idle_timeout the wait for the next request on a kept-alive
// connection, server.write_timeout an answer's write (a client that
// stops reading). fasthttp keeps them by setting the connection's
// deadlines around every request: two read deadlines and a write
// deadline, each a wall-clock read in fasthttp, two monotonic ones and a
// timer change in the runtime, about a quarter of a microsecond apiece
// on the virtual machines hookgate is measured on, which every refusal
// and keyword miss paid.
//
// connDeadlines keeps the same bounds for a fraction of that: each
// connection tracks where it is (waiting for a request, reading one,
// answering) from its own reads and writes, keeps its deadlines between
// requests and moves one only when it no longer fits, reading a clock
// that a ticker advances instead of the system's:
//
//   - A new connection's first request must arrive within read_timeout
//     of its first read (fasthttp's rule too).
//   - After an answer is written the connection waits for the next
//     request under idle_timeout; the deadline is moved once it is an
//     eighth of idle_timeout old, so a wait gets between three quarters
//     and all of it.
//   - Once a read has brought a request's first bytes, any further read
//     it needs (headers or body arriving in pieces) is under
//     read_timeout from those bytes' arrival. A request that arrives in
//     one read, the common case, moves no deadline at all.
//   - An answer's write gets between three quarters and all of
//     write_timeout, its deadline moved once an eighth of it old.
//
// "Three quarters": a deadline's age is at most an eighth, the clock's
// lag at most a sixteenth (it ticks at a sixteenth of the shortest
// timeout, 1 ms to 100 ms; timeouts are at least 100 ms). A caller that
// sets a deadline itself (a hijacked connection's drain) takes that
// direction over.
type connDeadlines struct {
	net.Listener
	read, idle, write int64 // ns
	clock             *coarseClock
}

// clockTick is how often the clock advances for a shortest timeout of
// timeout: a sixteenth of it, between 1 ms and 100 ms.
func clockTick(timeout time.Duration) time.Duration {
	return min(max(timeout/16, time.Millisecond), 100*time.Millisecond)
}

func (l *connDeadlines) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &deadlineConn{Conn: c, l: l}, nil
}

// where a connection is, as its reads and writes tell.
const (
	connNew     = iota // no byte read yet
	connIdle           // an answer was written; waiting for a request
	connRequest        // a read brought a request's bytes; reading the rest
)

// read deadline kinds: which rule the read deadline set follows (0 for
// none yet).
const (
	readFirst = iota + 1
	readIdle
	readRequest
)

// deadlineConn is a connection that keeps its own deadlines. Its reads
// and writes are made by one goroutine at a time (fasthttp's, then a
// hijack handler's), as are its deadline setters.
type deadlineConn struct {
	net.Conn
	l     *connDeadlines
	state uint8
	// readKind is the rule readDeadline was set by, readDeadline and
	// writeDeadline the deadlines set, in clock time (0: none yet); a
	// deadline of -1 was set by a caller and is left alone.
	readKind      uint8
	readDeadline  int64
	writeDeadline int64
	// requestAt is when the current request's first bytes arrived.
	requestAt int64
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	if c.readDeadline >= 0 {
		if err := c.keepReadDeadline(); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(b)
	if n > 0 && c.state != connRequest {
		if c.state == connNew {
			// The first request's deadline runs from the first read,
			// as set: fasthttp's rule.
			c.readKind = readRequest
		}
		c.state, c.requestAt = connRequest, c.l.clock.now()
	}
	return n, err
}

// keepReadDeadline sets the read deadline a read needs where the
// connection is, unless the one set already does.
func (c *deadlineConn) keepReadDeadline() error {
	now := c.l.clock.now()
	var kind uint8
	var d int64
	switch c.state {
	case connNew:
		if c.readKind == readFirst {
			return nil
		}
		kind, d = readFirst, now+c.l.read
	case connIdle:
		if c.readKind == readIdle && c.readDeadline-now >= c.l.idle-c.l.idle/8 {
			return nil
		}
		kind, d = readIdle, now+c.l.idle
	default:
		if c.readKind == readRequest {
			return nil
		}
		kind, d = readRequest, c.requestAt+c.l.read
	}
	c.readKind, c.readDeadline = kind, d
	return c.Conn.SetReadDeadline(c.l.clock.wall(d))
}

// strContinue is the interim answer fasthttp writes, on its own or after
// answers held back for pipelined requests, before it reads the body of a
// request that sent Expect: 100-continue.
var strContinue = []byte("HTTP/1.1 100 Continue\r\n\r\n")

func (c *deadlineConn) Write(b []byte) (int, error) {
	if err := c.keepWriteDeadline(); err != nil {
		return 0, err
	}
	// An answer: the next read waits for a new request. An interim 100
	// Continue is none: the request's body comes next, within its
	// read_timeout.
	if !bytes.HasSuffix(b, strContinue) {
		c.state = connIdle
	}
	return c.Conn.Write(b)
}

// keepWriteDeadline moves the write deadline to write_timeout from now
// once it is an eighth of write_timeout old, unless a caller set its own.
func (c *deadlineConn) keepWriteDeadline() error {
	if c.writeDeadline < 0 {
		return nil
	}
	if now := c.l.clock.now(); c.writeDeadline-now < c.l.write-c.l.write/8 {
		c.writeDeadline = now + c.l.write
		return c.Conn.SetWriteDeadline(c.l.clock.wall(c.writeDeadline))
	}
	return nil
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.readDeadline = -1
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline = -1
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.readDeadline, c.writeDeadline = -1, -1
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
