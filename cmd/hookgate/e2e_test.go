package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// Tokens of the end-to-end configurations (test secrets, ≥ 22 characters).
const (
	tokCred     = "tok-cred-0123456789abcdefghij"
	tokAnon     = "tok-anon-0123456789abcdefghij"
	tokDisabled = "tok-disabled-0123456789abcdef"
	tokAllow6   = "tok-allow6-0123456789abcdefgh"
	tokText     = "tok-text-0123456789abcdefghij"
	tokNone     = "tok-none-0123456789abcdefghij"
	tokFold     = "tok-fold-0123456789abcdefghij"
	credential  = "s3cret-credential-value"
)

// rowsConfig has generous limits so only the rate-limit tests see 429s.
const rowsConfig = `
listen: LISTEN
trusted_proxies: ["127.0.0.1/32"]
limits: {table_rps: 100000, automation_rps: 100000, anonymous_rps: 100000}
downstream: {url: "SINK", timeout: 2s}
log: {level: debug, sample_first: 1000000}
tables:
  - id: tbl_menu
    automations:
      - id: cred
        token: ` + tokCred + `
        credential: ` + credential + `
        keywords: ["product", "新品"]
      - id: anon
        token: ` + tokAnon + `
      - id: disabled
        token: ` + tokDisabled + `
        enabled: false
      - id: allow6
        token: ` + tokAllow6 + `
        ip_allow: ["2001:db8::/32", "198.51.100.7"]
      - id: text
        token: ` + tokText + `
        format: text
      - id: none
        token: ` + tokNone + `
        format: none
        keywords: ["alert"]
      - id: fold
        token: ` + tokFold + `
        keywords: ["ERROR"]
        keywords_ignore_case: true
`

func rowsGateway(t *testing.T) (*gatewayProc, *sink) {
	t.Helper()
	s := startSink(t)
	g := startGateway(t, strings.ReplaceAll(rowsConfig, "SINK", s.URL))
	return g, s
}

func (g *gatewayProc) url(token string) string { return g.Base + "/webhook/flow/" + token }

var productBody = []byte(`{"name":"Jasmine green","event":"new product"}`)

// TestCheckRows walks SPEC §3 row by row against the real binary.
func TestCheckRows(t *testing.T) {
	g, s := rowsGateway(t)
	bearer := "Bearer " + credential

	t.Run("1 method", func(t *testing.T) {
		a := post(t, "GET", g.url(tokCred), nil)
		a.want(t, 405, 800004405, "method not allowed")
		if got := a.hdr("Allow"); got != "POST" {
			t.Errorf("Allow = %q", got)
		}
		post(t, "PUT", g.url(tokCred), productBody, "Authorization", bearer).want(t, 405, 800004405, "method not allowed")
	})
	t.Run("2 token", func(t *testing.T) {
		post(t, "POST", g.url("no-such-token-0123456789ab"), productBody).want(t, 404, 800004404, "webhook not found")
		post(t, "POST", g.url(tokCred+"x"), productBody).want(t, 404, 800004404, "webhook not found")
		post(t, "POST", g.Base+"/other", productBody).want(t, 404, 800004404, "webhook not found")
		post(t, "POST", g.Base+"/webhook/flow/", productBody).want(t, 404, 800004404, "webhook not found")
	})
	t.Run("3 disabled", func(t *testing.T) {
		post(t, "POST", g.url(tokDisabled), productBody).want(t, 403, 800004509, "webhook trigger workflow is disabled")
	})
	t.Run("4 allow-list", func(t *testing.T) {
		msg := "IP not in the allow-list — please check"
		// The peer 127.0.0.1 is a trusted proxy, so X-Forwarded-For names the client.
		post(t, "POST", g.url(tokAllow6), productBody).want(t, 403, 800005650, msg)
		post(t, "POST", g.url(tokAllow6), productBody, "X-Forwarded-For", "2001:dba::1").want(t, 403, 800005650, msg)
		post(t, "POST", g.url(tokAllow6), productBody, "X-Forwarded-For", "2001:db8::5").want(t, 200, 0, "")
		post(t, "POST", g.url(tokAllow6), productBody, "X-Forwarded-For", "2001:db8::5, 127.0.0.1").want(t, 200, 0, "")
		// Only the right-most untrusted hop counts: a forged left entry doesn't help.
		post(t, "POST", g.url(tokAllow6), productBody, "X-Forwarded-For", "2001:db8::5, 203.0.113.9").want(t, 403, 800005650, msg)
		post(t, "POST", g.url(tokAllow6), productBody, "X-Real-IP", "198.51.100.7").want(t, 200, 0, "")
	})
	t.Run("5 credential", func(t *testing.T) {
		for _, auth := range []string{"", "Bearer wrong", "bearer " + credential, "Bearer  " + credential, credential, "Bearer " + credential + "x"} {
			a := post(t, "POST", g.url(tokCred), productBody, "Authorization", auth)
			a.want(t, 401, 800005649, "Credential check failed")
			if got := a.hdr("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		}
	})
	t.Run("6 loop", func(t *testing.T) {
		msg := "HTTP node calls itself, causing a loop — change the HTTP node URL"
		post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer, "Hookgate-Loop", "a, cred").want(t, 508, 800005646, msg)
		post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer, "Hookgate-Loop", "a,b,c,d,e,f,g,h").want(t, 508, 800005646, msg)
		a := post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer, "Hookgate-Loop", "a,b,c,d,e,f,g")
		a.want(t, 200, 0, "")
		ev := lastEvent(t, s)
		if got := ev.Header["Hookgate-Loop"]; got != "a,b,c,d,e,f,g,cred" {
			t.Errorf("forwarded Hookgate-Loop = %q", got)
		}
	})
	t.Run("7 and 9 size", func(t *testing.T) {
		msg := "Request body too large — please reduce"
		exact := jsonOfSize(4194304, "product")
		post(t, "POST", g.url(tokCred), exact, "Authorization", bearer).want(t, 200, 0, "")
		over := jsonOfSize(4194305, "product")
		post(t, "POST", g.url(tokCred), over, "Authorization", bearer).want(t, 413, 800005647, msg)
		// Chunked: no Content-Length, cut off at the cap while reading.
		postChunked(t, g.url(tokCred), exact, "Authorization", bearer).want(t, 200, 0, "")
		postChunked(t, g.url(tokCred), over, "Authorization", bearer).want(t, 413, 800005647, msg)
		// A refused size takes no rate-limit token and reads no body: the
		// header checks before it still answer first.
		post(t, "POST", g.url(tokCred), over).want(t, 401, 800005649, "Credential check failed")
	})
	t.Run("10 json", func(t *testing.T) {
		for _, b := range []string{"", "{", `{"a":1,}`, "product", `{"a":"product"} x`, "{\"a\":\"pro\nduct\"}", `{"a":"\x"}`} {
			post(t, "POST", g.url(tokCred), []byte(b), "Authorization", bearer).
				want(t, 400, 800006003, "Body doesn't match JSON spec — please fix and retry")
		}
	})
	t.Run("11 keyword", func(t *testing.T) {
		a := post(t, "POST", g.url(tokCred), []byte(`{"name":"tea"}`), "Authorization", bearer)
		a.want(t, 200, 0, "")
		if a.Data["triggered"] != false || a.Data["event_id"] != nil {
			t.Errorf("keyword miss data = %v", a.Data)
		}
		// Escaped keyword: \u65b0\u54c1 is 新品.
		a = post(t, "POST", g.url(tokCred), []byte(`{"tag":"\u65b0\u54c1"}`), "Authorization", bearer)
		a.want(t, 200, 0, "")
		if a.Data["triggered"] != true {
			t.Fatalf("escaped keyword did not trigger: %s", a.Raw)
		}
		if ev := envelope(t, lastEvent(t, s)); ev["keyword"] != "新品" {
			t.Errorf("keyword = %v", ev["keyword"])
		}
		// Case folding is per automation.
		post(t, "POST", g.url(tokFold), []byte(`{"level":"error"}`)).want(t, 200, 0, "")
		if ev := envelope(t, lastEvent(t, s)); ev["keyword"] != "ERROR" {
			t.Errorf("folded keyword = %v", ev["keyword"])
		}
	})
	t.Run("12 client-token", func(t *testing.T) {
		a := post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer, "Client-Token", "ct-dup-1")
		a.want(t, 200, 0, "")
		if a.Data["triggered"] != true {
			t.Fatalf("first use did not trigger: %s", a.Raw)
		}
		a = post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer, "Client-Token", "ct-dup-1")
		a.want(t, 200, 0, "")
		if a.Data["triggered"] != false || a.Data["duplicate"] != true {
			t.Errorf("duplicate data = %v", a.Data)
		}
		// The same token on another automation is a different key.
		post(t, "POST", g.url(tokAnon), productBody, "Client-Token", "ct-dup-1").want(t, 200, 0, "")
		if ev := envelope(t, lastEvent(t, s)); ev["client_token"] != "ct-dup-1" || ev["automation"] != "anon" {
			t.Errorf("event = %v", ev)
		}
	})
	t.Run("12b in flight", func(t *testing.T) {
		s.set(200, 700*time.Millisecond)
		defer s.set(200, 0)
		first := make(chan answer, 1)
		go func() {
			first <- post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer, "Client-Token", "ct-slow")
		}()
		time.Sleep(250 * time.Millisecond)
		post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer, "Client-Token", "ct-slow").
			want(t, 409, 800005653, "a request with this Client-Token is in progress — retry later")
		(<-first).want(t, 200, 0, "")
	})
	t.Run("13 engine failure releases the token", func(t *testing.T) {
		s.set(500, 0)
		a := post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer, "Client-Token", "ct-retry")
		a.want(t, 503, 800005660, "flow engine unavailable — retry later")
		if ra := a.hdr("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("503 Retry-After = %q", ra)
		}
		s.set(200, 0)
		before := len(s.received())
		a = post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer, "Client-Token", "ct-retry")
		if a.Data["triggered"] != true {
			t.Fatalf("retry after a failure did not trigger: %s", a.Raw)
		}
		post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer, "Client-Token", "ct-retry")
		if n := len(s.received()) - before; n != 1 {
			t.Errorf("retried token forwarded %d times, want 1", n)
		}
	})
	t.Run("13 engine timeout", func(t *testing.T) {
		s.set(200, 3*time.Second) // past downstream.timeout 2s
		defer s.set(200, 0)
		post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer).want(t, 503, 800005660, "flow engine unavailable — retry later")
	})
	t.Run("accepted", func(t *testing.T) {
		a := post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer, "Client-Token", "ct-accept")
		a.want(t, 200, 0, "")
		id, _ := a.Data["event_id"].(string)
		if a.Data["triggered"] != true || len(id) != 36 || !bytes.Equal(a.Raw, []byte(`{"msg":"","data":{"triggered":true,"event_id":"`+id+`"},"code":0}`)) {
			t.Fatalf("accepted answer = %s", a.Raw)
		}
		r := lastEvent(t, s)
		if r.Header["Idempotency-Key"] != id || r.Header["Content-Type"] != "application/json" || r.Header["Hookgate-Loop"] != "cred" || r.Header["Path"] != "/events" {
			t.Errorf("forwarded headers = %v", r.Header)
		}
		ev := envelope(t, r)
		if ev["event_id"] != id || ev["table"] != "tbl_menu" || ev["automation"] != "cred" || ev["format"] != "json" ||
			ev["keyword"] != "product" || ev["client_token"] != "ct-accept" || ev["source_ip"] != "127.0.0.1" {
			t.Errorf("envelope = %v", ev)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", ev["received_at"].(string)); err != nil {
			t.Errorf("received_at: %v", err)
		}
		if p, _ := ev["params"].(map[string]any); p["name"] != "Jasmine green" {
			t.Errorf("params = %v", ev["params"])
		}
		if l, _ := ev["loop"].([]any); len(l) != 1 || l[0] != "cred" {
			t.Errorf("loop = %v", ev["loop"])
		}
	})
	t.Run("secrets stay out of the log", func(t *testing.T) {
		g.stop(t) // flushes the log
		log := g.log()
		for _, secret := range []string{tokCred, tokAnon, tokAllow6, credential, "Jasmine"} {
			if strings.Contains(log, secret) {
				t.Errorf("log holds %q", secret)
			}
		}
		if !strings.Contains(log, `"automation":"cred"`) || !strings.Contains(log, `"code":800005649`) {
			t.Errorf("log lacks request lines:\n%s", log)
		}
	})
}

func lastEvent(t *testing.T, s *sink) received {
	t.Helper()
	ev := s.received()
	if len(ev) == 0 {
		t.Fatal("the flow engine received nothing")
	}
	return ev[len(ev)-1]
}

func envelope(t *testing.T, r received) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("event is not JSON: %v: %s", err, r.Body)
	}
	return m
}

// jsonOfSize returns a valid JSON object of exactly n bytes holding kw.
func jsonOfSize(n int, kw string) []byte {
	head := `{"k":"` + kw + `","pad":"`
	tail := `"}`
	b := make([]byte, 0, n)
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte("x"), n-len(head)-len(tail))...)
	return append(b, tail...)
}

// postChunked sends body with Transfer-Encoding: chunked.
func postChunked(t *testing.T, url string, body []byte, headers ...string) answer {
	t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod("POST")
	req.SetRequestURI(url)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	req.SetBodyStream(io.MultiReader(bytes.NewReader(body)), -1)
	if err := client.Do(req, resp); err != nil {
		t.Fatalf("chunked POST: %v", err)
	}
	return decode(t, resp)
}

// TestConcurrentClientToken: 100 concurrent requests with one Client-Token
// fire the automation exactly once.
func TestConcurrentClientToken(t *testing.T) {
	g, s := rowsGateway(t)
	s.set(200, 50*time.Millisecond)
	var wg sync.WaitGroup
	answers := make([]answer, 100)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = post(t, "POST", g.url(tokCred), productBody, "Authorization", "Bearer "+credential, "Client-Token", "one-token")
		}()
	}
	wg.Wait()
	triggered := 0
	for _, a := range answers {
		switch {
		case a.Code == 0 && a.Data["triggered"] == true:
			triggered++
		case a.Code == 0 && a.Data["duplicate"] == true, a.Code == 800005653:
		default:
			t.Errorf("unexpected answer %d %s", a.Status, a.Raw)
		}
	}
	if n := len(s.received()); triggered != 1 || n != 1 {
		t.Fatalf("triggered %d, forwarded %d; want exactly 1 each", triggered, n)
	}
}

// TestClientTokenOutlastsTheWindow: a hand-over that takes longer than
// idempotency_window keeps its Client-Token in flight until the engine
// answers. The claim lapsed at the window before, so a retry sent while
// the engine still held the first event was claimed and forwarded too:
// two triggers of one token.
func TestClientTokenOutlastsTheWindow(t *testing.T) {
	s := startSink(t)
	g := startGateway(t, "idempotency_window: 200ms\n"+strings.ReplaceAll(rowsConfig, "SINK", s.URL))
	s.set(200, 800*time.Millisecond)
	first := make(chan answer, 1)
	go func() { first <- post(t, "POST", g.url(tokAnon), productBody, "Client-Token", "slow-token") }()
	time.Sleep(400 * time.Millisecond) // past the window, the first still at the engine
	post(t, "POST", g.url(tokAnon), productBody, "Client-Token", "slow-token").want(t, 409, 800005653, "a request with this Client-Token is in progress — retry later")
	if a := <-first; a.Code != 0 || a.Data["triggered"] != true {
		t.Fatalf("the first request: %d %s", a.Status, a.Raw)
	}
	if n := len(s.received()); n != 1 {
		t.Fatalf("the engine received %d events; want 1", n)
	}
}

// TestFormats checks each format's envelope and robot detection.
func TestFormats(t *testing.T) {
	g, s := rowsGateway(t)
	robot := `{"msgtype":"markdown","markdown":{"title":"deploy","text":"# done"}}`
	post(t, "POST", g.url(tokText), []byte(robot)).want(t, 200, 0, "")
	ev := envelope(t, lastEvent(t, s))
	if ev["format"] != "text" || ev["params"] != robot || ev["robot_msgtype"] != "markdown" || ev["keyword"] != nil {
		t.Errorf("text robot envelope = %v", ev)
	}
	plain := "{\n  \"note\": \"not a robot\"\n}"
	post(t, "POST", g.url(tokText), []byte(plain)).want(t, 200, 0, "")
	ev = envelope(t, lastEvent(t, s))
	if ev["params"] != plain || ev["robot_msgtype"] != nil {
		t.Errorf("text envelope = %v", ev)
	}
	post(t, "POST", g.url(tokNone), []byte(`{"alert":"disk"}`)).want(t, 200, 0, "")
	r := lastEvent(t, s)
	ev = envelope(t, r)
	if ev["format"] != "none" || ev["params"] != nil || ev["keyword"] != "alert" || !bytes.Contains(r.Body, []byte(`"params":null`)) {
		t.Errorf("none envelope = %s", r.Body)
	}
	// A json body keeps its structure and stays on one line.
	post(t, "POST", g.url(tokAnon), []byte("{ \"a\" : [1, 2],\r\n \"b\": \"x y\" }")).want(t, 200, 0, "")
	r = lastEvent(t, s)
	if !bytes.Contains(r.Body, []byte(`"params":{ "a" : [1, 2],   "b": "x y" }`)) || bytes.ContainsAny(r.Body, "\r\n") {
		t.Errorf("json envelope = %q", r.Body)
	}
}

// TestIPv6Peer checks the allow-list against a real IPv6 peer.
func TestIPv6Peer(t *testing.T) {
	s := startSink(t)
	cfg := strings.ReplaceAll(rowsConfig, "SINK", s.URL)
	cfg = strings.Replace(cfg, `ip_allow: ["2001:db8::/32", "198.51.100.7"]`, `ip_allow: ["::1/128"]`, 1)
	cfg = strings.Replace(cfg, `      - id: anon
        token: `+tokAnon, `      - id: anon
        token: `+tokAnon+`
        ip_allow: ["2001:db8::/32"]`, 1)
	cfg = strings.Replace(cfg, `trusted_proxies: ["127.0.0.1/32"]`, `trusted_proxies: []`, 1)
	cfg = strings.Replace(cfg, "listen: LISTEN", "listen: \"LISTEN\"", 1)
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g := startGatewayAt(t, cfg, addr)
	post(t, "POST", g.url(tokAllow6), productBody).want(t, 200, 0, "")
	if ev := envelope(t, lastEvent(t, s)); ev["source_ip"] != "::1" {
		t.Errorf("source_ip = %v", ev["source_ip"])
	}
	post(t, "POST", g.url(tokAnon), productBody).want(t, 403, 800005650, "IP not in the allow-list — please check")
}

// TestRateLimits uses the default limits: 5/s with a credential, 1/s
// without, 50/s per table.
func TestRateLimits(t *testing.T) {
	s := startSink(t)
	var b strings.Builder
	fmt.Fprintf(&b, "listen: LISTEN\ndownstream: {url: %q}\ntables:\n", s.URL)
	b.WriteString("  - id: small\n    automations:\n")
	fmt.Fprintf(&b, "      - {id: cred, token: %s, credential: %s}\n", tokCred, credential)
	fmt.Fprintf(&b, "      - {id: anon, token: %s}\n", tokAnon)
	b.WriteString("  - id: big\n    automations:\n")
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, "      - {id: a%d, token: tok-big-%02d-0123456789abcdef, credential: %s}\n", i, i, credential)
	}
	g := startGateway(t, b.String())
	bearer := "Bearer " + credential

	// count sends n requests at once and counts the answers; slack is how
	// many tokens a bucket of rate rps refilled while they were sent.
	var slack func(rps float64) int
	count := func(n int, f func(i int) answer) (ok, limited int) {
		start := time.Now()
		defer func() {
			took := time.Since(start)
			slack = func(rps float64) int { return int(took.Seconds()*rps) + 1 }
		}()
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := f(i)
				mu.Lock()
				defer mu.Unlock()
				switch a.Code {
				case 0:
					ok++
				case 800005652:
					limited++
					if ra := a.hdr("Retry-After"); ra == "" || ra == "0" {
						t.Errorf("429 Retry-After = %q", ra)
					}
				default:
					t.Errorf("unexpected %s", a.Raw)
				}
			}()
		}
		wg.Wait()
		return ok, limited
	}
	t.Run("credentialed: burst 5 then 5/s", func(t *testing.T) {
		ok, limited := count(12, func(int) answer { return post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer) })
		if ok < 5 || ok > 5+slack(5)-1 || ok+limited != 12 {
			t.Fatalf("burst: %d admitted, %d limited; want 5 and 7", ok, limited)
		}
		time.Sleep(1 * time.Second)
		ok, _ = count(12, func(int) answer { return post(t, "POST", g.url(tokCred), productBody, "Authorization", bearer) })
		if ok < 4 || ok > 6 {
			t.Fatalf("after 1s: %d admitted, want ≈5", ok)
		}
	})
	t.Run("anonymous: 1/s", func(t *testing.T) {
		ok, _ := count(5, func(int) answer { return post(t, "POST", g.url(tokAnon), productBody) })
		if ok != 1 {
			t.Fatalf("burst: %d admitted, want 1", ok)
		}
		time.Sleep(1100 * time.Millisecond)
		ok, _ = count(5, func(int) answer { return post(t, "POST", g.url(tokAnon), productBody) })
		if ok != 1 {
			t.Fatalf("after 1s: %d admitted, want 1", ok)
		}
	})
	t.Run("table: 50/s across twelve automations", func(t *testing.T) {
		// Twelve automations × a burst of 5 would be 60; the table caps it at 50.
		ok, _ := count(12*8, func(i int) answer {
			return post(t, "POST", g.url(fmt.Sprintf("tok-big-%02d-0123456789abcdef", i%12)), productBody, "Authorization", bearer)
		})
		if ok < 50 || ok > 50+slack(50) {
			t.Fatalf("burst: %d admitted, want 50 (+%d refilled while sending)", ok, slack(50))
		}
		time.Sleep(1 * time.Second)
		ok, _ = count(12*8, func(i int) answer {
			return post(t, "POST", g.url(fmt.Sprintf("tok-big-%02d-0123456789abcdef", i%12)), productBody, "Authorization", bearer)
		})
		if ok < 45 || ok > 55 {
			t.Fatalf("after 1s: %d admitted, want ≈50", ok)
		}
	})
}

// TestSIGTERMInFlight stops the gateway with requests in flight: every one
// is answered, and every event answered code 0 reached the engine.
func TestSIGTERMInFlight(t *testing.T) {
	g, s := rowsGateway(t)
	s.set(200, 800*time.Millisecond)
	sigtermInFlight(t, g, s, 200)
}

// TestSIGTERMInFlightPipelined stops a gateway whose events are
// pipelined (downstream.pipeline: 8) while 200 are in flight, the engine
// taking 20 ms over each, one after another on each connection: every
// request is still answered code 0 and at the engine exactly once.
func TestSIGTERMInFlightPipelined(t *testing.T) {
	s := startSink(t)
	s.set(200, 20*time.Millisecond)
	cfg := strings.ReplaceAll(rowsConfig, `downstream: {url: "SINK", timeout: 2s}`,
		`downstream: {url: "`+s.URL+`", timeout: 2s, pipeline: 8}`)
	g := startGateway(t, cfg)
	sigtermInFlight(t, g, s, 25)
}

// sigtermInFlight sends 200 requests, stops the gateway once arrived of
// them have reached the engine, and checks that every one was answered
// code 0 and reached the engine exactly once.
func sigtermInFlight(t *testing.T, g *gatewayProc, s *sink, arrived int) {
	t.Helper()
	const n = 200
	var wg sync.WaitGroup
	answers := make([]answer, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			req.Header.SetMethod("POST")
			req.SetRequestURI(g.url(tokAnon))
			req.SetBody(productBody)
			if errs[i] = client.Do(req, resp); errs[i] == nil {
				answers[i] = decode(t, resp)
			}
		}()
	}
	// The requests are inside the gateway, waiting on the engine.
	s.waitArrived(t, arrived)
	if err := g.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, g.log())
	}
	wg.Wait()
	accepted := 0
	for i := range answers {
		if errs[i] != nil {
			t.Errorf("request %d not answered: %v", i, errs[i])
			continue
		}
		if answers[i].Code == 0 && answers[i].Data["triggered"] == true {
			accepted++
		}
	}
	if got := len(s.received()); accepted != n || got != n {
		t.Fatalf("answered code 0: %d, received by the engine: %d; want %d each", accepted, got, n)
	}
	// Each answered event is at the engine exactly once.
	seen := map[string]int{}
	for _, r := range s.received() {
		seen[r.Header["Idempotency-Key"]]++
	}
	for _, a := range answers {
		if id, _ := a.Data["event_id"].(string); seen[id] != 1 {
			t.Errorf("event %s reached the engine %d times", id, seen[id])
		}
	}
}

// TestSIGTERMUnderLoadFileSink stops a gateway on the file sink while
// clients send continuously: every event answered code 0 is in the file
// exactly once, and every line is a whole event.
func TestSIGTERMUnderLoadFileSink(t *testing.T) {
	g := startGateway(t, `listen: LISTEN
limits: {table_rps: 1000000, automation_rps: 1000000, anonymous_rps: 1000000}
tables:
  - id: t
    automations:
      - {id: a, token: `+tokAnon+`}
`)
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &fasthttp.Client{}
			for {
				req := fasthttp.AcquireRequest()
				resp := fasthttp.AcquireResponse()
				req.Header.SetMethod("POST")
				req.SetRequestURI(g.url(tokAnon))
				req.SetBody(productBody)
				err := c.DoTimeout(req, resp, 5*time.Second)
				if err != nil {
					return // the gateway has stopped
				}
				var a answer
				if json.Unmarshal(resp.Body(), &a) == nil && a.Code == 0 {
					mu.Lock()
					ids = append(ids, a.Data["event_id"].(string))
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := g.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	wg.Wait()
	data, err := os.ReadFile(filepath.Join(g.dir, "data", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	inFile := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var ev struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("torn line %q: %v", line, err)
		}
		inFile[ev.EventID]++
	}
	if len(ids) < 100 {
		t.Fatalf("only %d events accepted before the stop", len(ids))
	}
	for _, id := range ids {
		if inFile[id] != 1 {
			t.Errorf("event %s answered code 0 is in the file %d times", id, inFile[id])
		}
	}
	t.Logf("%d events answered code 0, %d lines in the file", len(ids), len(inFile))
}

// TestUnixSocketEngine hands events to an engine serving HTTP on a Unix
// socket (downstream.socket): accepted events arrive with the URL's path,
// and an engine gone from the socket is 503, not an accepted event.
func TestUnixSocketEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "engine.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := serveSink(t, ln, "http://engine.local/events")
	cfg := strings.ReplaceAll(rowsConfig, `downstream: {url: "SINK", timeout: 2s}`,
		`downstream: {url: "http://engine.local/events", socket: "`+sock+`", timeout: 2s}`)
	g := startGateway(t, cfg)
	// The start line names the socket (the log is written as it comes).
	waitFor(t, func() bool { return strings.Contains(g.log(), `"downstream_socket":"`+sock+`"`) })
	for range 3 {
		post(t, "POST", g.url(tokAnon), productBody).want(t, 200, 0, "")
	}
	got := s.received()
	if len(got) != 3 || got[2].Header["Path"] != "/events" {
		t.Fatalf("engine on the socket received %d events (last %+v); want 3 at /events", len(got), got)
	}
	if ev := envelope(t, got[2]); ev["automation"] != "anon" {
		t.Errorf("envelope = %v", ev)
	}
	s.srv.Shutdown()
	post(t, "POST", g.url(tokAnon), productBody).want(t, 503, 800005660, "flow engine unavailable — retry later")
	if n := len(s.received()); n != 3 {
		t.Fatalf("engine received %d events after it stopped; want 3", n)
	}
}

// TestPipelinedEngine runs the binary with downstream.pipeline: 8 under 64
// concurrent callers: every accepted event reaches the engine exactly
// once, with the event id its caller was answered, over a few connections.
func TestPipelinedEngine(t *testing.T) {
	s := startSink(t)
	cfg := strings.ReplaceAll(rowsConfig, `downstream: {url: "SINK", timeout: 2s}`,
		`downstream: {url: "`+s.URL+`", timeout: 2s, pipeline: 8}`)
	g := startGateway(t, cfg)
	const callers, each = 64, 20
	ids := make(chan string, callers*each)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range each {
				a := post(t, "POST", g.url(tokAnon), productBody)
				a.want(t, 200, 0, "")
				id, _ := a.Data["event_id"].(string)
				if id == "" {
					t.Errorf("answer data %v has no event_id", a.Data)
				}
				ids <- id
			}
		})
	}
	wg.Wait()
	close(ids)
	got := map[string]int{}
	for _, r := range s.received() {
		got[r.Header["Idempotency-Key"]]++
	}
	n := 0
	for id := range ids {
		n++
		if got[id] != 1 {
			t.Fatalf("event %s answered code 0 reached the engine %d times; want once", id, got[id])
		}
	}
	if n != callers*each || len(got) != n {
		t.Fatalf("%d answered, engine has %d events; want %d each", n, len(got), callers*each)
	}
	if m := s.maxConns.Load(); m > 16 {
		t.Fatalf("engine saw %d connections at once; want few with 8 events in flight on each", m)
	}
	t.Logf("engine connections at once: %d", s.maxConns.Load())
}
