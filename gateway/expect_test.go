package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/signature"
)

// TestExpectContinueChecksFirst: a request that sends Expect: 100-continue is
// checked on its headers before it is invited to send its body (SPEC §3:
// no body byte before the header checks), a refused one gets its answer
// and no invitation, and the rate limits are only looked at then: the
// request admitted takes its token once, when its body has come.
func TestExpectContinueChecksFirst(t *testing.T) {
	g, cfg, path := fileGateway(t, `
limits: {table_rps: 1000, automation_rps: 1, anonymous_rps: 1}
tables:
  - id: t
    automations:
      - {id: anon, token: `+hTokAnon+`}
`)
	addr := serveLoopback(t, g, cfg)
	body := string(bodyProduct)
	tests := []struct {
		name    string
		token   string
		length  int
		invited bool // 100 Continue, then the body is sent
		status  int
		code    int64
	}{
		{"unknown token", "no-such-token-0123456789abc", 64 << 20, false, 404, 800004404},
		{"declared over the cap", hTokAnon, 64 << 20, false, 413, 800005647},
		{"admitted: its token taken once the body came", hTokAnon, len(body), true, 200, 0},
		{"the bucket now empty", hTokAnon, len(body), false, 429, 800005652},
	}
	for _, tc := range tests {
		conn := dialLoopback(t, addr)
		fmt.Fprintf(conn, "POST /webhook/flow/%s HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", tc.token, tc.length)
		br := bufio.NewReader(conn)
		if tc.invited {
			line, err := br.ReadString('\n')
			if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
				t.Fatalf("%s: first answer %q (%v); want 100 Continue", tc.name, line, err)
			}
			if blank, _ := br.ReadString('\n'); blank != "\r\n" {
				t.Fatalf("%s: 100 Continue followed by %q", tc.name, blank)
			}
			io.WriteString(conn, body)
		}
		status, code, hdr := readAnswer(t, br)
		if status != tc.status || code != tc.code {
			t.Fatalf("%s: answered %d %d; want %d %d", tc.name, status, code, tc.status, tc.code)
		}
		if !tc.invited && !strings.Contains(hdr, "Connection: close") {
			t.Errorf("%s: a refusal before the body keeps the connection (%q); the body may be on its way", tc.name, hdr)
		}
	}
	if events := readEvents(t, path); len(events) != 1 {
		t.Fatalf("%d events; want 1", len(events))
	}
}

// readAnswer reads one HTTP answer and returns its status, its code and
// its header.
func readAnswer(t *testing.T, br *bufio.Reader) (status int, code int64, header string) {
	t.Helper()
	var hdr strings.Builder
	length := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("answer's header: %q %v", hdr.String(), err)
		}
		if line == "\r\n" {
			break
		}
		hdr.WriteString(line)
		fmt.Sscanf(line, "HTTP/1.1 %d", &status)
		fmt.Sscanf(line, "Content-Length: %d", &length)
	}
	b := make([]byte, length)
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatal(err)
	}
	var a struct{ Code int64 }
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
	return status, a.Code, hdr.String()
}

// TestForgedSignatureTakesNoRateToken: a wrong signature is row 5's
// refusal (SPEC §12), which takes nothing from the buckets (§5), though
// its MAC is known only once the body is read: whoever knows the URL but
// not the secret cannot spend the automation's rate and starve its sender.
func TestForgedSignatureTakesNoRateToken(t *testing.T) {
	const token = "tok-gh-0123456789abcdefghijk"
	g, _, _ := fileGateway(t, `
limits: {table_rps: 1000, automation_rps: 1, anonymous_rps: 1}
tables:
  - id: t
    automations:
      - id: gh
        token: `+token+`
        verify: {scheme: github, secrets: ["It's a Secret to Everybody"]}
`)
	c := newCall()
	forged := signedHeaders(t, signature.Config{Scheme: "github", Secrets: []string{"not the secret"}}, bodyProduct, c.ctx.Time(), "")
	for range 3 {
		c.do(g, "POST", token, bodyProduct, forged...)
		if status, code, _ := c.answer(t); status != 401 || code != 800005649 {
			t.Fatalf("forged signature: %d %d; want 401 800005649", status, code)
		}
	}
	// A forgery whose body ends before its MAC can be checked — cut
	// short, or chunked past the cap — is refused for its body, and takes
	// no token either.
	c.declared = len(bodyProduct) + 100
	c.do(g, "POST", token, bodyProduct, forged...)
	c.declared = 0
	if status, code, _ := c.answer(t); status != 400 || code != 800006003 {
		t.Fatalf("forged signature, body cut short: %d %d; want 400 800006003", status, code)
	}
	c.chunked = true
	c.do(g, "POST", token, jsonOfSizeForTest(4<<20+1, "product"), forged...)
	c.chunked = false
	if status, code, _ := c.answer(t); status != 413 || code != 800005647 {
		t.Fatalf("forged signature, chunked body over the cap: %d %d %s; want 413", status, code, c.ctx.Response.Body())
	}
	good := signedHeaders(t, signature.Config{Scheme: "github", Secrets: []string{"It's a Secret to Everybody"}}, bodyProduct, c.ctx.Time(), "")
	c.do(g, "POST", token, bodyProduct, good...)
	if status, code, _ := c.answer(t); status != 200 || code != 0 {
		t.Fatalf("genuine delivery after forged ones: %d %d %s; want 200 code 0", status, code, c.ctx.Response.Body())
	}
	// Its token was taken: the rate still holds for signed deliveries.
	c.do(g, "POST", token, bodyProduct, good...)
	if status, code, _ := c.answer(t); status != 429 || code != 800005652 {
		t.Fatalf("second genuine delivery within the second: %d %d; want 429 800005652", status, code)
	}
}
