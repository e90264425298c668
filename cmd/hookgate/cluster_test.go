package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/cluster/redistest"
)

// fleetConfig is one table with a credentialed automation at the default
// 5 req/s and an anonymous one with a high limit, shared through Redis
// with the given command timeout.
func fleetConfig(redisURL, sinkURL string, redisTimeout time.Duration) string {
	return fmt.Sprintf(`listen: LISTEN
cluster: {redis_url: %q, timeout: %s}
downstream: {url: %q, timeout: 2s}
log: {level: info}
tables:
  - id: t
    rps: 100000
    automations:
      - {id: cred, token: %s, credential: %s}
      - {id: anon, token: %s, rps: 100000}
`, redisURL, redisTimeout, sinkURL, tokCred, credential, tokAnon)
}

// fleet starts two gateway processes on one Redis and one flow engine,
// each Redis command given redisTimeout.
func fleet(t *testing.T, redisTimeout time.Duration) (*redistest.Server, *sink, [2]*gatewayProc) {
	t.Helper()
	r := redistest.Start(t)
	s := startSink(t)
	cfg := fleetConfig(r.URL, s.URL, redisTimeout)
	return r, s, [2]*gatewayProc{startGateway(t, cfg), startGateway(t, cfg)}
}

// TestFleetClientToken: 100 concurrent requests with one Client-Token,
// split across two gateways, forward exactly once.
func TestFleetClientToken(t *testing.T) {
	_, s, gs := fleet(t, 300*time.Millisecond)
	s.set(200, 50*time.Millisecond)
	var wg sync.WaitGroup
	var triggered atomic.Int64
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := post(t, "POST", gs[i%2].url(tokAnon), productBody, "Client-Token", "fleet-token")
			switch {
			case a.Code == 0 && a.Data["triggered"] == true:
				triggered.Add(1)
			case a.Code == 0 && a.Data["duplicate"] == true, a.Code == 800005653:
			default:
				t.Errorf("unexpected answer %s", a.Raw)
			}
		}()
	}
	wg.Wait()
	if n := len(s.received()); triggered.Load() != 1 || n != 1 {
		t.Fatalf("triggered %d, forwarded %d; want exactly 1", triggered.Load(), n)
	}
	// Both gateways now know it as a duplicate: at once, or after a
	// 409 while the done mark, sent after the answer, is on its way.
	for _, g := range gs {
		deadline := time.Now().Add(2 * time.Second)
		for {
			a := post(t, "POST", g.url(tokAnon), productBody, "Client-Token", "fleet-token")
			if a.Code == 0 && a.Data["duplicate"] == true {
				break
			}
			if a.Code != 800005653 || time.Now().After(deadline) {
				t.Fatalf("not a duplicate: %s", a.Raw)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if n := len(s.received()); n != 1 {
		t.Fatalf("forwarded %d, want exactly 1", n)
	}
}

// TestFleetRateLimit: 20 req/s for 3 s at one credentialed automation,
// split across two gateways, admits 5 req/s fleet-wide.
func TestFleetRateLimit(t *testing.T) {
	_, _, gs := fleet(t, 300*time.Millisecond)
	var admitted, limited atomic.Int64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 60; i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := post(t, "POST", gs[i%2].url(tokCred), productBody, "Authorization", "Bearer "+credential)
			switch a.Code {
			case 0:
				admitted.Add(1)
			case 800005652:
				limited.Add(1)
			default:
				t.Errorf("unexpected %s", a.Raw)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	// A burst of 5, then 5 a second.
	want := 5 + 5*secs
	if got := float64(admitted.Load()); got < want-3 || got > want+1 {
		t.Fatalf("admitted %v in %.1fs across two gateways, want %.0f (5/s fleet-wide); %d limited", got, secs, want, limited.Load())
	}
}

// TestFleetRateLimitFirst: with Redis the rate decision is taken with the
// Client-Token claim, after the body is read, yet callers see SPEC §3's
// order: a request over the limit is refused 429 whatever its body or
// token, and a token refused so was not claimed — it triggers once the
// bucket has a token again.
func TestFleetRateLimitFirst(t *testing.T) {
	_, s, gs := fleet(t, 300*time.Millisecond)
	auth := []string{"Authorization", "Bearer " + credential}
	for i := range 5 { // the burst, on the first gateway
		if a := post(t, "POST", gs[0].url(tokCred), productBody, auth...); a.Code != 0 {
			t.Fatalf("burst request %d: %s", i, a.Raw)
		}
	}
	// Neither gateway has been refused yet, so each asks Redis after
	// reading the body.
	if a := post(t, "POST", gs[1].url(tokCred), []byte(`{"not json`), auth...); a.Code != 800005652 {
		t.Errorf("over the limit with invalid JSON: %s, want 429", a.Raw)
	}
	if a := post(t, "POST", gs[0].url(tokCred), productBody, append(auth, "Client-Token", "later")...); a.Code != 800005652 {
		t.Errorf("over the limit with a Client-Token: %s, want 429", a.Raw)
	}
	time.Sleep(1200 * time.Millisecond)
	a := post(t, "POST", gs[1].url(tokCred), productBody, append(auth, "Client-Token", "later")...)
	if a.Code != 0 || a.Data["triggered"] != true {
		t.Errorf("the token refused 429 did not trigger later: %s", a.Raw)
	}
	if n := len(s.received()); n != 6 {
		t.Errorf("forwarded %d, want 6", n)
	}
}

// TestFleetStopMarksDone: a gateway stopped (SIGTERM) while the done
// marks of answered requests wait on a slow Redis sends them before it
// exits: each token is then a duplicate on the other gateway, not in
// flight.
func TestFleetStopMarksDone(t *testing.T) {
	// Redis answers late here on purpose, so a command gets 5s.
	r, s, gs := fleet(t, 5*time.Second)
	if !r.CanStop() {
		t.Skip("REDIS_URL names an outside server, which this test can't pause")
	}
	s.set(200, 300*time.Millisecond)
	const n = 200
	var wg sync.WaitGroup
	answers := make([]answer, n)
	for i := range n {
		wg.Go(func() {
			answers[i] = post(t, "POST", gs[0].url(tokAnon), productBody, "Client-Token", fmt.Sprintf("stop-%d", i))
		})
	}
	// Every token is claimed and its event at the engine. Redis freezes
	// before the engine answers, so the marks made on the answers wait:
	// the first batch in Redis' socket, the rest in the gateway's queue.
	s.waitArrived(t, n)
	r.Pause(t)
	wg.Wait()
	for i, a := range answers {
		if a.Code != 0 || a.Data["triggered"] != true {
			r.Resume(t)
			t.Fatalf("request %d: %s", i, a.Raw)
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- gs[0].stop(t) }()
	time.Sleep(300 * time.Millisecond) // the stop is waiting on the marks
	r.Resume(t)
	if err := <-stopped; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, gs[0].log())
	}
	s.set(200, 0)
	for i := range n {
		if a := post(t, "POST", gs[1].url(tokAnon), productBody, "Client-Token", fmt.Sprintf("stop-%d", i)); a.Code != 0 || a.Data["duplicate"] != true {
			t.Fatalf("token %d on the other gateway after the stop: %s, want a duplicate", i, a.Raw)
		}
	}
	if got := len(s.received()); got != n {
		t.Errorf("forwarded %d, want %d", got, n)
	}
}

// TestFleetRedisOutage: Redis stops mid-run. Client-Token claims fail
// closed (503, never a second trigger), rate limits fall back to local
// buckets, both gateways keep answering within their timeouts, and all
// recover by themselves when Redis returns.
func TestFleetRedisOutage(t *testing.T) {
	r, s, gs := fleet(t, 300*time.Millisecond)
	if !r.CanStop() {
		t.Skip("REDIS_URL names an outside server, which this test can't stop")
	}
	send := func(g *gatewayProc, tok string) answer {
		start := time.Now()
		a := post(t, "POST", g.url(tokAnon), productBody, "Client-Token", tok)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("answer took %s", d)
		}
		return a
	}
	// Before: a token triggers once, fleet-wide.
	send(gs[0], "before")
	r.Stop(t, true)
	// During: every gateway answers; tokens are refused retryably.
	for i := 0; i < 10; i++ {
		for _, g := range gs {
			a := send(g, fmt.Sprintf("during-%d", i))
			if a.Code == 0 && a.Data["triggered"] == true {
				t.Fatalf("a Client-Token triggered while Redis was down: %s", a.Raw)
			}
			if a.Code != 800005660 {
				t.Errorf("during the outage: %s", a.Raw)
			}
		}
	}
	// Without a Client-Token the local buckets decide.
	if a := post(t, "POST", gs[0].url(tokCred), productBody, "Authorization", "Bearer "+credential); a.Code != 0 {
		t.Errorf("rate limits did not fall back to local buckets: %s", a.Raw)
	}
	r.Restart(t)
	// After: recovery without a restart, and no token triggers twice.
	time.Sleep(1100 * time.Millisecond) // anon's bucket refills
	waitFor(t, func() bool {
		a := send(gs[1], "during-0")
		return a.Code == 0
	})
	time.Sleep(1100 * time.Millisecond)
	if a := send(gs[0], "during-0"); a.Data["duplicate"] != true {
		t.Errorf("after recovery, the other gateway does not see the token: %s", a.Raw)
	}
	time.Sleep(1100 * time.Millisecond)
	if a := send(gs[1], "before"); a.Data["duplicate"] != true {
		t.Errorf("the token from before the outage was forgotten: %s", a.Raw)
	}
	counts := map[string]int{}
	for _, ev := range s.received() {
		tok, _ := envelope(t, ev)["client_token"].(string)
		counts[tok]++
	}
	for tok, n := range counts {
		if tok != "" && n > 1 {
			t.Errorf("token %s forwarded %d times", tok, n)
		}
	}
	for _, g := range gs {
		g.stop(t)
		if !strings.Contains(g.log(), "redis") && !strings.Contains(g.log(), "Redis") {
			t.Errorf("the outage was not logged:\n%s", g.log())
		}
	}
}
