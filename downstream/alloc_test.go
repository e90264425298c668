//go:build !race

package downstream

import (
	"path/filepath"
	"testing"
	"time"
)

func TestHTTPForwardAllocs(t *testing.T) { transports(t, testHTTPForwardAllocs) }

func testHTTPForwardAllocs(t *testing.T, pl int) {
	e := startEngine(t, "127.0.0.1:0", answer(200))
	e.quiet.Store(true)
	h := openHTTP(t, Config{Pipeline: pl, URL: "http://" + e.addr + "/hooks/in?x=1"})
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
