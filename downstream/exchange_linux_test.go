package downstream

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestHTTPOneReadPerAnswer: one event at a time, the goroutine that
// forwards makes one read system call per event, the one that takes the
// answer, even when the engine takes a while to answer. A read made after
// the write would first fail with EAGAIN and then wait (see
// engineConn.sendWait). Counted on the goroutine's own thread, in the
// kernel's I/O accounting of that thread (syscr counts every read call,
// failed ones included).
func TestHTTPOneReadPerAnswer(t *testing.T) {
	slow := func(ctx *fasthttp.RequestCtx) {
		time.Sleep(200 * time.Microsecond)
		ctx.SetStatusCode(fasthttp.StatusOK)
	}
	for _, tc := range []struct {
		name string
		cfg  func() Config
	}{
		{"tcp", func() Config {
			e := startEngine(t, "127.0.0.1:0", slow)
			e.quiet.Store(true)
			return Config{URL: "http://" + e.addr + "/in"}
		}},
		{"unix", func() Config {
			e, sock := startUnixEngine(t, slow)
			e.quiet.Store(true)
			return Config{URL: "http://engine/in", Socket: sock}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := openHTTP(t, tc.cfg())
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			forward := func() {
				if err := h.Forward([]byte("id"), nil, []byte(testEvent), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			forward() // dials
			const n = 200
			before := threadReads(t)
			for range n {
				forward()
			}
			reads := threadReads(t) - before
			t.Logf("%d read calls for %d events", reads, n)
			if reads < n || reads > n+n/10 {
				t.Fatalf("%d read calls on the forwarding thread for %d events; want one per event", reads, n)
			}
		})
	}
}

// threadReads is the calling thread's count of read system calls.
func threadReads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/io")
	if err != nil {
		t.Skipf("no per-thread I/O accounting: %s", err)
	}
	_, v, ok := bytes.Cut(b, []byte("syscr: "))
	if !ok {
		t.Skip("no syscr in /proc/thread-self/io")
	}
	v, _, _ = bytes.Cut(v, []byte("\n"))
	n, err := strconv.Atoi(string(v))
	if err != nil {
		t.Fatalf("syscr: %s", err)
	}
	return n
}
