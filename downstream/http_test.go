package downstream

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// engine is a real fasthttp server on loopback standing in for the flow
// engine. It counts requests and open connections and keeps the last
// request it saw.
type engine struct {
	addr     string
	srv      *fasthttp.Server
	receipts atomic.Int64
	open     atomic.Int64
	maxOpen  atomic.Int64
	quiet    atomic.Bool // skip recording, which allocates

	mu   sync.Mutex
	last seen
}

// seen is what the engine recorded of a request.
type seen struct {
	method, uri, contentType, idempotencyKey, userAgent, authorization string
	loop                                                               string
	hasLoop                                                            bool
	body                                                               string
}

// startEngine serves handle on addr ("127.0.0.1:0" for any port) until the
// test ends. handle runs after the engine has recorded the request.
func startEngine(t testing.TB, addr string, handle fasthttp.RequestHandler) *engine {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("cannot listen on %s: %s", addr, err)
	}
	return serveEngine(t, ln, handle)
}

// serveEngine serves handle on ln until the test ends.
// startUnixEngine starts an engine on a Unix socket in a fresh temporary
// directory and returns it with the socket's path.
func startUnixEngine(t testing.TB, handle fasthttp.RequestHandler) (*engine, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "engine.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("cannot listen on %s: %s", sock, err)
	}
	return serveEngine(t, ln, handle), sock
}

func serveEngine(t testing.TB, ln net.Listener, handle fasthttp.RequestHandler) *engine {
	e := &engine{addr: ln.Addr().String()}
	e.srv = &fasthttp.Server{
		Logger: quietLogger{},
		Handler: func(ctx *fasthttp.RequestCtx) {
			e.receipts.Add(1)
			if e.quiet.Load() {
				handle(ctx)
				return
			}
			loop := ctx.Request.Header.Peek("Hookgate-Loop")
			s := seen{
				method:         string(ctx.Method()),
				uri:            string(ctx.RequestURI()),
				contentType:    string(ctx.Request.Header.ContentType()),
				idempotencyKey: string(ctx.Request.Header.Peek("Idempotency-Key")),
				userAgent:      string(ctx.UserAgent()),
				authorization:  string(ctx.Request.Header.Peek("Authorization")),
				loop:           string(loop),
				hasLoop:        loop != nil,
				body:           string(ctx.PostBody()),
			}
			e.mu.Lock()
			e.last = s
			e.mu.Unlock()
			handle(ctx)
		},
		ConnState: func(_ net.Conn, st fasthttp.ConnState) {
			switch st {
			case fasthttp.StateNew:
				n := e.open.Add(1)
				for {
					m := e.maxOpen.Load()
					if n <= m || e.maxOpen.CompareAndSwap(m, n) {
						break
					}
				}
			case fasthttp.StateClosed, fasthttp.StateHijacked:
				e.open.Add(-1)
			}
		},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ln.Close()
		_ = e.srv.Shutdown()
		<-done
	})
	return e
}

// quietLogger drops the engine's log lines about connections tests break
// on purpose.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// stop closes the engine's listener and connections at once.
func (e *engine) stop() {
	_ = e.srv.Shutdown()
}

func (e *engine) lastSeen() seen {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

func answer(status int) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(status)
		ctx.SetBodyString(`{"ok":true}`)
	}
}

func openHTTP(t testing.TB, cfg Config) *HTTP {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %s", err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*HTTP)
}

// transports runs a test with the one-at-a-time client and pipelined
// (Config.Pipeline 16): both keep the same promises.
func transports(t *testing.T, f func(t *testing.T, pipeline int)) {
	for _, pl := range []int{1, 16} {
		t.Run("pipeline="+strconv.Itoa(pl), func(t *testing.T) { f(t, pl) })
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

const testEvent = `{"event_id":"01J0000000000000000000000A","table":"tbl_menu","automation":"new_product","params":{"name":"Jasmine green"}}`

func TestHTTPForwardAnswers(t *testing.T) { transports(t, testHTTPForwardAnswers) }

func testHTTPForwardAnswers(t *testing.T, pl int) {
	tests := []struct {
		name    string
		status  int
		loop    string
		url     string // path, query and userinfo around the engine's address
		wantErr string
		wantIs  error
	}{
		{name: "200", status: 200, loop: "new_product", url: "http://%s/hooks/in"},
		{name: "204 without loop", status: 204, url: "http://%s/hooks/in?x=1"},
		{name: "500", status: 500, loop: "a,b", url: "http://%s/", wantErr: "flow engine answered 500", wantIs: ErrRejected},
		{name: "404", status: 404, url: "http://%s/missing", wantErr: "flow engine answered 404", wantIs: ErrRejected},
		{name: "userinfo and query secrets", status: 502, url: "http://hook:s3cret@%s/in?token=s3cret", wantErr: "flow engine answered 502", wantIs: ErrRejected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startEngine(t, "127.0.0.1:0", answer(tc.status))
			url := strings.Replace(tc.url, "%s", e.addr, 1)
			h := openHTTP(t, Config{Pipeline: pl, URL: url, Timeout: 2 * time.Second})
			err := h.Forward([]byte("01J0000000000000000000000A"), []byte(tc.loop), []byte(testEvent), time.Now())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Forward: %s", err)
				}
			} else {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, tc.wantIs) {
					t.Fatalf("Forward error = %v; want %q matching %v", err, tc.wantErr, tc.wantIs)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error %q leaks a secret", err)
				}
			}
			got := e.lastSeen()
			wantURI := url[strings.Index(url, e.addr)+len(e.addr):]
			if got.method != "POST" || got.uri != wantURI || got.contentType != "application/json" ||
				got.idempotencyKey != "01J0000000000000000000000A" || got.userAgent != "hookgate" || got.body != testEvent {
				t.Fatalf("engine saw %+v; want POST %s with the event", got, wantURI)
			}
			if got.hasLoop != (tc.loop != "") || got.loop != tc.loop {
				t.Fatalf("engine saw Hookgate-Loop %q (present %v); want %q", got.loop, got.hasLoop, tc.loop)
			}
			if strings.Contains(url, "hook:s3cret@") && got.authorization != "Basic aG9vazpzM2NyZXQ=" {
				t.Fatalf("engine saw Authorization %q; want Basic credentials from the URL", got.authorization)
			}
			if st := h.Stats(); st.Requests != 1 || (st.Failures == 1) != (tc.wantErr != "") {
				t.Fatalf("Stats = %+v", st)
			}
		})
	}
}

func TestHTTPTimeout(t *testing.T) { transports(t, testHTTPTimeout) }

func testHTTPTimeout(t *testing.T, pl int) {
	release := make(chan struct{})
	e := startEngine(t, "127.0.0.1:0", func(ctx *fasthttp.RequestCtx) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	defer close(release)
	const timeout = 300 * time.Millisecond
	h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + e.addr + "/", Timeout: timeout})
	start := time.Now()
	err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now())
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) || err.Error() != "flow engine timeout after 300ms" {
		t.Fatalf("Forward error = %v; want flow engine timeout after 300ms", err)
	}
	if elapsed < timeout || elapsed > timeout+500*time.Millisecond {
		t.Fatalf("Forward returned after %s; want about %s", elapsed, timeout)
	}
	if n := e.receipts.Load(); n != 1 {
		t.Fatalf("engine got %d requests; want 1 (a timed-out POST is not re-sent)", n)
	}
	// The connection that timed out is closed, not pooled: a late answer
	// on it must never be read as the answer to the next event.
	if st := h.Stats(); st.Timeouts != 1 || st.Conns != 0 {
		t.Fatalf("Stats = %+v; want 1 timeout and no connection left", st)
	}
	// The timeout runs from the start the caller gives, not from the call:
	// a hand-over that began 200ms earlier has 100ms left.
	start = time.Now()
	err = h.Forward([]byte("id"), nil, []byte(testEvent), start.Add(-200*time.Millisecond))
	if elapsed := time.Since(start); !errors.Is(err, ErrTimeout) || elapsed > timeout-100*time.Millisecond {
		t.Fatalf("Forward begun 200ms before: %v after %s; want a timeout within about 100ms", err, elapsed)
	}
}

func TestHTTPEngineClosesWithoutAnswer(t *testing.T) {
	transports(t, testHTTPEngineClosesWithoutAnswer)
}

func testHTTPEngineClosesWithoutAnswer(t *testing.T, pl int) {
	e := startEngine(t, "127.0.0.1:0", func(ctx *fasthttp.RequestCtx) {
		ctx.Conn().Close()
	})
	h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + e.addr + "/", Timeout: 2 * time.Second, DialAttempts: 5})
	err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Forward error = %v; want ErrUnreachable", err)
	}
	t.Logf("error: %s", err)
	// Leave a re-send time to arrive before counting.
	time.Sleep(100 * time.Millisecond)
	if n := e.receipts.Load(); n != 1 {
		t.Fatalf("engine got %d requests; want exactly 1: a POST that reached the engine is never re-sent", n)
	}
	if st := h.Stats(); st.DialRetries != 0 {
		t.Fatalf("Stats = %+v; want no retries", st)
	}
}

func TestHTTPEngineNotListening(t *testing.T) { transports(t, testHTTPEngineNotListening) }

func testHTTPEngineNotListening(t *testing.T, pl int) {
	tests := []struct {
		attempts    int
		wantRetries uint64
	}{
		{attempts: 1, wantRetries: 0},
		{attempts: 3, wantRetries: 2},
	}
	for _, tc := range tests {
		h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + freeAddr(t) + "/", Timeout: 2 * time.Second,
			DialAttempts: tc.attempts, DialRetryDelay: 10 * time.Millisecond})
		err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now())
		if !errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), "cannot connect to flow engine: ") {
			t.Fatalf("attempts %d: Forward error = %v; want cannot connect to flow engine", tc.attempts, err)
		}
		t.Logf("error: %s", err)
		if st := h.Stats(); st.DialRetries != tc.wantRetries || st.Failures != 1 {
			t.Fatalf("attempts %d: Stats = %+v; want %d dial retries", tc.attempts, st, tc.wantRetries)
		}
	}
}

func TestHTTPConcurrentMaxConns(t *testing.T) { transports(t, testHTTPConcurrentMaxConns) }

func testHTTPConcurrentMaxConns(t *testing.T, pl int) {
	e := startEngine(t, "127.0.0.1:0", func(ctx *fasthttp.RequestCtx) {
		time.Sleep(time.Millisecond)
		ctx.SetStatusCode(fasthttp.StatusAccepted)
	})
	const maxConns, n = 4, 1000
	h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + e.addr + "/", MaxConns: maxConns, Timeout: 20 * time.Second})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range n {
		wg.Go(func() {
			if err := h.Forward([]byte{byte('a' + i%26)}, nil, []byte(testEvent), time.Now()); err != nil {
				if failed.Add(1) == 1 {
					t.Errorf("Forward: %s", err)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d Forwards failed", f, n)
	}
	if got := e.receipts.Load(); got != n {
		t.Fatalf("engine got %d requests; want %d", got, n)
	}
	if m := e.maxOpen.Load(); m > maxConns {
		t.Fatalf("engine saw %d connections open at once; want at most %d", m, maxConns)
	}
}

func TestHTTPRecovery(t *testing.T) { transports(t, testHTTPRecovery) }

func testHTTPRecovery(t *testing.T, pl int) {
	addr := freeAddr(t)
	h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + addr + "/", Timeout: time.Second, DialRetryDelay: 10 * time.Millisecond})
	if err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Forward to a down engine: %v; want ErrUnreachable", err)
	}
	e := startEngine(t, addr, answer(200))
	for i := range 3 {
		if err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now()); err != nil {
			t.Fatalf("Forward %d after the engine came up: %s", i, err)
		}
	}
	// The engine goes away with a keep-alive connection in the pool and
	// comes back: the pooled connection fails once, then a new one works.
	e.stop()
	e2 := startEngine(t, addr, answer(200))
	var err error
	for range 2 {
		if err = h.Forward([]byte("id"), nil, []byte(testEvent), time.Now()); err == nil {
			break
		}
		t.Logf("first Forward after the restart: %s", err)
	}
	if err != nil {
		t.Fatalf("Forward after the engine restarted: %s", err)
	}
	if e2.receipts.Load() == 0 {
		t.Fatal("restarted engine got no request")
	}
}

func TestHTTPClose(t *testing.T) { transports(t, testHTTPClose) }

func testHTTPClose(t *testing.T, pl int) {
	arrived := make(chan struct{}, 1)
	e := startEngine(t, "127.0.0.1:0", func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Request.Header.Peek("Idempotency-Key")) == "slow" {
			arrived <- struct{}{}
			time.Sleep(100 * time.Millisecond)
		}
	})
	h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + e.addr + "/"})
	if err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatal(err)
	}
	// A Forward in flight when the sink closes still finishes.
	inFlight := make(chan error, 1)
	go func() { inFlight <- h.Forward([]byte("slow"), nil, []byte(testEvent), time.Now()) }()
	<-arrived
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-inFlight; err != nil {
		t.Fatalf("Forward in flight at Close = %v; want it to finish", err)
	}
	if err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Forward after Close = %v; want ErrClosed", err)
	}
}

func TestHTTPLargeAnswer(t *testing.T) { transports(t, testHTTPLargeAnswer) }

func testHTTPLargeAnswer(t *testing.T, pl int) {
	big := strings.Repeat("x", 64<<10)
	e := startEngine(t, "127.0.0.1:0", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(big) })
	h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + e.addr + "/"})
	if err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatalf("Forward with a 2xx answer longer than the cap: %s", err)
	}
}

func TestHTTPIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %s", err)
	}
	e := serveEngine(t, ln, answer(200))
	h := openHTTP(t, Config{URL: "http://" + e.addr + "/in"})
	if err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatalf("Forward to %s: %s", e.addr, err)
	}
}

// An engine whose certificate is not trusted: the handshake fails before
// any request byte is written, so the failure counts as a failed dial.
func TestHTTPSUntrustedEngine(t *testing.T) {
	pair, cert := selfSigned(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}})
	e := serveEngine(t, tlsLn, answer(200))
	_, port, _ := net.SplitHostPort(e.addr)
	h := openHTTP(t, Config{URL: "https://localhost:" + port + "/in", DialAttempts: 2, DialRetryDelay: 10 * time.Millisecond})
	err = h.Forward([]byte("id"), nil, []byte(testEvent), time.Now())
	if !errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), "cannot connect to flow engine: tls: ") {
		t.Fatalf("Forward to an untrusted engine = %v; want a failed TLS handshake", err)
	}
	t.Logf("error: %s", err)
	if n := e.receipts.Load(); n != 0 {
		t.Fatalf("engine got %d requests; want 0", n)
	}
	if st := h.Stats(); st.DialRetries != 1 {
		t.Fatalf("Stats = %+v; want the handshake retried once", st)
	}

	// Once the engine's certificate is trusted, the same engine accepts.
	h.tls.RootCAs = x509.NewCertPool()
	h.tls.RootCAs.AddCert(cert)
	if err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatalf("Forward to a trusted engine: %s", err)
	}
	if got := e.lastSeen(); got.body != testEvent || got.uri != "/in" {
		t.Fatalf("engine saw %+v", got)
	}
}

// TestHTTPStatusThenHangIsAccepted: an engine that sends a 2xx status line
// and then stalls its body has taken the event; reporting a failure would
// make the caller's retry trigger the automation twice. A 5xx that stalls
// stays a failure, and so does silence.
func TestHTTPStatusThenHangIsAccepted(t *testing.T) { transports(t, testHTTPStatusThenHangIsAccepted) }

func testHTTPStatusThenHangIsAccepted(t *testing.T, pl int) {
	for _, tc := range []struct {
		name, head string
		ok         bool
	}{
		{"2xx then hang", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true},
		{"2xx chunked then hang", "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"5xx then hang", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\n", false},
		{"silence", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveOnce(t, func(c net.Conn) {
				buf := make([]byte, 4096)
				c.Read(buf)
				c.Write([]byte(tc.head))
				time.Sleep(2 * time.Second)
			})
			s, err := Open(Config{Pipeline: pl, URL: "http://" + addr + "/e", Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Forward([]byte("id"), nil, []byte(`{}`), time.Now())
			if (err == nil) != tc.ok {
				t.Fatalf("Forward = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestHTTPUnixSocket forwards over a Unix domain socket: the engine sees
// the URL's path and host, nothing is dialed over TCP, and an engine not
// (or no longer) listening on the socket is an unreachable engine.
func TestHTTPUnixSocket(t *testing.T) { transports(t, testHTTPUnixSocket) }

func testHTTPUnixSocket(t *testing.T, pl int) {
	var host atomic.Value
	e, sock := startUnixEngine(t, func(ctx *fasthttp.RequestCtx) {
		host.Store(string(ctx.Host()))
		ctx.SetStatusCode(fasthttp.StatusAccepted)
	})
	h := openHTTP(t, Config{Pipeline: pl, URL: "http://engine.local/hooks/in?x=1", Socket: sock, Timeout: 2 * time.Second})
	if err := h.Ready(time.Second); err != nil {
		t.Fatalf("Ready over the socket: %s", err)
	}
	const n = 50
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range n {
		wg.Go(func() {
			id := []byte("01J00000000000000000000" + strconv.Itoa(100+i))
			if err := h.Forward(id, []byte("a"), []byte(testEvent), time.Now()); err != nil {
				t.Errorf("Forward over the socket: %s", err)
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if got := e.receipts.Load(); got != n || failed.Load() != 0 {
		t.Fatalf("engine received %d events, %d failed; want %d, none", got, failed.Load(), n)
	}
	got := e.lastSeen()
	if got.method != "POST" || got.uri != "/hooks/in?x=1" || got.body != testEvent || got.loop != "a" {
		t.Fatalf("engine saw %+v; want POST /hooks/in?x=1 with the event", got)
	}
	if hv, _ := host.Load().(string); hv != "engine.local" {
		t.Fatalf("engine saw Host %q; want the URL's host engine.local", hv)
	}

	e.stop()
	h2 := openHTTP(t, Config{Pipeline: pl, URL: "http://engine.local/", Socket: sock, Timeout: time.Second, DialAttempts: 1})
	err := h2.Forward([]byte("id"), nil, []byte(testEvent), time.Now())
	if !errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), "cannot connect to flow engine: ") {
		t.Fatalf("Forward with no engine on the socket: %v; want cannot connect to flow engine", err)
	}
	if err := h2.Ready(time.Second); err == nil {
		t.Fatal("Ready with no engine on the socket: nil; want an error")
	}
}

// TestHTTPIdleConnClosed: a connection idle for MaxIdleConnDuration is
// closed by the sink, before an engine's own idle timeout could close it
// under a POST; the next event opens a new one.
func TestHTTPIdleConnClosed(t *testing.T) { transports(t, testHTTPIdleConnClosed) }

func testHTTPIdleConnClosed(t *testing.T, pl int) {
	e := startEngine(t, "127.0.0.1:0", answer(200))
	h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + e.addr + "/", MaxIdleConnDuration: 100 * time.Millisecond})
	if err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("engine still has %d connections from an idle sink; Stats = %+v", e.open.Load(), h.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := h.Stats(); st.Conns != 0 {
		t.Fatalf("Stats = %+v; want the idle connection gone", st)
	}
	if err := h.Forward([]byte("id2"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatalf("Forward after the idle close: %v", err)
	}
}

// TestHTTPMalformedAnswerQuotesNothing: fasthttp's parse errors quote the
// answer that failed to parse (the pipeline's bare Response up to 400
// bytes of it, the client's the HTTP version even in its secure mode). An
// engine that echoes the request (a debug endpoint, a misrouted port, a
// proxy's error page) or puts a secret in a malformed status line must
// not get the Authorization header, the URL's query or the event into the
// error the gateway logs.
func TestHTTPMalformedAnswerQuotesNothing(t *testing.T) {
	transports(t, testHTTPMalformedAnswerQuotesNothing)
}

func testHTTPMalformedAnswerQuotesNothing(t *testing.T, pl int) {
	for _, tc := range []struct {
		name   string
		answer func(request []byte) []byte
	}{
		{"echoed request", func(request []byte) []byte { return request }},
		{"secret as the version", func([]byte) []byte { return []byte("s3cret/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") }},
		{"secret in a header line", func([]byte) []byte { return []byte("HTTP/1.1 200 OK\r\nX-Token s3cret\r\n\r\n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveOnce(t, func(c net.Conn) {
				var raw bytes.Buffer
				req, err := http.ReadRequest(bufio.NewReader(io.TeeReader(c, &raw)))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = c.Write(tc.answer(raw.Bytes()))
				time.Sleep(time.Second)
			})
			h := openHTTP(t, Config{Pipeline: pl, URL: "http://hook:s3cret@" + addr + "/in?token=s3cret",
				Timeout: 2 * time.Second, DialAttempts: 1})
			err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now())
			if err == nil {
				t.Fatal("Forward = nil; want the malformed answer refused")
			}
			if err != errMalformed {
				t.Errorf("Forward = %.300v; want %q", err, errMalformed)
			}
			msg := err.Error()
			for _, secret := range []string{"aG9vazpzM2NyZXQ=", "s3cret", "Jasmine green"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error quotes %q: %.300s", secret, msg)
				}
			}
		})
	}
}

// selfSigned returns a certificate for localhost and its parsed form, for
// an engine that serves https.
func selfSigned(t *testing.T) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, cert
}

// slowHandshakeListener delays the first read of every accepted connection,
// so a TLS client's handshake (part of the sink's dial) takes that long.
type slowHandshakeListener struct {
	net.Listener
	delay time.Duration
}

func (l slowHandshakeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &slowFirstRead{Conn: c, delay: l.delay}, nil
}

type slowFirstRead struct {
	net.Conn
	delay time.Duration
	once  sync.Once
}

func (c *slowFirstRead) Read(b []byte) (int, error) {
	c.once.Do(func() { time.Sleep(c.delay) })
	return c.Conn.Read(b)
}

// TestHTTPSharedDialKeepsEachDeadline: Forwards that arrive while a
// connection is being dialed (TCP and TLS handshake) wait for that dial,
// each only until its own deadline, and the dial is not cut short by the
// deadline of the Forward that started it: one whose deadline is earlier
// returns by it, and one whose deadline is later is not failed with the
// opener's timeout (which would count against the engine).
func TestHTTPSharedDialKeepsEachDeadline(t *testing.T) {
	pair, cert := selfSigned(t)
	const timeout = 2 * time.Second
	for _, tc := range []struct {
		name       string
		handshake  time.Duration
		openerLeft time.Duration // time left to the Forward that dials
		left       time.Duration // time left to the one that joins it
		ok         bool
	}{
		{"joiner's deadline before the dial ends", time.Second, timeout, 150 * time.Millisecond, false},
		{"opener's deadline before the dial ends", 300 * time.Millisecond, 100 * time.Millisecond, timeout, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			transports(t, func(t *testing.T, pl int) {
				ln, err := net.Listen("tcp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				tlsLn := tls.NewListener(slowHandshakeListener{ln, tc.handshake}, &tls.Config{Certificates: []tls.Certificate{pair}})
				e := serveEngine(t, tlsLn, answer(200))
				_, port, _ := net.SplitHostPort(e.addr)
				h := openHTTP(t, Config{Pipeline: pl, URL: "https://localhost:" + port + "/", Timeout: timeout, DialAttempts: 1})
				h.tls.RootCAs = x509.NewCertPool()
				h.tls.RootCAs.AddCert(cert)
				go func() {
					_ = h.Forward([]byte("opener"), nil, []byte(testEvent), time.Now().Add(tc.openerLeft-timeout))
				}()
				time.Sleep(20 * time.Millisecond)
				called := time.Now()
				err = h.Forward([]byte("joiner"), nil, []byte(testEvent), called.Add(tc.left-timeout))
				d := time.Since(called)
				t.Logf("Forward with %s left: %v after %s", tc.left, err, d)
				switch {
				case tc.ok && err != nil:
					t.Errorf("Forward with %s left, engine handshakes in %s: %v; want accepted", tc.left, tc.handshake, err)
				case !tc.ok && (!errors.Is(err, ErrTimeout) || d > tc.left+350*time.Millisecond):
					t.Errorf("Forward with %s left, engine handshakes in %s: %v after %s; want a timeout by its deadline",
						tc.left, tc.handshake, err, d)
				}
			})
		})
	}
}

// TestHTTPDialPastDeadline: a dial whose deadline has passed is a timeout
// at once, not a dial with the whole Config.Timeout (0 is fasthttp's "no
// deadline" and still gets it).
func TestHTTPDialPastDeadline(t *testing.T) {
	e := startEngine(t, "127.0.0.1:0", answer(200))
	h := openHTTP(t, Config{URL: "http://" + e.addr + "/"})
	c, err := h.dial(h.client.Addr, -time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatal("dial with its deadline past connected")
	}
	if err := h.classify(err); !errors.Is(err, ErrTimeout) {
		t.Fatalf("dial with its deadline past: %v; want a timeout", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := e.maxOpen.Load(); n != 0 {
		t.Fatalf("engine saw %d connections; want none", n)
	}
}

// serveOnce listens on loopback until the test ends, hands the first
// connection to serve and closes it after, and returns the address: an
// engine that answers with raw bytes.
func serveOnce(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln := listenLoopback(t)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	return ln.Addr().String()
}

// listenLoopback listens on a free loopback port until the test ends.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestHTTPEventsShareNothing: the pooled request keeps what every event
// shares (method, URL, credentials) from one Forward to the next, and
// nothing of an event: each event's key, loop marker (absent when empty)
// and body are its own.
func TestHTTPEventsShareNothing(t *testing.T) { transports(t, testHTTPEventsShareNothing) }

func testHTTPEventsShareNothing(t *testing.T, pl int) {
	e := startEngine(t, "127.0.0.1:0", answer(200))
	h := openHTTP(t, Config{Pipeline: pl, URL: "http://hook:s3cret@" + e.addr + "/in?x=1", Timeout: 2 * time.Second})
	for _, ev := range []struct{ id, loop, body string }{
		{"01J000000000000000000000AA", "a,b", testEvent},
		{"01J000000000000000000000AB", "", `{"short":1}`},
		{"01J000000000000000000000AC", "c", testEvent + " "},
		{"01J000000000000000000000AD", "", testEvent},
	} {
		if err := h.Forward([]byte(ev.id), []byte(ev.loop), []byte(ev.body), time.Now()); err != nil {
			t.Fatalf("%s: %v", ev.id, err)
		}
		got := e.lastSeen()
		if got.idempotencyKey != ev.id || got.hasLoop != (ev.loop != "") || got.loop != ev.loop || got.body != ev.body ||
			got.method != "POST" || got.uri != "/in?x=1" || got.authorization != "Basic aG9vazpzM2NyZXQ=" || got.contentType != "application/json" {
			t.Fatalf("engine saw %+v; want key %s, loop %q, body %q", got, ev.id, ev.loop, ev.body)
		}
	}
}
