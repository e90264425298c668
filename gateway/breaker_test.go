package gateway

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/downstream"
)

// engine is a real fasthttp flow engine on loopback answering status.
type engine struct {
	status atomic.Int64
	hits   atomic.Int64
	url    string
}

func startEngine(t *testing.T) *engine {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{url: "http://" + ln.Addr().String() + "/events"}
	e.status.Store(200)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		e.hits.Add(1)
		ctx.SetStatusCode(int(e.status.Load()))
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return e
}

func TestBreaker(t *testing.T) {
	e := startEngine(t)
	sink, err := downstream.Open(downstream.Config{URL: e.url, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	b := newBreaker(sink, Breaker{Failures: 3, Cooldown: Duration(100 * time.Millisecond), MaxCooldown: Duration(300 * time.Millisecond)})
	fwd := func() error { return b.Forward([]byte("id"), nil, []byte(`{}`), time.Now()) }

	// 4xx is a deliberate answer: it never trips.
	e.status.Store(404)
	for i := 0; i < 10; i++ {
		if err := fwd(); err == nil || errors.Is(err, errBreakerOpen) {
			t.Fatalf("404 answered %v", err)
		}
	}
	// Three 500s open it; then hand-overs fail fast without reaching the engine.
	e.status.Store(500)
	for i := 0; i < 3; i++ {
		fwd()
	}
	hits := e.hits.Load()
	for i := 0; i < 50; i++ {
		if err := fwd(); !errors.Is(err, errBreakerOpen) {
			t.Fatalf("open breaker forwarded: %v", err)
		}
	}
	if e.hits.Load() != hits || !b.isOpen() {
		t.Fatalf("engine hit %d times while open", e.hits.Load()-hits)
	}
	// After the cooldown one probe goes through; it fails, the cooldown doubles.
	time.Sleep(120 * time.Millisecond)
	if err := fwd(); errors.Is(err, errBreakerOpen) || err == nil {
		t.Fatalf("probe: %v", err)
	}
	if got := time.Duration(b.current.Load()); got != 200*time.Millisecond {
		t.Fatalf("cooldown after a failed probe = %s", got)
	}
	// The engine recovers: the next probe closes the breaker.
	e.status.Store(200)
	time.Sleep(220 * time.Millisecond)
	if err := fwd(); err != nil {
		t.Fatalf("probe after recovery: %v", err)
	}
	if b.isOpen() {
		t.Fatal("breaker still open after a good probe")
	}
	for i := 0; i < 5; i++ {
		if err := fwd(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBreakerPipelinedTimeout: on a pipelined connection one slow event
// fails the events behind it; that is one failure of the engine, not one
// per event, so the breaker stays closed.
func TestBreakerPipelinedTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Request.Header.Peek("Idempotency-Key")) == "slow" {
			<-release
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { close(release); srv.Shutdown() })
	sink, err := downstream.Open(downstream.Config{URL: "http://" + ln.Addr().String() + "/", Timeout: 300 * time.Millisecond,
		Pipeline: 16, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	b := newBreaker(sink, Breaker{Failures: 3, Cooldown: Duration(time.Second), MaxCooldown: Duration(time.Second)})
	slow := make(chan error, 1)
	go func() { slow <- b.Forward([]byte("slow"), nil, []byte(`{}`), time.Now()) }()
	time.Sleep(30 * time.Millisecond)
	behind := make(chan error, 8)
	for range 8 {
		go func() { behind <- b.Forward([]byte("behind"), nil, []byte(`{}`), time.Now()) }()
	}
	if err := <-slow; !errors.Is(err, downstream.ErrTimeout) {
		t.Fatalf("slow event: %v; want a timeout", err)
	}
	aborted := 0
	for range 8 {
		if err := <-behind; errors.Is(err, downstream.ErrAborted) {
			aborted++
		} else if err != nil && !errors.Is(err, downstream.ErrTimeout) {
			t.Fatalf("event behind the slow one: %v", err)
		}
	}
	if aborted == 0 {
		t.Fatal("no event was aborted behind the slow one; the test did not pipeline")
	}
	if b.isOpen() {
		t.Fatalf("breaker opened after one slow event and %d aborted behind it", aborted)
	}
	if err := b.Forward([]byte("next"), nil, []byte(`{}`), time.Now()); err != nil {
		t.Fatalf("next event: %v", err)
	}
}
