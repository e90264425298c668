//go:build !race

package downstream

import (
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"
)

func TestHTTPForwardAllocs(t *testing.T) { transports(t, testHTTPForwardAllocs) }

// testHTTPForwardAllocs runs over TCP and over a Unix socket: one event
// at a time, the two read their answers through the same wait on the raw
// socket (engineConn.sendWait).
func testHTTPForwardAllocs(t *testing.T, pl int) {
	t.Run("tcp", func(t *testing.T) {
		e := startEngine(t, "127.0.0.1:0", answer(200))
		e.quiet.Store(true)
		forwardAllocs(t, openHTTP(t, Config{Pipeline: pl, URL: "http://" + e.addr + "/hooks/in?x=1"}))
	})
	t.Run("unix", func(t *testing.T) {
		e, sock := startUnixEngine(t, answer(200))
		e.quiet.Store(true)
		forwardAllocs(t, openHTTP(t, Config{Pipeline: pl, URL: "http://engine/hooks/in?x=1", Socket: sock}))
	})
}

// forwardAllocs asserts that Forward on h makes no allocation, once warm.
func forwardAllocs(t *testing.T, h *HTTP) {
	id, loop, event := []byte("01J0000000000000000000000A"), []byte("new_product"), []byte(testEvent)
	forward := func() {
		if err := h.Forward(id, loop, event, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		forward()
	}
	// AllocsPerRun counts every allocation in the process, the engine's
	// included, so this bounds client and server together.
	if n := testing.AllocsPerRun(500, forward); n != 0 {
		t.Fatalf("HTTP Forward allocates %.2f times per call; want 0", n)
	}
}

func TestFileForwardAllocs(t *testing.T) {
	f := openFile(t, filepath.Join(t.TempDir(), "events.jsonl"))
	event := []byte(testEvent)
	forward := func() {
		if err := f.Forward(nil, nil, event, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		forward()
	}
	// Includes the flusher goroutine's work for each event's batch.
	n := testing.AllocsPerRun(200, forward)
	t.Logf("File Forward: %.3f allocations per call, amortised", n)
	if n >= 1 {
		t.Fatalf("File Forward allocates %.2f times per call; want < 1", n)
	}
}

// TestHTTPSLookAllocs: the look at an idle https connection allocates
// nothing when the TLS layer can hold nothing unread (the probe of
// crypto/tls's buffer, which allocates inside it, is then skipped).
func TestHTTPSLookAllocs(t *testing.T) {
	pair, _ := selfSigned(t)
	ln := listenLoopback(t)
	e := serveEngine(t, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}}), answer(200))
	e.quiet.Store(true)
	h := openHTTPS(t, e.addr)
	conns := dialed(h)
	for range 3 {
		if err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	ec := <-conns
	var st sockState
	if n := testing.AllocsPerRun(100, func() { st = ec.look() }); n != 0 || st != sockEmpty {
		t.Fatalf("look at an idle https connection: %v, %.2f allocations; want sockEmpty, 0", st, n)
	}
}
