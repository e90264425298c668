package downstream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestPipelineAnswersInOrder: with many events in flight on few
// connections, every Forward gets its own event's answer — the engine
// answers each with a status derived from its Idempotency-Key — and the
// engine receives each event exactly once.
func TestPipelineAnswersInOrder(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	e := startEngine(t, "127.0.0.1:0", func(ctx *fasthttp.RequestCtx) {
		key := string(ctx.Request.Header.Peek("Idempotency-Key"))
		mu.Lock()
		got[key]++
		mu.Unlock()
		ctx.SetStatusCode(statusFor(key))
	})
	e.quiet.Store(true)
	const workers, each = 64, 100
	h := openHTTP(t, Config{URL: "http://" + e.addr + "/in", Pipeline: 16, Timeout: 10 * time.Second})
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := "ev-" + strconv.Itoa(w*each+i)
				err := h.Forward([]byte(key), nil, []byte(testEvent), time.Now())
				want := statusFor(key)
				var se *StatusError
				switch {
				case want < 300 && err == nil:
				case want >= 300 && errors.As(err, &se) && se.Status == want:
				default:
					if wrong.Add(1) <= 5 {
						t.Errorf("%s: Forward = %v; want the engine's %d for this event", key, err, want)
					}
				}
			}
		})
	}
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d Forwards got another event's answer", n)
	}
	if len(got) != workers*each {
		t.Fatalf("engine received %d distinct events; want %d", len(got), workers*each)
	}
	for k, n := range got {
		if n != 1 {
			t.Fatalf("engine received %s %d times; want once", k, n)
		}
	}
	// 64 callers at 16 in flight per connection need few connections; the
	// one-at-a-time client would have opened up to 64.
	if m := e.maxOpen.Load(); m > 8 {
		t.Fatalf("engine saw %d connections at once; want at most 8 with 16 events in flight on each", m)
	}
	t.Logf("connections at once: %d", e.maxOpen.Load())
}

// statusFor is the engine's answer to an event: 500 for every seventh,
// otherwise 200–203.
func statusFor(key string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(key, "ev-"))
	if n%7 == 0 {
		return 500
	}
	return 200 + n%4
}

// TestPipelineTimeoutFailsThoseBehind: answers come in order, so when the
// oldest event on a connection times out, the events behind it cannot be
// answered there. They were held back unwritten while it was awaited, so
// each is sent again on a new connection if its own deadline leaves time
// for it, and otherwise fails as aborted — never as accepted, never past
// its deadline, never twice at the engine.
func TestPipelineTimeoutFailsThoseBehind(t *testing.T) {
	release := make(chan struct{})
	var receipts sync.Map
	e := startEngine(t, "127.0.0.1:0", func(ctx *fasthttp.RequestCtx) {
		key := string(ctx.Request.Header.Peek("Idempotency-Key"))
		if _, dup := receipts.LoadOrStore(key, true); dup {
			t.Errorf("engine received %s twice", key)
		}
		if key == "slow" {
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		}
	})
	defer close(release)
	const timeout = time.Second
	h := openHTTP(t, Config{URL: "http://" + e.addr + "/", Pipeline: 16, MaxConns: 1, Timeout: timeout,
		DialRetryDelay: 50 * time.Millisecond})
	start := time.Now()
	type result struct {
		key string
		err error
	}
	results := make(chan result, 7)
	send := func(key string) {
		go func() { results <- result{key, h.Forward([]byte(key), nil, []byte(testEvent), time.Now())} }()
	}
	send("slow")
	time.Sleep(20 * time.Millisecond) // the slow event is first on the connection
	for i := range 3 {
		send("soon-" + strconv.Itoa(i)) // about 20ms left when the slow one times out
	}
	time.Sleep(timeout / 2)
	for i := range 3 {
		send("later-" + strconv.Itoa(i)) // about half the timeout left then
	}
	var timeouts, aborted, delivered int
	for range 7 {
		r := <-results
		switch {
		case r.key == "slow":
			if !errors.Is(r.err, ErrTimeout) {
				t.Fatalf("slow event: %v; want a timeout", r.err)
			}
			timeouts++
		case r.err == nil:
			delivered++
			if _, ok := receipts.Load(r.key); !ok {
				t.Fatalf("%s answered accepted but the engine never received it", r.key)
			}
		case errors.Is(r.err, ErrAborted):
			aborted++
			if _, ok := receipts.Load(r.key); ok {
				t.Fatalf("%s aborted after the engine received it", r.key)
			}
		default:
			t.Fatalf("%s, behind a timed-out event: %v; want delivered on a new connection or aborted", r.key, r.err)
		}
	}
	if el := time.Since(start); el > timeout+timeout/2+500*time.Millisecond {
		t.Fatalf("the Forwards took %s; want each within its %s", el, timeout)
	}
	if delivered < 3 {
		t.Fatalf("%d delivered, %d aborted; want the later events, held back behind the slow one, sent on a new connection", delivered, aborted)
	}
	t.Logf("behind the slow event: %d delivered on a new connection, %d aborted", delivered, aborted)
	if err := h.Forward([]byte("next"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatalf("Forward after the timeout: %v; want a fresh connection", err)
	}
}

// TestPipelineHoldsBackWhileAwaiting: while an answer is awaited, the
// events that arrive are held back and then leave together, in one write,
// when it comes — one write per round trip rather than per event — and
// each still gets its own answer.
func TestPipelineHoldsBackWhileAwaiting(t *testing.T) {
	release := make(chan struct{})
	var received atomic.Int64
	e := startEngine(t, "127.0.0.1:0", func(ctx *fasthttp.RequestCtx) {
		received.Add(1)
		if key := string(ctx.Request.Header.Peek("Idempotency-Key")); key == "first" {
			<-release
		} else {
			ctx.SetStatusCode(statusFor(key))
		}
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock() // a failing test must not leave the engine blocked
	h := openHTTP(t, Config{URL: "http://" + e.addr + "/", Pipeline: 64, MaxConns: 1, Timeout: 10 * time.Second})
	first := make(chan error, 1)
	go func() { first <- h.Forward([]byte("first"), nil, []byte(testEvent), time.Now()) }()
	pc := waitConn(t, h, 5*time.Second, "the first event written and awaited", func(pc *pconn) bool {
		return pc != nil && pc.queued() == 1 && pc.unwritten == 0 && !pc.writing
	})
	const n = 50
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for i := range n {
		wg.Go(func() {
			key := "ev-" + strconv.Itoa(i+1)
			err := h.Forward([]byte(key), nil, []byte(testEvent), time.Now())
			var se *StatusError
			if want := statusFor(key); !(want < 300 && err == nil || errors.As(err, &se) && se.Status == want) {
				wrong.Add(1)
			}
		})
	}
	waitConn(t, h, 5*time.Second, "every event queued", func(x *pconn) bool { return x == pc && pc.queued() == n+1 })
	pc.mu.Lock()
	held, buffered := pc.unwritten, len(pc.buf)
	pc.mu.Unlock()
	if held != n || received.Load() != 1 {
		t.Fatalf("%d of %d events held back and the engine received %d; want all held back while the first is awaited", held, n, received.Load())
	}
	if buffered < n*len(testEvent) {
		t.Fatalf("%d bytes buffered; want the %d held-back events", buffered, n)
	}
	unblock()
	if err := <-first; err != nil {
		t.Fatalf("first event: %v", err)
	}
	wg.Wait()
	if w := wrong.Load(); w > 0 {
		t.Fatalf("%d held-back events got another's answer or none", w)
	}
	if got := received.Load(); got != n+1 {
		t.Fatalf("engine received %d events; want %d", got, n+1)
	}
}

// TestPipelineAnsweredReturnsAtOnce: an answered Forward returns with its
// answer; the write of the events held back behind it is done by the
// oldest of them, under its own deadline. Here that write blocks, since
// the engine stops reading after the first event, and the first Forward
// must not wait for it: done by the answered Forward, it would have
// returned only when the held-back event timed out, past its own deadline.
func TestPipelineAnsweredReturnsAtOnce(t *testing.T) {
	ln := listenLoopback(t)
	// The first event's timeout is long, so a busy machine under -race
	// never times it out; the big one's deadline is bigWindow from its
	// start, and the bug made the first Forward wait for it.
	const timeout, bigWindow = 20 * time.Second, 12 * time.Second
	answer := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		<-answer
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		<-time.After(timeout) // never reads again
	}()
	h := openHTTP(t, Config{URL: "http://" + ln.Addr().String() + "/", Pipeline: 16, MaxConns: 1, Timeout: timeout})
	// Built before the first Forward: making and queueing 64 MiB under
	// -race took up to seconds on a busy machine.
	big := bigEvent()
	first := make(chan error, 1)
	go func() { first <- h.Forward([]byte("first"), nil, []byte(testEvent), time.Now()) }()
	waitConn(t, h, 5*time.Second, "the first event written and awaited", func(pc *pconn) bool {
		return pc != nil && pc.queued() == 1 && pc.unwritten == 0 && !pc.writing
	})
	bigErr := make(chan error, 1)
	bigStart := time.Now()
	go func() { bigErr <- h.Forward([]byte("big"), nil, big, bigStart.Add(bigWindow-timeout)) }()
	// Queueing copies 64 MiB, which under -race, in a process that has
	// not touched that much memory yet, took over 4 s on a slow machine.
	waitConn(t, h, bigWindow*3/4, "the big event held back", func(pc *pconn) bool { return pc != nil && pc.unwritten == 1 })
	answered := time.Now()
	left := bigStart.Add(bigWindow).Sub(answered) // at least bigWindow/4
	close(answer)
	if err := <-first; err != nil {
		t.Fatalf("first event: %v", err)
	}
	// With the bug it returned at the big event's deadline, left after
	// the answer.
	if d := time.Since(answered); d > left/2 {
		t.Fatalf("the answered Forward returned %s after its answer; want at once, not after the held-back write", d)
	}
	if err := <-bigErr; !errors.Is(err, ErrTimeout) {
		t.Fatalf("held-back event the engine never reads: %v; want a timeout", err)
	}
}

// waitConn waits up to within for ok, called every few milliseconds with
// the pipeline's only connection once it is dialed, under its lock, or
// with nil while there is none, and returns that connection (nil if ok
// accepted none); it fails the test, saying what it waited for, when ok
// never returns true.
func waitConn(t *testing.T, h *HTTP, within time.Duration, what string, ok func(*pconn) bool) *pconn {
	t.Helper()
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		var pc *pconn
		h.pipe.mu.Lock() // never held while taking a connection's lock
		if len(h.pipe.conns) == 1 {
			pc = h.pipe.conns[0]
		}
		h.pipe.mu.Unlock()
		if pc != nil {
			select {
			case <-pc.ready:
			default:
				pc = nil
			}
		}
		if pc == nil {
			if ok(nil) {
				return nil
			}
			continue
		}
		pc.mu.Lock()
		good := ok(pc)
		pc.mu.Unlock()
		if good {
			return pc
		}
	}
	t.Fatalf("waited %s in vain: %s", within, what)
	return nil
}

// bigEvent is an event larger than the socket buffers on both ends hold,
// so that writing it blocks while the engine does not read.
func bigEvent() []byte { return []byte(`{"pad":"` + strings.Repeat("x", 64<<20) + `"}`) }

// TestPipelineResendsOnlyUnwritten: an engine that accepts and never
// reads makes the first event's write block; an event queued behind it
// meanwhile has no byte written when that write times out, so it is sent
// again on a new connection — and it reaches the engine there only, while
// the first event is never re-sent.
func TestPipelineResendsOnlyUnwritten(t *testing.T) {
	ln := listenLoopback(t)
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held, never read until the end
		}
	}()
	// Long enough for a loaded machine to copy the big event before its
	// deadline.
	const timeout = 4 * time.Second
	h := openHTTP(t, Config{URL: "http://" + ln.Addr().String() + "/", Pipeline: 16, MaxConns: 1,
		Timeout: timeout, DialAttempts: 2, DialRetryDelay: time.Millisecond})
	bigErr := make(chan error, 1)
	go func() { bigErr <- h.Forward([]byte("big"), nil, bigEvent(), time.Now()) }()
	first := <-accepted
	defer first.Close()
	// Wait until the big event has been handed to a write that blocks.
	var ended error
	endedEarly := false
	waitConn(t, h, timeout/2, "the big event's write seen blocked", func(pc *pconn) bool {
		select {
		case ended = <-bigErr:
			endedEarly = true
			return true
		default:
		}
		return pc != nil && pc.writing && pc.unwritten == 0 && pc.queued() == 1
	})
	if endedEarly {
		t.Fatalf("the big event ended before its write was seen blocked: %v", ended)
	}
	time.Sleep(20 * time.Millisecond)
	smallErr := h.Forward([]byte("small"), nil, []byte(testEvent), time.Now())
	if err := <-bigErr; !errors.Is(err, ErrTimeout) {
		t.Fatalf("blocked event: %v; want a timeout", err)
	}
	if !errors.Is(smallErr, ErrTimeout) {
		t.Fatalf("event queued behind it: %v; want a timeout on the engine that never answers", smallErr)
	}
	var second net.Conn
	select {
	case second = <-accepted:
		defer second.Close()
	case <-time.After(time.Second):
		t.Fatal("the unwritten event was not sent again on a new connection")
	}
	if st := h.Stats(); st.DialRetries != 1 || st.Requests != 2 {
		t.Fatalf("Stats = %+v; want one re-send of the unwritten event", st)
	}
	// What each connection carried: the big event on the first only, the
	// small one on the second only.
	readAll := func(c net.Conn) string {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	onSecond := readAll(second)
	onFirst := readAll(first)
	if !strings.Contains(onSecond, "Idempotency-Key: small\r\n") || strings.Contains(onSecond, "Idempotency-Key: big\r\n") {
		t.Fatalf("second connection carried %.200q; want the small event only", onSecond)
	}
	if strings.Contains(onFirst, "Idempotency-Key: small\r\n") {
		t.Fatal("the small event was written on the first connection too")
	}
}

// TestPipelineUnsolicitedAnswerFailsConnection: an engine (or a proxy in
// front of it) that sends an answer more than it was asked for while an
// event is held back must not make that event accepted, since none of its
// bytes left the gateway: the extra answer fails the connection, the
// held-back event fails as not written (re-sent, were attempts left), and
// the Forward whose write was under way returns without a panic.
func TestPipelineUnsolicitedAnswerFailsConnection(t *testing.T) {
	ln := listenLoopback(t)
	sendAnswers := make(chan struct{})
	var gotMu sync.Mutex
	var got strings.Builder // everything the engine read
	engineDone := make(chan struct{})
	go func() {
		defer close(engineDone)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		<-sendAnswers
		// Two answers, although at most one request can have arrived.
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		buf := make([]byte, 1<<20)
		for {
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, err := c.Read(buf)
			gotMu.Lock()
			got.Write(buf[:n])
			gotMu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	// One attempt, so the held-back event's failure is seen as it is.
	// Not openHTTP: after a panic under the connection's lock, Close
	// would block.
	s, err := Open(Config{URL: "http://" + ln.Addr().String() + "/", Pipeline: 16, MaxConns: 1,
		Timeout: 10 * time.Second, DialAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := s.(*HTTP)
	big := bigEvent()
	type result struct {
		err      error
		panicked any
	}
	bigRes := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				bigRes <- result{panicked: r}
			}
		}()
		bigRes <- result{err: h.Forward([]byte("big"), nil, big, time.Now())}
	}()
	waitConn(t, h, 5*time.Second, "the big event's write blocked", func(pc *pconn) bool {
		return pc != nil && pc.writing && pc.queued() == 1 && pc.unwritten == 0
	})
	smallRes := make(chan error, 1)
	go func() { smallRes <- h.Forward([]byte("small"), nil, []byte(testEvent), time.Now()) }()
	waitConn(t, h, 5*time.Second, "the small event held back", func(pc *pconn) bool {
		return pc != nil && pc.unwritten == 1
	})
	close(sendAnswers)
	var smallErr error
	select {
	case smallErr = <-smallRes:
	case <-time.After(10 * time.Second):
		t.Fatal("the held-back event never returned")
	}
	var br result
	select {
	case br = <-bigRes:
	case <-time.After(10 * time.Second):
		t.Fatal("the big event never returned")
	}
	if !errors.Is(smallErr, ErrAborted) {
		t.Errorf("held-back event, never written, after an extra answer: %v; want aborted as not written", smallErr)
	}
	if br.panicked != nil {
		t.Fatalf("the big event's Forward panicked: %v", br.panicked)
	}
	s.Close()
	<-engineDone
	gotMu.Lock()
	sawSmall := strings.Contains(got.String(), "Idempotency-Key: small\r\n")
	gotMu.Unlock()
	if sawSmall {
		t.Fatal("the held-back event was written after an extra answer")
	}
}

// TestPipelineAnsweredWriterHandsOffNextWrite: a Forward whose event is
// answered while its write goes on (the engine answers once it has read
// the headers) must not go on to write the events appended meanwhile:
// they are handed to the oldest of them, under its own deadline. Here the
// engine stops reading after the first event, and writing the second,
// whose deadline is later, kept the first Forward past its own deadline.
func TestPipelineAnsweredWriterHandsOffNextWrite(t *testing.T) {
	ln := listenLoopback(t)
	// Room for a loaded machine to start writing 64 MiB under -race: the
	// first event must be answered mid-write within timeout/2.
	const timeout = 12 * time.Second
	readBody, testDone := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hangUp := func() { once.Do(func() { close(testDone) }) }
	defer hangUp()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 64<<10)
		req, err := http.ReadRequest(br) // headers only
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		<-readBody
		_, _ = io.CopyN(io.Discard, br, req.ContentLength) // the first body, then no more reading
		<-testDone
	}()
	h := openHTTP(t, Config{URL: "http://" + ln.Addr().String() + "/", Pipeline: 16, MaxConns: 1, Timeout: timeout})
	first, second := bigEvent(), bigEvent()
	start := time.Now()
	firstErr := make(chan error, 1)
	go func() { firstErr <- h.Forward([]byte("first"), nil, first, start) }()
	waitConn(t, h, timeout/2, "the first event answered while its write goes on", func(pc *pconn) bool {
		return pc != nil && pc.writing && pc.queued() == 0
	})
	// The second event's deadline is half the timeout after the first's.
	time.Sleep(timeout/2 - time.Since(start))
	secondStart := time.Now()
	secondErr := make(chan error, 1)
	go func() { secondErr <- h.Forward([]byte("second"), nil, second, secondStart) }()
	waitConn(t, h, timeout/2, "the second event held back", func(pc *pconn) bool { return pc != nil && pc.unwritten == 1 })
	close(readBody)
	err := <-firstErr
	d := time.Since(start)
	t.Logf("first event: %v after %s", err, d)
	if err != nil || d > timeout {
		t.Errorf("first event: %v after %s; want accepted within its %s timeout, not after the second's write", err, d, timeout)
	}
	// The engine hangs up, so the second's write fails at once.
	hangUp()
	if err := <-secondErr; err == nil {
		t.Error("second event, never read: accepted")
	}
}

// TestPipelineEngineEndsConnection: an engine that ends a keep-alive
// connection after so many requests (Apache's MaxKeepAliveRequests,
// nginx's keepalive_requests, fasthttp's MaxRequestsPerConn) answers the
// last with Connection: close, and one that speaks HTTP/1.0 answers every
// request so; either way it processes nothing after that answer (RFC 9112
// §9.6). The events written or held back behind it are sent again on a
// new connection, so none fails, and the engine still receives each once.
func TestPipelineEngineEndsConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(t *testing.T, ln net.Listener, received func(key string))
	}{
		{"Connection: close after 2 requests", func(t *testing.T, ln net.Listener, received func(string)) {
			srv := &fasthttp.Server{
				Logger:             quietLogger{},
				MaxRequestsPerConn: 2,
				Handler: func(ctx *fasthttp.RequestCtx) {
					received(string(ctx.Request.Header.Peek("Idempotency-Key")))
					time.Sleep(10 * time.Millisecond)
				},
			}
			done := make(chan struct{})
			go func() { defer close(done); _ = srv.Serve(ln) }()
			t.Cleanup(func() { _ = srv.Shutdown(); <-done })
		}},
		{"HTTP/1.0, one request per connection", func(t *testing.T, ln net.Listener, received func(string)) {
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						req, err := http.ReadRequest(bufio.NewReader(c))
						if err != nil {
							return
						}
						_, _ = io.Copy(io.Discard, req.Body)
						received(req.Header.Get("Idempotency-Key"))
						_, _ = c.Write([]byte("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"))
						// A lingering close: closing with requests unread
						// would reset the connection, which may cost the
						// client the answer before it reads it.
						_ = c.(*net.TCPConn).CloseWrite()
						_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
						_, _ = io.Copy(io.Discard, c)
					}()
				}
			}()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			transports(t, func(t *testing.T, pl int) {
				ln := listenLoopback(t)
				var mu sync.Mutex
				got := map[string]int{}
				tc.serve(t, ln, func(key string) {
					mu.Lock()
					got[key]++
					mu.Unlock()
				})
				h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + ln.Addr().String() + "/", MaxConns: 1, Timeout: 20 * time.Second})
				const n = 20
				var wg sync.WaitGroup
				var failed atomic.Int64
				for i := range n {
					wg.Go(func() {
						if err := h.Forward([]byte("ev-"+strconv.Itoa(i)), nil, []byte(testEvent), time.Now()); err != nil {
							if failed.Add(1) <= 3 {
								t.Errorf("ev-%d against an engine that ends connections: %v", i, err)
							}
						}
					})
				}
				wg.Wait()
				if r := h.Stats().Resent; pl > 1 && r == 0 {
					t.Error("no event counted as sent again behind a closing answer")
				}
				mu.Lock()
				defer mu.Unlock()
				if len(got) != n {
					t.Errorf("engine received %d distinct events; want %d", len(got), n)
				}
				for k, c := range got {
					if c != 1 {
						t.Errorf("engine received %s %d times; want once", k, c)
					}
				}
			})
		})
	}
}

// TestPipelineResentEventKeepsItsDeadline: an event held back when its
// connection failed is sent again on another connection, where it may be
// held back behind an event whose deadline is later than its own. It
// must still end at its own deadline, and unsent: the connection's read
// deadline is the oldest event's, not its.
func TestPipelineResentEventKeepsItsDeadline(t *testing.T) {
	release := make(chan struct{})
	var received sync.Map
	e := startEngine(t, "127.0.0.1:0", func(ctx *fasthttp.RequestCtx) {
		key := string(ctx.Request.Header.Peek("Idempotency-Key"))
		received.Store(key, true)
		if strings.HasPrefix(key, "slow") {
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
	})
	defer close(release)
	const timeout = 2 * time.Second
	h := openHTTP(t, Config{URL: "http://" + e.addr + "/", Pipeline: 2, MaxConns: 2, Timeout: timeout})
	slow1Start := time.Now()
	go func() { _ = h.Forward([]byte("slow-1"), nil, []byte(testEvent), slow1Start) }()
	waitConn(t, h, timeout/4, "slow-1 written and awaited", func(pc *pconn) bool {
		return pc != nil && pc.queued() == 1 && pc.unwritten == 0 && !pc.writing
	})
	time.Sleep(timeout*3/10 - time.Since(slow1Start))
	fastStart := time.Now()
	fastErr := make(chan error, 1)
	go func() { fastErr <- h.Forward([]byte("fast"), nil, []byte(testEvent), fastStart) }()
	waitConn(t, h, timeout/4, "fast held back behind slow-1", func(pc *pconn) bool {
		return pc != nil && pc.unwritten == 1
	})
	// slow-1's connection has 2 in flight: slow-2 opens a second one,
	// where fast goes when slow-1 times out. slow-2's deadline is later
	// than fast's.
	time.Sleep(timeout*9/10 - time.Since(slow1Start))
	go func() { _ = h.Forward([]byte("slow-2"), nil, []byte(testEvent), time.Now()) }()
	err := <-fastErr
	elapsed := time.Since(fastStart)
	t.Logf("fast event: %v after %s", err, elapsed)
	if elapsed > timeout+timeout/4 {
		t.Errorf("fast event's Forward returned %s after its start (%v); want within its %s timeout", elapsed, err, timeout)
	}
	if _, ok := received.Load("fast"); ok && err != nil {
		t.Errorf("fast event failed (%v) but was sent", err)
	}
}

// TestPipelineHeldBackEventKeepsItsDeadline: an event may begin before
// the call (the timeout runs from start), so one held back behind an
// event with a later deadline must end at its own, not when the one ahead
// is answered or times out — and is never sent after that.
func TestPipelineHeldBackEventKeepsItsDeadline(t *testing.T) {
	transports(t, func(t *testing.T, pl int) {
		release := make(chan struct{})
		var received sync.Map
		e := startEngine(t, "127.0.0.1:0", func(ctx *fasthttp.RequestCtx) {
			key := string(ctx.Request.Header.Peek("Idempotency-Key"))
			received.Store(key, true)
			if key == "slow" {
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
			}
		})
		const timeout, left = 2 * time.Second, 200 * time.Millisecond
		h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + e.addr + "/", MaxConns: 1, Timeout: timeout})
		slowErr := make(chan error, 1)
		go func() { slowErr <- h.Forward([]byte("slow"), nil, []byte(testEvent), time.Now()) }()
		for end := time.Now().Add(timeout / 2); ; time.Sleep(2 * time.Millisecond) {
			if _, ok := received.Load("slow"); ok {
				break
			}
			if time.Now().After(end) {
				t.Fatal("the slow event never reached the engine")
			}
		}
		called := time.Now()
		err := h.Forward([]byte("late"), nil, []byte(testEvent), called.Add(left-timeout))
		d := time.Since(called)
		t.Logf("event with %s left: %v after %s", left, err, d)
		if !errors.Is(err, ErrTimeout) || d > left+timeout/5 {
			t.Errorf("event with %s left behind a slow one: %v after %s; want a timeout within its deadline", left, err, d)
		}
		close(release)
		if err := <-slowErr; err != nil {
			t.Errorf("slow event, answered in time: %v", err)
		}
		if _, ok := received.Load("late"); ok {
			t.Error("the event that timed out held back was sent after all")
		}
	})
}

// TestPipelineWrittenEventKeepsItsDeadline: events held back leave
// together, so one whose deadline is earlier than the oldest's can be
// written behind it. Its answer cannot be told from the others' but by
// its place, so at its deadline its connection fails: it with a timeout,
// the one ahead as aborted (its failure says nothing of the engine).
func TestPipelineWrittenEventKeepsItsDeadline(t *testing.T) {
	first := make(chan struct{})
	testDone := make(chan struct{})
	defer close(testDone)
	e := startEngine(t, "127.0.0.1:0", func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Request.Header.Peek("Idempotency-Key")) {
		case "first":
			<-first
		case "long":
			<-testDone
		}
	})
	const timeout, left = 10 * time.Second, 2 * time.Second
	h := openHTTP(t, Config{URL: "http://" + e.addr + "/", Pipeline: 16, MaxConns: 1, Timeout: timeout})
	firstErr := make(chan error, 1)
	go func() { firstErr <- h.Forward([]byte("first"), nil, []byte(testEvent), time.Now()) }()
	waitConn(t, h, timeout/4, "the first event written and awaited", func(pc *pconn) bool {
		return pc != nil && pc.queued() == 1 && pc.unwritten == 0 && !pc.writing
	})
	longErr := make(chan error, 1)
	go func() { longErr <- h.Forward([]byte("long"), nil, []byte(testEvent), time.Now()) }()
	waitConn(t, h, timeout/4, "the long event held back", func(pc *pconn) bool { return pc != nil && pc.unwritten == 1 })
	shortStart := time.Now().Add(left - timeout)
	shortErr := make(chan error, 1)
	go func() { shortErr <- h.Forward([]byte("short"), nil, []byte(testEvent), shortStart) }()
	waitConn(t, h, left/2, "the short event held back", func(pc *pconn) bool { return pc != nil && pc.unwritten == 2 })
	close(first)
	if err := <-firstErr; err != nil {
		t.Fatalf("first event: %v", err)
	}
	waitConn(t, h, left/2, "the long and short events written together", func(pc *pconn) bool {
		return pc != nil && pc.queued() == 2 && pc.unwritten == 0 && !pc.writing
	})
	err := <-shortErr
	d := time.Since(shortStart)
	t.Logf("short event, written behind the long one: %v after %s", err, d)
	if !errors.Is(err, ErrTimeout) || d > timeout+timeout/20 {
		t.Errorf("short event, written behind a long one: %v %s after its start; want a timeout within its %s", err, d, timeout)
	}
	if err := <-longErr; !errors.Is(err, ErrAborted) {
		t.Errorf("long event, on the connection that failed for the short one: %v; want aborted", err)
	}
}

// TestPipelineSwitchingProtocolsEndsAnswers: after a 101 the engine speaks
// another protocol on the connection, so nothing read on it afterwards is
// an answer. An event written behind the 101 must not be accepted by
// bytes of that protocol that happen to look like a 200: the connection
// fails, and the event, written, fails as aborted and is not sent again.
func TestPipelineSwitchingProtocolsEndsAnswers(t *testing.T) {
	ln := listenLoopback(t)
	first := make(chan struct{})
	queued := make(chan struct{})
	var reqs atomic.Int64
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for n := 0; ; n++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			reqs.Add(1)
			if n == 0 {
				close(first)
				<-queued
				_, _ = c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"))
				continue
			}
			// The new protocol's bytes, which parse as a 200.
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		}
	}()
	h := openHTTP(t, Config{URL: "http://" + ln.Addr().String() + "/", Pipeline: 16, MaxConns: 1,
		Timeout: 5 * time.Second, DialAttempts: 1})
	aRes := make(chan error, 1)
	go func() { aRes <- h.Forward([]byte("a"), nil, []byte(testEvent), time.Now()) }()
	<-first
	bRes := make(chan error, 1)
	go func() { bRes <- h.Forward([]byte("b"), nil, []byte(testEvent), time.Now()) }()
	waitConn(t, h, 5*time.Second, "b held back behind a", func(pc *pconn) bool {
		return pc != nil && pc.unwritten == 1
	})
	close(queued)
	if err := <-aRes; err == nil {
		t.Error("a accepted by a 101")
	}
	err := <-bRes
	if err == nil {
		t.Fatal("b, written behind a 101, accepted by the bytes that followed it")
	}
	if !errors.Is(err, ErrAborted) {
		t.Errorf("b: %v; want aborted", err)
	}
}
