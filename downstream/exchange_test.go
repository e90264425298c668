package downstream

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	answer200 = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	answer503 = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
)

// TestHTTPAnswerNotItsOwn: an engine (or a proxy in front of it) that puts
// bytes on a kept-alive connection after an answer must not have them
// taken as the next event's answer. Event a's answer is followed by a
// stray 200; event b, which the engine refuses with 503, must fail, not
// be answered code 0 and lost. The connection the engine closed while
// idle is not written on: b goes out on a new one and is accepted.
func TestHTTPAnswerNotItsOwn(t *testing.T) { transports(t, testHTTPAnswerNotItsOwn) }

func testHTTPAnswerNotItsOwn(t *testing.T, pl int) {
	for _, tc := range []struct {
		name string
		// afterA answers event a on c; it returns false to stop reading c.
		afterA func(c net.Conn) bool
		// b is the engine's answer to event b.
		b     string
		wantB bool // b accepted
		// One at a time: connections dropped for bytes nobody asked
		// for, and found closed while idle.
		stray, closed uint64
	}{
		{"second answer while idle", func(c net.Conn) bool {
			_, _ = io.WriteString(c, answer200)
			time.Sleep(20 * time.Millisecond)
			_, _ = io.WriteString(c, answer200)
			return true
		}, answer503, false, 1, 0},
		{"second answer with the first", func(c net.Conn) bool {
			_, _ = io.WriteString(c, answer200+answer200)
			return true
		}, answer503, false, 1, 0},
		{"101, then another protocol", func(c net.Conn) bool {
			_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
			// The new protocol answers whatever comes next with
			// bytes that parse as a 200.
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					return false
				}
				_, _ = io.WriteString(c, answer200)
			}
		}, answer503, false, 0, 0},
		{"closed while idle", func(c net.Conn) bool {
			_, _ = io.WriteString(c, answer200)
			time.Sleep(20 * time.Millisecond)
			return false
		}, answer200, true, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRawEngine(t, listenLoopback(t), func(c net.Conn, key string) bool {
				if key == "a" {
					return tc.afterA(c)
				}
				_, _ = io.WriteString(c, tc.b)
				return true
			})
			h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + e.addr + "/", MaxConns: 1,
				Timeout: 2 * time.Second})
			err := h.Forward([]byte("a"), nil, []byte(testEvent), time.Now())
			if wantA := tc.name[:3] != "101"; (err == nil) != wantA {
				t.Fatalf("a: %v; want accepted %v", err, wantA)
			}
			// Whatever follows a's answer lands while the connection idles.
			time.Sleep(100 * time.Millisecond)
			err = h.Forward([]byte("b"), nil, []byte(testEvent), time.Now())
			switch {
			case tc.wantB && err != nil:
				t.Fatalf("b: %v; want it accepted on a new connection", err)
			case !tc.wantB && err == nil:
				t.Fatal("b accepted by bytes that were not its answer; the engine refused it")
			case !tc.wantB && !errors.Is(err, ErrRejected):
				t.Fatalf("b: %v; want the engine's 503", err)
			}
			if n := e.conns.Load(); n != 2 {
				t.Errorf("engine saw %d connections; want b on a second one", n)
			}
			if st := h.Stats(); pl == 1 && (st.Stray != tc.stray || st.IdleClosed != tc.closed) {
				t.Errorf("Stats() Stray %d, IdleClosed %d; want %d, %d", st.Stray, st.IdleClosed, tc.stray, tc.closed)
			}
		})
	}
}

// TestHTTPStaleOverTLS: the look at an idle connection's socket goes
// under TLS, and a fresh connection is not taken for a stale one for the
// records the TLS layer sends after its handshake (TLS 1.3 session
// tickets).
func TestHTTPStaleOverTLS(t *testing.T) {
	ln := listenLoopback(t)
	pair, _ := selfSigned(t)
	e := newRawEngine(t, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}}), func(c net.Conn, key string) bool {
		if key == "a" {
			// The answer, and a stray one after it.
			_, _ = io.WriteString(c, answer200)
			time.Sleep(20 * time.Millisecond)
			_, _ = io.WriteString(c, answer200)
			return true
		}
		_, _ = io.WriteString(c, answer503)
		return true
	})
	h := openHTTPS(t, ln.Addr().String())
	for i := range 3 {
		if err := h.Forward([]byte("ok"), nil, []byte(testEvent), time.Now()); !errors.Is(err, ErrRejected) {
			t.Fatalf("event %d: %v; want the engine's 503", i, err)
		}
	}
	if n, st := e.conns.Load(), h.Stats(); n != 1 || st.Stray != 0 || st.IdleClosed != 0 {
		t.Fatalf("%d connections, Stats %+v for three events on a clean one; want one connection, none stale", n, st)
	}
	if err := h.Forward([]byte("a"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatalf("a: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := h.Forward([]byte("b"), nil, []byte(testEvent), time.Now()); !errors.Is(err, ErrRejected) {
		t.Fatalf("b: %v; want the engine's 503, not the stray answer", err)
	}
	if st := h.Stats(); st.Stray != 1 {
		t.Fatalf("Stats %+v; want one stale connection", st)
	}
}

// TestHTTPWriteRefusedIsSentAgain: a write the kernel refused before
// taking a byte of the event (here, the socket shut for writing while it
// idled) cannot have reached the engine, so the event goes out again on a
// new connection instead of failing.
func TestHTTPWriteRefusedIsSentAgain(t *testing.T) {
	var got sync.Map // Idempotency-Key → *atomic.Int64
	e := newRawEngine(t, listenLoopback(t), func(c net.Conn, key string) bool {
		n, _ := got.LoadOrStore(key, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		_, _ = io.WriteString(c, answer200)
		return true
	})
	h := openHTTP(t, Config{URL: "http://" + e.addr + "/", MaxConns: 1, Timeout: 2 * time.Second})
	conns := dialed(h)
	if err := h.Forward([]byte("a"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := (<-conns).Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := h.Forward([]byte("b"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatalf("b, refused by the kernel before any byte left: %v; want it sent again and accepted", err)
	}
	if n, ok := got.Load("b"); !ok || n.(*atomic.Int64).Load() != 1 {
		t.Fatalf("engine got b %v times; want once", n)
	}
	if st := h.Stats(); st.DialRetries != 1 {
		t.Fatalf("Stats %+v; want one retry", st)
	}
}

// rawEngine is a hand-written engine on loopback, for answers no real
// server gives.
type rawEngine struct {
	addr  string
	conns atomic.Int64 // accepted
}

// newRawEngine serves ln until the test ends: answer gets each request's
// Idempotency-Key, its body read, and writes what it likes on c; it
// returns false to end the connection. A connection the sink stops
// sending on is held open, as a slow engine would.
func newRawEngine(t *testing.T, ln net.Listener, answer func(c net.Conn, key string) bool) *rawEngine {
	e := &rawEngine{addr: ln.Addr().String()}
	hold := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); close(hold); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						<-hold
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if !answer(c, req.Header.Get("Idempotency-Key")) {
						return
					}
				}
			}()
		}
	}()
	return e
}

// TestHTTPStrayRecordBufferedByTLS: a stray answer that reaches the sink
// in the same segment as the answer before it is taken off the socket by
// the TLS layer along with that answer, where no look at the socket sees
// it. The look asks the TLS layer too: b, refused with 503, is not
// answered by the stray 200.
func TestHTTPStrayRecordBufferedByTLS(t *testing.T) {
	pair, _ := selfSigned(t)
	ln := batchListener{Listener: listenLoopback(t), cfg: &tls.Config{Certificates: []tls.Certificate{pair}}}
	e := newRawEngine(t, ln, func(c net.Conn, key string) bool {
		if key != "a" {
			_, _ = io.WriteString(c, answer503)
			return true
		}
		// The answer and a stray one, two records in one write.
		bc := c.(*tls.Conn).NetConn().(*batchConn)
		bc.hold()
		_, _ = io.WriteString(c, answer200)
		_, _ = io.WriteString(c, answer200)
		bc.flush()
		return true
	})
	h := openHTTPS(t, e.addr)
	if err := h.Forward([]byte("a"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatalf("a: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := h.Forward([]byte("b"), nil, []byte(testEvent), time.Now()); !errors.Is(err, ErrRejected) {
		t.Fatalf("b: %v; want the engine's 503, not the stray answer", err)
	}
	if st := h.Stats(); st.Stray != 1 || e.conns.Load() != 2 {
		t.Fatalf("Stats %+v, %d connections; want one stray answer and b on a second connection", st, e.conns.Load())
	}
}

// batchListener accepts TLS connections whose writes a test can gather
// into one write to the socket.
type batchListener struct {
	net.Listener
	cfg *tls.Config
}

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(&batchConn{Conn: c}, l.cfg), nil
}

// batchConn holds what is written between hold and flush and writes it
// in one write.
type batchConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool
	buf     []byte
}

func (b *batchConn) hold() {
	b.mu.Lock()
	b.holding = true
	b.mu.Unlock()
}

func (b *batchConn) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holding = false
	_, _ = b.Conn.Write(b.buf)
	b.buf = nil
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.holding {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	return b.Conn.Write(p)
}

// TestHTTPTLSClosedWhileIdle: an https engine that closes an idle
// connection sends a close_notify first, bytes on the socket that are no
// stray answer: the connection is counted as closed while idle, not as
// stray, and the next event goes out on a new one.
func TestHTTPTLSClosedWhileIdle(t *testing.T) {
	pair, _ := selfSigned(t)
	ln := listenLoopback(t)
	e := newRawEngine(t, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}}), func(c net.Conn, key string) bool {
		_, _ = io.WriteString(c, answer200)
		if key != "a" {
			return true
		}
		// Closed once the sink has read a's answer.
		time.Sleep(20 * time.Millisecond)
		return false
	})
	h := openHTTPS(t, e.addr)
	if err := h.Forward([]byte("a"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatalf("a: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := h.Forward([]byte("b"), nil, []byte(testEvent), time.Now()); err != nil {
		t.Fatalf("b: %v; want it accepted on a new connection", err)
	}
	if st := h.Stats(); st.IdleClosed != 1 || st.Stray != 0 || e.conns.Load() != 2 {
		t.Fatalf("Stats %+v, %d connections; want one closed while idle, no stray answer, b on a second connection", st, e.conns.Load())
	}
}

// TestTLSSocketFrame: beyond is what a read brought past the end of the
// first record it completes, whatever the reads' split of the records.
func TestTLSSocketFrame(t *testing.T) {
	rec := func(n int) []byte { return append([]byte{23, 3, 3, byte(n >> 8), byte(n)}, make([]byte, n)...) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	two := cat(rec(30), rec(300))
	for _, tc := range []struct {
		name   string
		stream []byte
		reads  []int // lengths of the reads, in order
		beyond []int // beyond after each
	}{
		{"one record in one read", rec(40), []int{45}, []int{0}},
		{"two records in one read", two, []int{len(two)}, []int{305}},
		{"header split", rec(40), []int{3, 42}, []int{0, 0}},
		{"body split", rec(40), []int{20, 25}, []int{0, 0}},
		{"the next header's start with the end of one", two, []int{35 + 2, len(two) - 37}, []int{2, 0}},
		{"a header, then the rest and two more", cat(rec(10), rec(10), rec(10)), []int{5, 40}, []int{0, 30}},
		{"empty record", cat(rec(0), rec(3)), []int{13}, []int{8}},
		{"a big record", rec(16384), []int{4096, 4096, 4096, 4096, 5}, []int{0, 0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s tlsSocket
			b := tc.stream
			for i, n := range tc.reads {
				s.frame(b[:n])
				b = b[n:]
				if s.beyond != tc.beyond[i] {
					t.Fatalf("read %d: beyond %d; want %d", i, s.beyond, tc.beyond[i])
				}
			}
		})
	}
}

// FuzzTLSSocketFrame checks frame against record boundaries found by
// parsing the whole stream at once, over any bytes and any split.
func FuzzTLSSocketFrame(f *testing.F) {
	f.Add([]byte{23, 3, 3, 0, 2, 1, 2, 23, 3, 3, 0, 0}, []byte{3, 9})
	f.Add([]byte{22, 3, 1, 1, 0}, []byte{1, 1, 1})
	f.Fuzz(func(t *testing.T, stream, splits []byte) {
		// Record ends, from the whole stream.
		var ends []int
		for at := 0; at+5 <= len(stream); {
			at += 5 + (int(stream[at+3])<<8 | int(stream[at+4]))
			if at <= len(stream) {
				ends = append(ends, at)
			}
		}
		var s tlsSocket
		pos := 0
		for i := 0; pos < len(stream); i++ {
			n := len(stream) - pos
			if i < len(splits) && int(splits[i]) < n {
				n = int(splits[i]) + 1
			}
			s.frame(stream[pos : pos+n])
			want := 0
			for _, e := range ends {
				if e > pos && e <= pos+n {
					want = pos + n - e
					break
				}
			}
			if s.beyond != want {
				t.Fatalf("read [%d,%d): beyond %d; want %d (record ends %v)", pos, pos+n, s.beyond, want, ends)
			}
			pos += n
		}
	})
}

// dialed hooks h's one-at-a-time dials: each connection made from now on
// is sent on the channel returned (up to 8 unread).
func dialed(h *HTTP) <-chan *engineConn {
	conns := make(chan *engineConn, 8)
	dial := h.client.DialTimeout
	h.client.DialTimeout = func(addr string, timeout time.Duration) (net.Conn, error) {
		c, err := dial(addr, timeout)
		if err == nil {
			conns <- c.(*engineConn)
		}
		return c, err
	}
	return conns
}

// openHTTPS opens an https sink, one connection at a time, to the engine
// at addr, trusting its self-signed certificate.
func openHTTPS(t *testing.T, addr string) *HTTP {
	h := openHTTP(t, Config{URL: "https://" + addr + "/", MaxConns: 1, Timeout: 2 * time.Second})
	h.tls.InsecureSkipVerify = true
	return h
}
