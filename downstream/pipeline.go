package downstream

import (
	"bufio"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// pipeline is the HTTP sink's transport when Config.Pipeline > 1: HTTP/1.1
// pipelining, several events in flight on one connection.
//
// A Forward appends its request to a connection's write buffer and waits.
// The buffer is written at once when nothing written on the connection
// is still unanswered; otherwise it waits for the next answer, which
// wakes the oldest Forward held back to write it — everything appended
// meanwhile in one write, under the batch's earliest deadline. A write
// during which everything written is answered hands the next one to the
// oldest held back likewise: no Forward writes after its own bytes are
// out, so none outlasts its deadline for another's write. The engine
// answers in order, so an event held back while the engine works on
// those before it is answered no later than if it had been written at
// once (a fasthttp engine holds its answers until it has read everything
// buffered anyway), and under load each write carries every event that
// arrived during the last round trip: the engine reads them in one read
// and, if it is a fasthttp or similar server, answers them in one write.
// Writing as each event arrived cost a write per event at any load, a
// fifth of the gateway's CPU. One reader per connection parses the
// answers in order and hands each to its Forward.
//
// An event goes to the connection with the fewest in flight; another
// connection is opened when every one already has Config.Pipeline in
// flight (up to MaxConns), so a slow engine gets more connections rather
// than a longer queue on one.
//
// What it keeps of the one-at-a-time client's promises:
//   - Nothing past a Forward's deadline: each waits for its connection's
//     dial, and for its answer, only until its own deadline, since the
//     connection's deadlines serve others too: a dial's is
//     Config.Timeout, a write's the earliest of its batch, the reader's
//     the oldest event's. Those end the wait of an event whose deadline
//     is no earlier than any queued ahead of it; a timer of its own is
//     armed only for one that waits for a dial or is queued behind a
//     later deadline. Answers come in order, so when an
//     event written times out, every other event written on that
//     connection fails too (ErrAborted), and the connection is closed;
//     one held back is cut out of the buffer and never sent. Deadlines on
//     a connection mostly come in order, but an event that began before
//     the call, or is re-sent, may be behind one with a later deadline.
//   - A request is re-sent only if none of its bytes was handed to the
//     kernel: an event still held back when its connection failed is sent
//     on another connection if its deadline leaves time (like a failed
//     dial, without the pause), and is aborted otherwise; one that may
//     have been written is never re-sent. The exception: when the engine
//     ends the connection with an answer (Connection: close, or HTTP/1.0
//     without keep-alive), it processes nothing after it (RFC 9112 §9.6),
//     so every event behind that answer, written or not, is sent again
//     while its deadline leaves time, without counting an attempt, and is
//     aborted otherwise; nothing is blamed on the engine.
//   - The event is copied into the connection's buffer, so the caller's
//     slices are not touched after Forward returns.
type pipeline struct {
	h     *HTTP
	depth int32
	max   int
	idle  time.Duration
	maxRB int // response body cap

	head []byte // "POST <uri> HTTP/1.1\r\nHost: …\r\nContent-Type…User-Agent: hookgate\r\n[Authorization…\r\n]"

	mu     sync.Mutex
	conns  []*pconn // dialing ones too
	closed bool

	calls sync.Pool // *pcall
}

// pconn is one pipelined connection.
type pconn struct {
	p *pipeline
	// ready is closed once the connection is dialed: c is set, or
	// dialErr says why not.
	ready   chan struct{}
	c       net.Conn
	dialErr error
	// inflight counts the Forwards that picked this connection and have
	// not returned, so those arriving together spread over connections
	// before any of them is queued.
	inflight atomic.Int32
	failed   atomic.Bool // err is set: pick another

	mu        sync.Mutex
	buf       []byte   // requests not yet handed to the kernel
	spare     []byte   // the buffer last written, reused
	writing   bool     // a Forward is writing
	queue     []*pcall // waiting for answers, oldest first, from qhead
	qhead     int
	unwritten int // the newest unwritten calls of queue, whose bytes are in buf
	err       error
	draining  bool // closed sink: close once the queue is empty
	// latest is the latest deadline queued since the queue was last
	// empty: an event with an earlier one is behind a later deadline,
	// which the connection's own deadlines would wait out.
	latest time.Time
}

// pcall is one Forward waiting for its answer. Its fields other than
// done and timer are guarded by its connection's mu while it is queued.
type pcall struct {
	// done (capacity 2) is signalled once with the answer or failure
	// (resolved is set), and before that, at most once, to write (flush
	// is set).
	done     chan struct{}
	deadline time.Time
	// timer, when armed, fires at deadline: the Forward gives up then,
	// wherever its event is, since the connection's deadlines are those
	// of others.
	timer    *time.Timer
	status   int
	err      error
	resolved bool
	// flush: the reader, or a writer whose events were all answered
	// during its write, woke this call, the oldest held back, to write
	// the connection's unwritten requests (writing is set for it).
	flush bool
	// off is where the request starts in the connection's buf while
	// it is unwritten.
	off int
}

// Largest buffer a connection keeps between writes.
const maxKeptBuffer = 1 << 20

var (
	// errNotWritten is re-sent while attempts and time allow; past that
	// it is an abort like errAborted: the connection failed for an
	// earlier event, whose own error tells what happened.
	errNotWritten = &kindError{kind: ErrAborted, msg: "flow engine connection failed before the event was sent"}
	errAborted    = &kindError{kind: ErrAborted, msg: "flow engine connection failed after an earlier event on it"}
	// errUnprocessed is re-sent while time allows, without counting an
	// attempt: the engine ended the connection with an earlier event's
	// answer, and processes nothing after that answer (RFC 9112 §9.6).
	errUnprocessed  = &kindError{kind: ErrAborted, msg: "flow engine ended the connection before this event"}
	errUnsolicited  = &kindError{kind: ErrUnreachable, msg: "flow engine sent an answer nobody asked for"}
	errIdleOrClosed = errors.New("idle connection closed")
	// errSwitched is the cause of a connection the engine switched to
	// another protocol (101).
	errSwitched = errors.New("flow engine switched protocols")
	// errEngineClosed is the cause of a connection the engine ended
	// with an answer: every call still queued gets errUnprocessed.
	errEngineClosed = errors.New("flow engine ended the connection with an answer")
)

func newPipeline(h *HTTP, u string, host string, cfg Config) *pipeline {
	p := &pipeline{h: h, depth: int32(cfg.Pipeline), max: cfg.MaxConns, idle: cfg.MaxIdleConnDuration,
		maxRB: cfg.MaxResponseBodySize}
	// The headers roundTrip sets, by the same names.
	b := append([]byte("POST "), u...)
	b = append(b, " HTTP/1.1\r\n"...)
	b = appendHeader(b, []byte("Host"), []byte(host))
	b = appendHeader(b, []byte("Content-Type"), []byte(contentType))
	b = appendHeader(b, []byte("User-Agent"), []byte(userAgent))
	if h.auth != nil {
		b = appendHeader(b, headerAuthorization, h.auth)
	}
	p.head = b
	p.calls.New = func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return &pcall{done: make(chan struct{}, 2), timer: t}
	}
	return p
}

// appendHeader appends one header line.
func appendHeader(b, name, value []byte) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// forward sends one event and waits for its answer; it returns the
// engine's status, or an error. errNotWritten, errUnprocessed and dial
// errors may be retried.
//
// It returns by deadline, whatever the connection's deadlines, which
// serve other events too (see pipeline): deadlines on one connection
// need not come in order, since an event may have begun before the call
// (start) or be re-sent.
func (p *pipeline) forward(eventID, loop, event []byte, deadline time.Time) (int, error) {
	wait := time.Until(deadline)
	if wait <= 0 {
		return 0, fasthttp.ErrTimeout
	}
	pc, err := p.conn()
	if err != nil {
		return 0, err
	}
	defer pc.inflight.Add(-1)
	c := p.calls.Get().(*pcall)
	// The timer is armed only where the connection's own deadlines may
	// not end the wait by this one's: a dial (bounded from its start) or
	// a queue holding a later deadline ahead. Deadlines mostly come in
	// order, and arming it for every event cost 3 % of a pipelined
	// Forward (BenchmarkHTTPForward). An unarmed timer never fires.
	armed := false
	defer func() {
		if armed {
			c.timer.Stop()
		}
		p.calls.Put(c)
	}()
	select {
	case <-pc.ready:
	default:
		c.timer.Reset(wait)
		armed = true
		select {
		case <-pc.ready:
		case <-c.timer.C:
			// The dial goes on for the others waiting for it.
			return 0, fasthttp.ErrTimeout
		}
	}
	if pc.dialErr != nil {
		return 0, pc.dialErr
	}
	c.deadline, c.status, c.err, c.resolved, c.flush = deadline, 0, nil, false, false
	behind, err := pc.send(c, eventID, loop, event)
	if err != nil {
		return 0, err
	}
	if behind && !armed {
		c.timer.Reset(time.Until(deadline))
		armed = true
	}
	for {
		select {
		case <-c.done:
		case <-c.timer.C:
			pc.mu.Lock()
			if !c.resolved {
				pc.expireLocked(c)
			}
			pc.mu.Unlock()
			<-c.done
		}
		if !c.flush {
			return c.status, c.err
		}
		c.flush = false
		pc.mu.Lock()
		pc.writeLocked()
		pc.mu.Unlock()
	}
}

// expireLocked gives up on c, unresolved at its deadline, and resolves
// it with a timeout. Unwritten, it is cut out, so it is never sent, and a
// write it was woken for passes to the next held back. Written and the
// oldest, it is left to the reader, whose deadline is c's and which tells
// a status that came in time from none (answered). Written behind
// another, its answer cannot be told from the others but by its place,
// so the connection fails: the others as aborted or not written, none
// blamed but c. pc.mu is held.
func (pc *pconn) expireLocked(c *pcall) {
	for i := len(pc.queue) - pc.unwritten; i < len(pc.queue); i++ {
		if pc.queue[i] == c {
			pc.cutLocked(i)
			if c.flush {
				c.flush = false
				<-c.done // one of the two signals: c is not to write
				pc.writing = false
				pc.flushLocked()
			}
			return
		}
	}
	if pc.queue[pc.qhead] == c {
		return
	}
	pc.failBlamed(fasthttp.ErrTimeout, true)
	c.err = fasthttp.ErrTimeout
}

// cutLocked takes the unwritten call queue[i], whose deadline has
// passed, out of the queue and its request out of buf, and resolves it
// with a timeout. pc.mu is held.
func (pc *pconn) cutLocked(i int) {
	c := pc.queue[i]
	end := len(pc.buf)
	if i+1 < len(pc.queue) {
		end = pc.queue[i+1].off
	}
	n := end - c.off
	pc.buf = append(pc.buf[:c.off], pc.buf[end:]...)
	for _, x := range pc.queue[i+1:] {
		x.off -= n
	}
	copy(pc.queue[i:], pc.queue[i+1:])
	pc.queue[len(pc.queue)-1] = nil
	pc.queue = pc.queue[:len(pc.queue)-1]
	pc.unwritten--
	if pc.queued() == 0 {
		// Its deadline may be the reader's: idle, rather than closed.
		_ = pc.c.SetReadDeadline(time.Now().Add(pc.p.idle))
	}
	c.resolved, c.err = true, fasthttp.ErrTimeout
	c.done <- struct{}{}
}

// conn picks the connection with the fewest Forwards on it, or starts
// one when each has depth and there is room, and counts the caller on it.
// A connection still being dialed is picked like the others; its callers
// wait for the dial, each until its own deadline.
func (p *pipeline) conn() (*pconn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	var best *pconn
	bestN := int32(1<<31 - 1)
	for _, pc := range p.conns {
		if n := pc.inflight.Load(); n < bestN && !pc.failed.Load() {
			best, bestN = pc, n
		}
	}
	if best != nil && (bestN < p.depth || len(p.conns) >= p.max) {
		best.inflight.Add(1)
		return best, nil
	}
	pc := &pconn{p: p, ready: make(chan struct{})}
	pc.inflight.Add(1)
	p.conns = append(p.conns, pc)
	go pc.dial()
	return pc, nil
}

// dial connects pc and starts its reader, or fails it. The dial is
// bounded by Config.Timeout, not by the deadline of the Forward that
// started it: the connection is for every Forward that picks it meanwhile,
// and each waits for it only until its own deadline.
func (pc *pconn) dial() {
	p := pc.p
	c, err := p.h.dial(p.h.client.Addr, p.h.timeout)
	if err == nil {
		p.mu.Lock()
		if p.closed {
			c.Close()
			err = ErrClosed
		}
		p.mu.Unlock()
	}
	if err != nil {
		pc.dialErr = err
		pc.failed.Store(true)
		p.remove(pc)
		close(pc.ready)
		return
	}
	// Idle until an event joins, and closed if none does (those that
	// picked it may have given up during the dial).
	_ = c.SetReadDeadline(time.Now().Add(p.idle))
	pc.c = c
	close(pc.ready)
	pc.read()
}

// remove forgets a failed or idle connection.
func (p *pipeline) remove(pc *pconn) {
	p.mu.Lock()
	for i, x := range p.conns {
		if x == pc {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
}

// count is the number of open connections.
func (p *pipeline) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// close stops new events; connections close once their events are
// answered.
func (p *pipeline) close() {
	p.mu.Lock()
	p.closed = true
	conns := append([]*pconn(nil), p.conns...)
	p.mu.Unlock()
	for _, pc := range conns {
		<-pc.ready
		if pc.dialErr != nil {
			continue
		}
		pc.mu.Lock()
		pc.draining = true
		if pc.queued() == 0 && pc.err == nil {
			pc.failLocked(errIdleOrClosed)
		}
		pc.mu.Unlock()
	}
}

func (pc *pconn) queued() int { return len(pc.queue) - pc.qhead }

// send queues c's request and writes the buffer unless another Forward
// is writing it or an answer is awaited, whose arrival has it written.
// An error means nothing of the request was written.
func (pc *pconn) send(c *pcall, eventID, loop, event []byte) (behind bool, err error) {
	p := pc.p
	pc.mu.Lock()
	if pc.err != nil || pc.draining {
		err := errNotWritten
		if pc.err == errEngineClosed {
			err = errUnprocessed
		}
		pc.mu.Unlock()
		return false, err
	}
	c.off = len(pc.buf)
	b := append(pc.buf, p.head...)
	b = appendHeader(b, headerIdempotencyKey, eventID)
	if len(loop) > 0 {
		b = appendHeader(b, headerLoop, loop)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(event)), 10)
	b = append(b, "\r\n\r\n"...)
	pc.buf = append(b, event...)
	switch n := pc.queued(); {
	case n == 0:
		// The reader waits under the idle deadline; this event's
		// deadline replaces it (see read for the race with it).
		pc.qhead, pc.queue = 0, pc.queue[:0]
		pc.latest = time.Time{}
		_ = pc.c.SetReadDeadline(c.deadline)
	case pc.qhead >= n:
		// Under steady load the queue may never empty: move what is
		// waiting to the front instead of growing it.
		copy(pc.queue, pc.queue[pc.qhead:])
		clear(pc.queue[n:])
		pc.qhead, pc.queue = 0, pc.queue[:n]
	}
	pc.queue = append(pc.queue, c)
	pc.unwritten++
	behind = c.deadline.Before(pc.latest)
	if !behind {
		pc.latest = c.deadline
	}
	if pc.writing || pc.queued() > pc.unwritten {
		pc.mu.Unlock()
		return behind, nil
	}
	pc.writing = true
	pc.writeLocked()
	pc.mu.Unlock()
	return behind, nil
}

// writeLocked writes the buffer once. What is appended while it writes
// is held back for the next answer; if every event written is answered
// by then, the next write is handed to the oldest held back, under its
// own deadline: the writer never writes on behalf of others, so it
// returns within its own deadline. The caller holds pc.mu, which is
// released during the write, and has set writing.
func (pc *pconn) writeLocked() {
	// Events past their deadline are not sent: their Forwards have
	// given up or are about to.
	now := time.Now()
	var wd time.Time // the batch's earliest deadline
	for i := len(pc.queue) - pc.unwritten; i < len(pc.queue); {
		if d := pc.queue[i].deadline; !d.After(now) {
			pc.cutLocked(i)
		} else {
			if wd.IsZero() || d.Before(wd) {
				wd = d
			}
			i++
		}
	}
	if pc.err != nil || len(pc.buf) == 0 {
		// Failed since this caller was woken to write, or nothing
		// left to write.
		pc.writing = false
		return
	}
	out := pc.buf
	pc.buf, pc.spare = pc.spare[:0], nil
	pc.unwritten = 0
	pc.mu.Unlock()
	err := pc.c.SetWriteDeadline(wd)
	if err == nil {
		_, err = pc.c.Write(out)
	}
	pc.mu.Lock()
	if cap(out) <= maxKeptBuffer {
		pc.spare = out[:0]
	}
	if err != nil {
		pc.failLocked(err)
	}
	pc.writing = false
	if pc.queued() == pc.unwritten {
		// No answer is awaited whose arrival would write the rest.
		pc.flushLocked()
	}
}

// flushLocked wakes the oldest call held back to write the connection's
// unwritten requests, unless there are none or a write is under way.
// pc.mu is held.
func (pc *pconn) flushLocked() {
	if pc.err != nil || pc.unwritten == 0 || pc.writing {
		return
	}
	u := pc.queue[len(pc.queue)-pc.unwritten]
	pc.writing, u.flush = true, true
	u.done <- struct{}{}
}

// read parses the engine's answers in order and hands each to the oldest
// waiting call, until the connection fails or is closed. An answer when
// no written call waits fails the connection (errUnsolicited).
//
// The read deadline is always that of the oldest call waiting, set when a
// call joins an empty queue or the one before it is answered, and the
// idle deadline once the queue empties. A timeout can therefore meet a
// call that joined just as the idle deadline expired; it is told apart by
// the call's own deadline being still ahead, and nothing of an answer can
// have been read then, since none was asked for.
func (pc *pconn) read() {
	p := pc.p
	br := bufio.NewReaderSize(pc.c, 4096)
	var resp fasthttp.Response
	for {
		err := resp.ReadLimitBody(br, p.maxRB)
		pc.mu.Lock()
		if pc.err != nil { // closed by a failed write, or idle at close
			pc.mu.Unlock()
			return
		}
		if err != nil && isTimeout(err) {
			if pc.queued() == 0 {
				pc.failLocked(errIdleOrClosed)
				pc.mu.Unlock()
				return
			}
			if d := pc.queue[pc.qhead].deadline; time.Now().Before(d) {
				_ = pc.c.SetReadDeadline(d)
				pc.mu.Unlock()
				resp.Reset()
				continue
			}
		}
		if pc.queued() <= pc.unwritten {
			// No written request awaits an answer: one now was not
			// asked for, and giving it to a held-back call would
			// accept an event none of whose bytes left. Those are
			// failed as not written, so they are sent elsewhere.
			if err == nil {
				err = errUnsolicited
			}
			pc.failLocked(err)
			pc.mu.Unlock()
			return
		}
		c := pc.queue[pc.qhead]
		pc.queue[pc.qhead] = nil
		pc.qhead++
		c.resolved = true
		// As in the one-at-a-time client.
		if c.status, c.err = answered(&resp, err); c.err != nil {
			c.err = p.h.classify(c.err)
		}
		switch {
		case err != nil:
			pc.failBlamed(err, true)
		case resp.StatusCode() == fasthttp.StatusSwitchingProtocols:
			// The engine speaks another protocol after a 101: nothing
			// read on the connection is an answer any more, so the
			// events written behind it fail as aborted, and those held
			// back are sent elsewhere.
			pc.failBlamed(errSwitched, true)
		case resp.ConnectionClose():
			// The engine ends the connection with this answer (by
			// Connection: close, or as HTTP/1.0 without keep-alive),
			// as servers do after so many requests, and processes
			// nothing after it (RFC 9112 §9.6): the events behind
			// it are sent again, and nobody is blamed.
			pc.failLocked(errEngineClosed)
		case pc.queued() > 0:
			_ = pc.c.SetReadDeadline(pc.queue[pc.qhead].deadline)
		case pc.draining:
			pc.failLocked(errIdleOrClosed)
		default:
			_ = pc.c.SetReadDeadline(time.Now().Add(p.idle))
		}
		// The requests held back for this answer go now, written by
		// the oldest of their Forwards, whose deadline is the batch's:
		// the reader itself must not block in a write while the engine
		// may be blocked writing answers.
		pc.flushLocked()
		// Answered last, so the caller finds the connection as this
		// answer left it.
		c.done <- struct{}{}
		failed := pc.err != nil
		pc.mu.Unlock()
		if failed {
			return
		}
		resp.Reset()
	}
}

// failLocked closes the connection and fails every call still queued:
// those whose bytes never reached the kernel with errNotWritten, so they
// are re-sent elsewhere; the oldest written one with what happened, unless
// an answered call already got it (blamed); the rest as aborted. When the
// engine ended the connection with an answer (errEngineClosed), every
// call queued gets errUnprocessed: none was processed, and none is to
// blame. pc.mu is held.
func (pc *pconn) failLocked(cause error) { pc.failBlamed(cause, false) }

func (pc *pconn) failBlamed(cause error, blamed bool) {
	if pc.err != nil {
		return
	}
	pc.err = cause
	pc.failed.Store(true)
	// Forgotten before it is closed, so that once the engine sees the
	// close the connection is counted no more (Stats.Conns). Locks are
	// taken pc.mu, then p.mu: nothing holding p.mu takes a connection's.
	pc.p.remove(pc)
	pc.c.Close()
	for i := pc.qhead; i < len(pc.queue); i++ {
		c := pc.queue[i]
		pc.queue[i] = nil
		c.resolved = true
		switch {
		case cause == errEngineClosed:
			c.err = errUnprocessed
		case i >= len(pc.queue)-pc.unwritten:
			c.err = errNotWritten
		case i == pc.qhead && !blamed:
			c.err = pc.p.h.classify(cause)
		default:
			c.err = errAborted
		}
		c.done <- struct{}{}
	}
	pc.queue, pc.qhead, pc.unwritten = pc.queue[:0], 0, 0
	pc.buf = pc.buf[:0]
}
