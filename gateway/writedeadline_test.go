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
		if tc.timeout >= minWriteTimeout && tc.timeout-tc.timeout/8-clockTick(tc.timeout) < tc.timeout*3/4 {
			t.Errorf("timeout %s: a write could get less than three quarters of it", tc.timeout)
		}
	}
}

// TestDeadlineConnRefresh steps a stopped clock and checks when a
// connection moves its write deadline: on the first write, then only once
// the deadline is an eighth of the timeout old, never after a caller set
// one of its own.
func TestDeadlineConnRefresh(t *testing.T) {
	const timeout = int64(800 * time.Millisecond)
	server, client := tcpPair(t)
	go io.Copy(io.Discard, client)
	clock := &coarseClock{start: time.Now(), done: make(chan struct{})}
	c := &deadlineConn{Conn: server, timeout: timeout, clock: clock}
	steps := []struct {
		now          int64 // clock time of the write
		wantDeadline int64
	}{
		{1, 1 + timeout},                         // first write sets it
		{timeout / 16, 1 + timeout},              // young: kept
		{timeout / 8, 1 + timeout},               // an eighth old less 1ns: kept
		{timeout/8 + 2, timeout/8 + 2 + timeout}, // older: moved
		{timeout / 4, timeout/8 + 2 + timeout},
	}
	for i, s := range steps {
		clock.ns.Store(s.now)
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if c.deadline != s.wantDeadline {
			t.Fatalf("step %d at %d: deadline %d, want %d", i, s.now, c.deadline, s.wantDeadline)
		}
	}
	if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	clock.ns.Store(10 * timeout)
	if _, err := c.Write([]byte("x")); err != nil || c.deadline != -1 {
		t.Fatalf("after SetDeadline: write %v, deadline %d; want the caller's deadline left alone", err, c.deadline)
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

// serveWriteTimeout serves the test gateway with timeout as
// server.write_timeout on a loopback listener whose accepted connections
// have a small send buffer, so that a client that stops reading blocks the
// server's writes after a few answers.
func serveWriteTimeout(t *testing.T, timeout time.Duration) string {
	t.Helper()
	g, _, _ := testGateway(t)
	cfg, err := Parse([]byte(handlerConfig), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.WriteTimeout = Duration(timeout)
	srv := g.NewServer(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(smallSendBuffers{ln}) }()
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
	return ln.Addr().String()
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
	addr := serveWriteTimeout(t, timeout)
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

// TestWriteDeadlineMoves sends requests on one connection for several
// times write_timeout: each is answered, so the deadline set by the
// first answer was moved forward, not left to expire.
func TestWriteDeadlineMoves(t *testing.T) {
	const timeout = 100 * time.Millisecond
	addr := serveWriteTimeout(t, timeout)
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

// BenchmarkWriteDeadline is what each answer pays for its write
// deadline on a TCP connection: fasthttp's WriteTimeout sets it before
// every answer, a deadlineConn only checks its age.
func BenchmarkWriteDeadline(b *testing.B) {
	const timeout = 10 * time.Second
	b.Run("set-per-answer", func(b *testing.B) {
		c, _ := tcpPair(b)
		for b.Loop() {
			if err := c.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("per-connection", func(b *testing.B) {
		server, _ := tcpPair(b)
		clock := newCoarseClock(clockTick(timeout))
		defer clock.stop()
		c := &deadlineConn{Conn: server, timeout: int64(timeout), clock: clock}
		for b.Loop() {
			if err := c.keepDeadline(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
