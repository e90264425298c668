package gateway

import (
	"bytes"
	"os"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/downstream"
)

// wallStepped returns t with its wall clock moved by d and its monotonic
// reading kept: a time read after the wall clock was stepped by d.
func wallStepped(tb testing.TB, t time.Time, d time.Duration) time.Time {
	tb.Helper()
	u := t.Add(d) // moves both readings
	// A Time with a monotonic reading keeps it in its second word.
	(*[2]int64)(unsafe.Pointer(&u))[1] = (*[2]int64)(unsafe.Pointer(&t))[1]
	if u.Sub(t) != 0 || u.Round(0).Sub(t.Round(0)) != d {
		tb.Fatal("cannot move a time.Time's wall clock alone: this Go keeps it differently")
	}
	return u
}

// ctxTimeField is where a RequestCtx keeps the time its server read when
// the request began, which Time returns.
var ctxTimeField = func() reflect.StructField {
	f, _ := reflect.TypeFor[fasthttp.RequestCtx]().FieldByName("time")
	return f
}()

// startAt makes c's next requests begin at t, as if the server had read
// the clock then.
func (c *call) startAt(tb testing.TB, t time.Time) {
	tb.Helper()
	if ctxTimeField.Type != reflect.TypeFor[time.Time]() {
		tb.Fatal("fasthttp.RequestCtx has no field time of type time.Time")
	}
	*(*time.Time)(unsafe.Add(unsafe.Pointer(&c.ctx), ctxTimeField.Offset)) = t
	if !c.ctx.Time().Equal(t) {
		tb.Fatal("setting the request's time did not take")
	}
}

// TestWallClockSteps: the rate limits and the Client-Tokens follow the
// monotonic clock. A backward step of the wall clock (NTP, a resumed
// virtual machine) refused every request of a busy automation for the
// length of the step, with a Retry-After as long; a forward step past
// idempotency_window forgot every remembered Client-Token, so a retry
// triggered twice.
func TestWallClockSteps(t *testing.T) {
	g, _, _, path, _ := newTestGateway(t, handlerConfig)
	c := newCall()
	t0 := time.Now()
	want := func(what string, status int, code int64, triggered bool) {
		t.Helper()
		s, cd, data := c.answer(t)
		if s != status || cd != code || (status == 200 && data["triggered"] != triggered) {
			t.Fatalf("%s: answered %d %s (Retry-After %q); want %d, code %d, triggered %v", what,
				s, c.ctx.Response.Body(), c.ctx.Response.Header.Peek("Retry-After"), status, code, triggered)
		}
	}

	// hTokSlow admits one request a second.
	c.startAt(t, t0)
	c.do(g, "POST", hTokSlow, bodyProduct)
	want("first request", 200, 0, true)
	c.startAt(t, t0.Add(100*time.Millisecond))
	c.do(g, "POST", hTokSlow, bodyProduct)
	want("a second request within the second", 429, 800005652, false)
	c.startAt(t, wallStepped(t, t0.Add(1100*time.Millisecond), -time.Hour))
	c.do(g, "POST", hTokSlow, bodyProduct)
	want("1.1 s later, the wall clock stepped back an hour", 200, 0, true)

	// A Client-Token is remembered for idempotency_window (3 h).
	c.startAt(t, t0)
	c.do(g, "POST", hTokAnon, bodyProduct, "Client-Token", "clock-step")
	want("the token's first request", 200, 0, true)
	c.startAt(t, wallStepped(t, t0.Add(time.Second), DefaultIdempotencyWindow+time.Hour))
	c.do(g, "POST", hTokAnon, bodyProduct, "Client-Token", "clock-step")
	want("its retry 1 s later, the wall clock stepped 4 h ahead", 200, 0, false)

	if events, err := os.ReadFile(path); err != nil || bytes.Count(events, []byte("\n")) != 3 {
		t.Fatalf("%d events handed over (%v), want 3", bytes.Count(events, []byte("\n")), err)
	}
}

// TestBreakerWallClockStep: the breaker's cooldown runs on the monotonic
// clock; a backward step of the wall clock held it open for the step.
func TestBreakerWallClockStep(t *testing.T) {
	e := startEngine(t)
	sink, err := downstream.Open(downstream.Config{URL: e.url, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	b := newBreaker(sink, Breaker{Failures: 1, Cooldown: Duration(50 * time.Millisecond), MaxCooldown: Duration(50 * time.Millisecond)})
	e.status.Store(500)
	b.Forward([]byte("id"), nil, []byte(`{}`), time.Now())
	if !b.isOpen() {
		t.Fatal("a failed hand-over did not open the breaker")
	}
	e.status.Store(200)
	time.Sleep(100 * time.Millisecond) // past the cooldown
	hits := e.hits.Load()
	if err := b.Forward([]byte("id"), nil, []byte(`{}`), wallStepped(t, time.Now(), -time.Hour)); err != nil || e.hits.Load() != hits+1 {
		t.Fatalf("after the cooldown, the wall clock stepped back an hour: %v, %d hand-overs reached the engine; want the probe through",
			err, e.hits.Load()-hits)
	}
	if b.isOpen() {
		t.Fatal("a good probe left the breaker open")
	}
}
