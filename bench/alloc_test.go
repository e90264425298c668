//go:build !race

package bench

import (
	"runtime"
	"testing"
	"time"
)

// TestGeneratorZeroAlloc: once its connection is up and its buffers have
// grown, a worker sends, reads and records a request without allocating
// (the loopback server's share is in the count too, and is zero as well).
func TestGeneratorZeroAlloc(t *testing.T) {
	addr := serve(t, gatewayLike)
	body, _ := Body(1024)
	target := Target{Addr: addr, Requests: []Request{
		{URI: []byte("/webhook/flow/a"), Body: body, Header: []Header{{[]byte("Authorization"), []byte("Bearer x")}}},
		{URI: []byte("/webhook/flow/unknown"), Body: body, UniqueClientToken: true},
	}}
	l := Load{Conns: 1, Duration: time.Second, Timeout: 5 * time.Second}
	w := newWorker(&target, &l, 0, "test")
	step := func() {
		w.prepare()
		err := w.do()
		w.record(time.Microsecond, err)
	}
	for range 200 {
		step()
	}
	if n := testing.AllocsPerRun(2000, step); n != 0 {
		t.Fatalf("%.2f allocations per request, want 0", n)
	}
	if w.counts.Errors() != 0 {
		t.Fatalf("errors: %v", w.counts.errs)
	}
}

func TestRecordZeroAlloc(t *testing.T) {
	h := NewHistogram()
	var c Counts
	body := []byte(`{"msg":"","data":{},"code":800004404}`)
	v := int64(0)
	n := testing.AllocsPerRun(10000, func() {
		v += 7919
		h.Record(v)
		c.Answer(404, body)
	})
	if n != 0 {
		t.Fatalf("%.2f allocations per record, want 0", n)
	}
}

// TestOpenLoopZeroAlloc: the pacer and the workers reuse their timer and
// bells, so the open loop allocates nothing per request either.
func TestOpenLoopZeroAlloc(t *testing.T) {
	addr := serve(t, gatewayLike)
	body, _ := Body(1024)
	target := Target{Addr: addr, Requests: []Request{{URI: []byte("/webhook/flow/a"), Body: body}}}
	l := Load{Conns: 1, Duration: time.Second, Rate: 20000, Timeout: 5 * time.Second}
	w := newWorker(&target, &l, 0, "test")
	sched := Schedule{Rate: 20000, Conns: 1}
	ctx := t.Context()
	run := func(end time.Duration) {
		t0 := time.Now()
		p := newPacer(sched)
		go p.run(ctx, t0, end)
		w.openLoop(ctx, t0, p, 0, 0, end, time.Millisecond)
	}
	// A first run warms the connection and the buffers.
	run(50 * time.Millisecond)
	before := w.sent
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	run(100 * time.Millisecond)
	runtime.ReadMemStats(&m1)
	sent := w.sent - before
	allocs := m1.Mallocs - m0.Mallocs
	if sent < 100 {
		t.Fatalf("only %d requests sent", sent)
	}
	// The run's pacer (its timer, bells and goroutine) and the runtime in
	// the background allocate a few times; per request there must be
	// nothing.
	if float64(allocs)/float64(sent) > 0.02 {
		t.Fatalf("%d allocations for %d requests", allocs, sent)
	}
}
