package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestClockTick(t *testing.T) {
	for _, tc := range []struct{ timeout, want time.Duration }{
		{100 * time.Millisecond, 6250 * time.Microsecond},
		{time.Second, 62500 * time.Microsecond},
		{10 * time.Second, 100 * time.Millisecond},
		{time.Hour, 100 * time.Millisecond},
		{8 * time.Millisecond, time.Millisecond},
	} {
		if got := clockTick(tc.timeout); got != tc.want {
			t.Errorf("clockTick(%s) = %s, want %s", tc.timeout, got, tc.want)
		}
		// The guarantee of writeDeadlines: an eighth of age plus a tick
		// of lag leave three quarters, from the shortest timeout allowed.
		if tc.timeout >= minServerTimeout && tc.timeout-tc.timeout/8-clockTick(tc.timeout) < tc.timeout*3/4 {
			t.Errorf("timeout %s: a write could get less than three quarters of it", tc.timeout)
		}
	}
}

// TestDeadlineConnRefresh steps a stopped clock through a connection's
// life and checks which deadlines it sets: the first request's on the
// first read, none while a request arrives in one read, the idle one
// moved only once an eighth old, a request's own once it needs a second
// read, the write deadline moved once an eighth old, and none in a
// direction a caller took over.
func TestDeadlineConnRefresh(t *testing.T) {
	const read, idle, write = int64(800 * time.Millisecond), int64(1600 * time.Millisecond), int64(400 * time.Millisecond)
	server, client := tcpPair(t)
	clock := &coarseClock{start: time.Now(), done: make(chan struct{})}
	c := &deadlineConn{Conn: server, l: &connDeadlines{read: read, idle: idle, write: write, clock: clock}}
	buf := make([]byte, 64)
	type want struct{ read, write int64 }
	steps := []struct {
		name  string
		now   int64
		write bool // a write, else a read of what the client sent
		want  want
	}{
		{"first read", 1, false, want{1 + read, 0}},
		{"rest of the first request", 5, false, want{1 + read, 0}},
		{"answer", 10, true, want{1 + read, 10 + write}},
		{"idle wait", 20, false, want{20 + idle, 10 + write}},
		{"answer, young deadline", 30, true, want{20 + idle, 10 + write}},
		{"idle wait, young deadline", 40, false, want{20 + idle, 10 + write}},
		{"second read of a request", 50, false, want{40 + read, 10 + write}},
		{"answer, deadline an eighth old", 11 + write/8, true, want{40 + read, 11 + write/8 + write}},
		{"idle wait after a request's deadline", 60 + write/8, false, want{60 + write/8 + idle, 11 + write/8 + write}},
		{"answer, young deadline again", 62 + write/8, true, want{60 + write/8 + idle, 11 + write/8 + write}},
		{"idle wait, deadline an eighth old", 61 + write/8 + idle/8, false, want{61 + write/8 + idle/8 + idle, 11 + write/8 + write}},
	}
	for _, s := range steps {
		clock.ns.Store(s.now)
		if s.write {
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if _, err := io.ReadFull(client, buf[:1]); err != nil {
				t.Fatal(err)
			}
		} else {
			if _, err := client.Write([]byte("y")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(buf); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		if got := (want{c.readDeadline, c.writeDeadline}); got != s.want {
			t.Fatalf("%s at %d: deadlines %+v, want %+v", s.name, s.now, got, s.want)
		}
	}
	if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	clock.ns.Store(10 * idle)
	client.Write([]byte("z"))
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err != nil || c.readDeadline != -1 || c.writeDeadline != -1 {
		t.Fatalf("after SetDeadline: write %v, deadlines %d, %d; want the caller's left alone", err, c.readDeadline, c.writeDeadline)
	}
}

func tcpPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// serveTimeouts serves the test gateway with the given server timeouts
// on a loopback listener whose accepted connections have a small send
// buffer, so that a client that stops reading blocks the server's writes
// after a few answers.
func serveTimeouts(t *testing.T, read, idle, write time.Duration) string {
	t.Helper()
	srv := timeoutServer(t, read, idle, write)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, srv, func() error { return srv.Serve(smallSendBuffers{ln}) })
	return ln.Addr().String()
}

// timeoutServer is the test gateway's server with the given timeouts.
func timeoutServer(t *testing.T, read, idle, write time.Duration) *Server {
	t.Helper()
	g, cfg, _ := fileGateway(t, handlerConfig)
	cfg.Server.ReadTimeout, cfg.Server.IdleTimeout, cfg.Server.WriteTimeout = Duration(read), Duration(idle), Duration(write)
	return g.NewServer(cfg)
}

// runServer runs serve until the test ends, then shuts srv down and
// waits for serve to return.
func runServer(t *testing.T, srv *Server, serve func() error) {
	done := make(chan error, 1)
	go func() { done <- serve() }()
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
}

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		err = c.(*net.TCPConn).SetWriteBuffer(4096)
	}
	return c, err
}

// unknownRequest is a pipelined request answered 404 without a body.
const unknownRequest = "POST /webhook/flow/no-such-token-0123456789abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n"

// TestWriteTimeoutSlowReader pipelines requests on a connection that
// never reads its answers: once the server's writes block for
// write_timeout, it closes the connection instead of holding it for ever.
func TestWriteTimeoutSlowReader(t *testing.T) {
	const timeout = 200 * time.Millisecond
	addr := serveTimeouts(t, time.Minute, time.Minute, timeout)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	const n = 20000 // about 2.6 MB of answers, far beyond the buffers
	go func() {
		c.Write([]byte(strings.Repeat(unknownRequest, n))) // fails once the server closes
	}()
	time.Sleep(4 * timeout)
	// Whatever the server had written before giving up is still there to
	// read, then the connection ends. Without the timeout every answer
	// would come, and then nothing until the read deadline.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	answers := 0
	var resp fasthttp.Response
	for {
		if err = resp.Read(br); err != nil {
			break
		}
		answers++
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || answers == n {
		t.Fatalf("the connection stayed open after %d of %d answers (%v): no write timeout", answers, n, err)
	}
	t.Logf("closed after %d of %d answers: %v", answers, n, err)
}

// TestDeadlinesMove sends requests on one connection for several times
// the timeouts, each an answer and a short idle wait: each is answered,
// so the deadlines set for the first were moved forward, not left to
// expire.
func TestDeadlinesMove(t *testing.T) {
	const timeout = 100 * time.Millisecond
	addr := serveTimeouts(t, timeout, timeout, timeout)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var resp fasthttp.Response
	start := time.Now()
	for i := 0; time.Since(start) < 6*timeout; i++ {
		if _, err := fmt.Fprint(c, unknownRequest); err != nil {
			t.Fatalf("request %d after %s: %v", i, time.Since(start), err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := resp.Read(br); err != nil {
			t.Fatalf("answer %d after %s: %v", i, time.Since(start), err)
		}
		if resp.StatusCode() != fasthttp.StatusNotFound {
			t.Fatalf("answer %d: HTTP %d", i, resp.StatusCode())
		}
		time.Sleep(timeout / 10)
	}
}

// BenchmarkDeadlines is what each request pays for its deadlines on a
// TCP connection: fasthttp sets two read deadlines and a write deadline
// around every request, a deadlineConn checks where it is and their age.
func BenchmarkDeadlines(b *testing.B) {
	const timeout = 10 * time.Second
	b.Run("fasthttp-per-request", func(b *testing.B) {
		c, _ := tcpPair(b)
		for b.Loop() {
			c.SetReadDeadline(time.Now().Add(timeout))
			c.SetReadDeadline(time.Now().Add(timeout))
			if err := c.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("per-connection", func(b *testing.B) {
		server, _ := tcpPair(b)
		clock := newCoarseClock(clockTick(timeout))
		defer clock.stop()
		c := &deadlineConn{Conn: server, l: &connDeadlines{read: int64(timeout), idle: int64(timeout), write: int64(timeout), clock: clock}}
		for b.Loop() {
			// An idle wait, a request in one read, an answer.
			c.state = connIdle
			c.keepReadDeadline()
			c.state = connRequest
			if err := c.keepWriteDeadline(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// expectClosed checks that the server ends the
// connection between min and max after start, reading (and discarding)
// whatever it answers before; it returns when it did.
func expectClosed(t *testing.T, c net.Conn, start time.Time, min, max time.Duration) {
	t.Helper()
	c.SetReadDeadline(start.Add(max))
	_, err := io.Copy(io.Discard, c)
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open after %s", took)
	}
	if took < min {
		t.Fatalf("the connection was closed after %s, before %s", took, min)
	}
	t.Logf("closed after %s (%v)", took, err)
}

// TestReadTimeouts holds connections the ways a slow sender would: each
// is closed after read_timeout (idle_timeout is far longer), or after
// idle_timeout for a kept-alive connection that sends nothing more.
func TestReadTimeouts(t *testing.T) {
	const read, idle = 300 * time.Millisecond, 5 * time.Second
	addr := serveTimeouts(t, read, idle, time.Minute)
	const head = "POST /webhook/flow/" + hTokAnon + " HTTP/1.1\r\nHost: gw\r\nContent-Length: 200\r\n\r\n"
	trickle := func(c net.Conn, b string) {
		for i := range len(b) {
			if _, err := c.Write([]byte{b[i]}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	tests := []struct {
		name string
		send func(c net.Conn)
	}{
		{"silent new connection", func(net.Conn) {}},
		{"headers trickled", func(c net.Conn) { trickle(c, head) }},
		{"body trickled", func(c net.Conn) {
			c.Write([]byte(head))
			trickle(c, `{"a":"`+strings.Repeat("x", 192)+`"}`)
		}},
		{"second request trickled", func(c net.Conn) { trickle(c, head) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if strings.HasPrefix(tc.name, "second") {
				// A first request answered: the trickle comes after an
				// idle wait, under the request's own deadline.
				fmt.Fprint(c, unknownRequest)
				var resp fasthttp.Response
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if err := resp.Read(bufio.NewReader(c)); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			go tc.send(c)
			expectClosed(t, c, start, read*3/4, 3*time.Second)
		})
	}
}

// TestIdleTimeout leaves a kept-alive connection idle after an answer:
// it is closed after idle_timeout, not read_timeout.
func TestIdleTimeout(t *testing.T) {
	const read, idle = 200 * time.Millisecond, 600 * time.Millisecond
	addr := serveTimeouts(t, read, idle, time.Minute)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprint(c, unknownRequest); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c, time.Now(), idle*3/4, 3*time.Second)
}

// TestExpectContinue sends a body only after the interim 100 Continue,
// as curl does for large bodies: the interim answer is a write in the
// middle of a request, and the body that follows must still be read and
// the request answered.
func TestExpectContinue(t *testing.T) {
	addr := serveTimeouts(t, time.Second, time.Second, time.Second)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"product":"tea"}`
	fmt.Fprintf(c, "POST /webhook/flow/%s HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", hTokAnon, len(body))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("interim answer %q, %v; want 100 Continue", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the blank line
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	fmt.Fprint(c, body)
	var resp fasthttp.Response
	if err := resp.Read(br); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != fasthttp.StatusOK || !strings.Contains(string(resp.Body()), `"code":0`) {
		t.Fatalf("answer %d %s, want 200 code 0", resp.StatusCode(), resp.Body())
	}
}

// TestExpectContinueKeepsReadTimeout: the interim 100 Continue is not the
// request's answer, so its body must come within read_timeout like the
// rest of it, not within idle_timeout and then read_timeout again.
func TestExpectContinueKeepsReadTimeout(t *testing.T) {
	const read, idle = 300 * time.Millisecond, 5 * time.Second
	addr := serveTimeouts(t, read, idle, time.Minute)
	c := dialLoopback(t, addr)
	start := time.Now()
	fmt.Fprintf(c, "POST /webhook/flow/%s HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 200\r\n\r\n", hTokAnon)
	// 100 Continue arrives; the body never does.
	expectClosed(t, c, start, read*3/4, 2*time.Second)
}

// TestListenAndServeKeepsTimeouts: the Server's other entry point serves
// with the connections' deadlines too, not without any.
func TestListenAndServeKeepsTimeouts(t *testing.T) {
	srv := timeoutServer(t, 200*time.Millisecond, time.Minute, time.Minute)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	runServer(t, srv, func() error { return srv.ListenAndServe(addr) })
	var c net.Conn
	for i := 0; ; i++ {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if i == 100 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer c.Close()
	expectClosed(t, c, time.Now(), 150*time.Millisecond, 3*time.Second)
}
