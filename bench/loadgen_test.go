package bench

import (
	"bytes"
	"context"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// serve runs h on a loopback fasthttp server for the test's lifetime.
func serve(t testing.TB, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h, MaxRequestBodySize: maxServerBody}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// gatewayLike answers like hookgate: 404 for /webhook/flow/unknown*,
// otherwise code 0.
func gatewayLike(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	if bytes.HasPrefix(ctx.Path(), []byte("/webhook/flow/unknown")) {
		ctx.SetStatusCode(404)
		ctx.SetBodyString(`{"msg":"webhook not found","data":{},"code":800004404}`)
		return
	}
	ctx.SetBodyString(`{"msg":"","data":{"triggered":true,"event_id":"0190"},"code":0}`)
}

func TestClosedLoop(t *testing.T) {
	var mu sync.Mutex
	tokens := map[string]int{}
	var bad atomic.Int64
	addr := serve(t, func(ctx *fasthttp.RequestCtx) {
		h := &ctx.Request.Header
		if !ctx.IsPost() || string(h.ContentType()) != "application/json" || len(ctx.PostBody()) != 300 {
			bad.Add(1)
		}
		if bytes.HasSuffix(ctx.Path(), []byte("auth")) && string(h.Peek("Authorization")) != "Bearer x" {
			bad.Add(1)
		}
		if ct := h.Peek("Client-Token"); len(ct) > 0 {
			mu.Lock()
			tokens[string(ct)]++
			mu.Unlock()
		}
		gatewayLike(ctx)
	})
	body, _ := Body(300)
	target := Target{Addr: addr, Requests: []Request{
		{URI: []byte("/webhook/flow/a-auth"), Body: body, Header: []Header{{[]byte("Authorization"), []byte("Bearer x")}}},
		{URI: []byte("/webhook/flow/unknown"), Body: body},
		{URI: []byte("/webhook/flow/b"), Body: body, UniqueClientToken: true},
	}}
	res, err := Load{Conns: 4, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond}.Run(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "closed" || res.Answers < 30 || res.RPS <= 0 || res.ErrorCount() != 0 {
		t.Fatalf("result %+v", res)
	}
	if bad.Load() != 0 {
		t.Fatalf("%d requests arrived malformed", bad.Load())
	}
	// Each connection cycles through the three requests.
	c0, c404 := res.Codes["0"], res.Codes["800004404"]
	if c0+c404 != res.Answers || c404 == 0 || c0 < c404 || res.Status["404"] != c404 {
		t.Fatalf("codes %v status %v answers %d", res.Codes, res.Status, res.Answers)
	}
	if res.Hist.Count() != res.Answers || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 {
		t.Fatalf("latency %+v over %d", res.Latency, res.Hist.Count())
	}
	mu.Lock()
	defer mu.Unlock()
	for tok, n := range tokens {
		if n != 1 || !strings.HasPrefix(tok, "hb-") {
			t.Fatalf("Client-Token %q sent %d times", tok, n)
		}
	}
	if len(tokens) == 0 {
		t.Fatal("no Client-Token sent")
	}
}

// TestOpenLoopStall shows why latency runs from the intended send time: one
// 150ms stall of a one-connection server delays every request due during
// it, and they all count as late and slow, where a closed loop would record
// a single slow request.
func TestOpenLoopStall(t *testing.T) {
	var n atomic.Int64
	addr := serve(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 100 {
			time.Sleep(150 * time.Millisecond)
		}
		gatewayLike(ctx)
	})
	body, _ := Body(256)
	target := Target{Addr: addr, Requests: []Request{{URI: []byte("/webhook/flow/a"), Body: body}}}
	const rate = 1000
	res, err := Load{Conns: 1, Rate: rate, Duration: 600 * time.Millisecond, Warmup: 20 * time.Millisecond}.Run(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "open" || res.Rate != rate {
		t.Fatalf("mode %s rate %g", res.Mode, res.Rate)
	}
	due := uint64(Schedule{Rate: rate, Conns: 1}.Due(0, 620*time.Millisecond) - Schedule{Rate: rate, Conns: 1}.Due(0, 20*time.Millisecond))
	if res.Sent+res.Unsent != due {
		t.Fatalf("sent %d + unsent %d, want %d due", res.Sent, res.Unsent, due)
	}
	// About 150 requests were due during the stall.
	if res.Late < 100 {
		t.Fatalf("late %d, want ≥ 100 after a 150ms stall at 1000/s", res.Late)
	}
	if res.Latency.P90 < 20*time.Millisecond || res.Latency.Max < 140*time.Millisecond {
		t.Fatalf("latency %+v does not show the stall", res.Latency)
	}
}

func TestOpenLoopUnsent(t *testing.T) {
	var n atomic.Int64
	addr := serve(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 20 {
			time.Sleep(400 * time.Millisecond) // past the end of the run
		}
		gatewayLike(ctx)
	})
	body, _ := Body(256)
	target := Target{Addr: addr, Requests: []Request{{URI: []byte("/webhook/flow/a"), Body: body}}}
	start := time.Now()
	res, err := Load{Conns: 1, Rate: 500, Duration: 200 * time.Millisecond}.Run(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("run took %s", el)
	}
	// 100 due; about 20 sent before the stall, the stalled one answered
	// after the end, the rest never sent.
	if res.Sent+res.Unsent != 100 || res.Unsent < 50 {
		t.Fatalf("sent %d unsent %d", res.Sent, res.Unsent)
	}
	// Every request due has a latency or an error: the unsent ones with
	// how long they had waited when the run gave up on them, at least
	// from the end of the 400ms stall, which began by request 20 (due at
	// 38ms), to the end of the window at 200ms. Left out, they would hide
	// the stall that kept them from being sent, as a closed loop does.
	if got := res.Hist.Count() + res.ErrorCount(); got != res.Sent+res.Unsent {
		t.Fatalf("%d latencies and %d errors for %d requests due", res.Hist.Count(), res.ErrorCount(), res.Sent+res.Unsent)
	}
	if res.Latency.P50 < 200*time.Millisecond {
		t.Fatalf("p50 %s, though most requests waited out the stall unsent", res.Latency.P50)
	}
}

func TestRunRefusedAndInvalid(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	body, _ := Body(256)
	target := Target{Addr: addr, Requests: []Request{{URI: []byte("/"), Body: body}}}
	res, err := Load{Conns: 2, Duration: 100 * time.Millisecond}.Run(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if res.Answers != 0 || res.Errors["refused"] == 0 || res.ErrorExamples["refused"] == "" {
		t.Fatalf("answers %d errors %v", res.Answers, res.Errors)
	}

	for _, l := range []Load{{Conns: 0, Duration: time.Second}, {Conns: 1}, {Conns: 1, Duration: time.Second, Rate: -1}} {
		if _, err := l.Run(context.Background(), target); err == nil {
			t.Errorf("%+v: no error", l)
		}
	}
	if _, err := (Load{Conns: 1, Duration: time.Second}).Run(context.Background(), Target{Addr: addr}); err == nil {
		t.Error("no requests: no error")
	}

	// A cancelled context stops a run at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if _, err := (Load{Conns: 2, Duration: time.Minute}).Run(ctx, target); err == nil || time.Since(start) > time.Second {
		t.Fatalf("cancelled run: err %v after %s", err, time.Since(start))
	}
}

// TestClosedLoopRPSOverWindow: req/s is the window's answers over the
// window. Answers that come long after it — here every connection's last
// request, held by the server until well past the end — are counted, but
// the time spent waiting for them is not the window's.
func TestClosedLoopRPSOverWindow(t *testing.T) {
	var hold atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	addr := serve(t, func(ctx *fasthttp.RequestCtx) {
		if hold.Load() {
			<-release
		}
		gatewayLike(ctx)
	})
	body, _ := Body(256)
	target := Target{Addr: addr, Requests: []Request{{URI: []byte("/webhook/flow/a"), Body: body}}}
	const window = 300 * time.Millisecond
	l := Load{Conns: 2, Duration: window, Warmup: 50 * time.Millisecond, AtWindow: func() {
		time.AfterFunc(window/2, func() { hold.Store(true) })
		time.AfterFunc(window+time.Second, free)
	}}
	res, err := l.Run(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if res.Answers == 0 || res.ErrorCount() != 0 {
		t.Fatalf("answers %d, errors %v", res.Answers, res.Errors)
	}
	if want := float64(res.Answers) / window.Seconds(); math.Abs(res.RPS-want) > want*1e-9 {
		t.Fatalf("%.0f req/s for %d answers to requests sent in a %s window (%.0f/s); elapsed %s",
			res.RPS, res.Answers, window, want, res.Elapsed)
	}
}
