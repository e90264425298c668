package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// chaosEngine is a flow engine on raw TCP that can misbehave on purpose.
type chaosEngine struct {
	addr string
	ln   net.Listener

	mu   sync.Mutex
	mode string         // ok, 500, slow, reset, hang
	got  map[string]int // client_token -> events received (any mode)
	acks map[string]int // client_token -> events answered 2xx
}

func startChaos(t *testing.T) *chaosEngine {
	t.Helper()
	e := &chaosEngine{mode: "ok", got: map[string]int{}, acks: map[string]int{}}
	e.listen(t, "127.0.0.1:0")
	t.Cleanup(func() { e.down() })
	return e
}

func (e *chaosEngine) listen(t *testing.T, addr string) {
	t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		if e.ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	e.addr = e.ln.Addr().String()
	go func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go e.serve(c)
		}
	}(e.ln)
}

func (e *chaosEngine) down() { e.ln.Close() }

func (e *chaosEngine) setMode(m string) {
	e.mu.Lock()
	e.mode = m
	e.mu.Unlock()
}

func (e *chaosEngine) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		var req fasthttp.Request
		if err := req.Read(r); err != nil {
			return
		}
		var ev struct {
			ClientToken string `json:"client_token"`
		}
		json.Unmarshal(req.Body(), &ev)
		e.mu.Lock()
		mode := e.mode
		e.got[ev.ClientToken]++
		if mode == "ok" || mode == "hang" {
			e.acks[ev.ClientToken]++
		}
		e.mu.Unlock()
		switch mode {
		case "ok":
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		case "500":
			c.Write([]byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"))
		case "slow":
			time.Sleep(1500 * time.Millisecond)
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		case "reset":
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST instead of FIN
			}
			return
		case "hang":
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"))
			time.Sleep(3 * time.Second)
			return
		}
	}
}

func (e *chaosEngine) counts(token string) (got, acks int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got[token], e.acks[token]
}

// TestFailingFlowEngine injects each fault: nothing is answered code 0
// unless the engine answered 2xx, no Client-Token is forwarded twice, the
// caller gets 503 with Retry-After, the breaker sheds, and the gateway
// recovers by itself when the engine does.
func TestFailingFlowEngine(t *testing.T) {
	e := startChaos(t)
	admin := freeAddr(t)
	cfg := fmt.Sprintf(`listen: LISTEN
admin_listen: %s
limits: {table_rps: 100000, automation_rps: 100000, anonymous_rps: 100000}
downstream: {url: "http://%s/events", timeout: 500ms, breaker: {failures: 5, cooldown: 300ms, max_cooldown: 1s}}
tables:
  - id: t
    automations:
      - {id: a, token: %s}
`, admin, e.addr, tokAnon)
	g := startGateway(t, cfg)

	for _, mode := range []string{"500", "reset", "slow", "hang", "down"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "down" {
				e.down()
			} else {
				e.setMode(mode)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			answers := map[string][]answer{}
			for i := 0; i < 12; i++ {
				tok := fmt.Sprintf("%s-%d", mode, i)
				for dup := 0; dup < 2; dup++ { // each token twice, at once
					wg.Add(1)
					go func() {
						defer wg.Done()
						a := post(t, "POST", g.url(tokAnon), productBody, "Client-Token", tok)
						mu.Lock()
						answers[tok] = append(answers[tok], a)
						mu.Unlock()
					}()
				}
			}
			wg.Wait()
			for tok, as := range answers {
				got, acks := e.counts(tok)
				triggered, failed := 0, 0
				for _, a := range as {
					switch {
					case a.Code == 0 && a.Data["triggered"] == true:
						triggered++
					case a.Code == 0 && a.Data["duplicate"] == true, a.Code == 800005653:
					case a.Code == 800005660:
						failed++
						if a.hdr("Retry-After") == "" {
							t.Errorf("503 without Retry-After")
						}
					default:
						t.Errorf("%s: unexpected answer %s", tok, a.Raw)
					}
				}
				if triggered > acks || triggered > 1 {
					t.Errorf("%s: answered code 0 %d times, engine acknowledged %d", tok, triggered, acks)
				}
				// A token is forwarded again only after a forward of it
				// failed and was answered so: never twice at once.
				if got > triggered+failed {
					t.Errorf("%s: forwarded %d times for %d triggered and %d failed answers", tok, got, triggered, failed)
				}
			}
			// Recovery: the engine comes back, every token triggers exactly once.
			if mode == "down" {
				e.listen(t, e.addr)
			}
			e.setMode("ok")
			for tok := range answers {
				_, ackedBefore := e.counts(tok)
				deadline := time.Now().Add(5 * time.Second)
				for {
					a := post(t, "POST", g.url(tokAnon), productBody, "Client-Token", tok)
					if a.Code == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: no recovery: %s", tok, a.Raw)
					}
					time.Sleep(50 * time.Millisecond)
				}
				if _, acks := e.counts(tok); acks > 1 || acks-ackedBefore > 1 {
					t.Errorf("%s: engine acknowledged %d events", tok, acks)
				}
			}
		})
	}
	// The breaker opened along the way and says so.
	mfs := scrape(t, "http://"+admin)
	if value(mfs, "hookgate_downstream_breaker_openings_total", nil) == 0 {
		t.Error("the circuit breaker never opened")
	}
	if value(mfs, "hookgate_forward_failures_total", map[string]string{"reason": "breaker_open"}) == 0 {
		t.Error("the open breaker shed nothing")
	}
	_ = strings.Contains
}
