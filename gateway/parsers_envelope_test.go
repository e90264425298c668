package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestEnvelopeHostileHeadersOverTheWire sends requests over loopback to
// a real server whose Client-Token and Hookgate-Loop hold every byte a
// header value may carry (tab, quote, backslash, bytes of invalid
// UTF-8), with a credential and a signature: every event written is one
// line of valid JSON that carries the token and ids as sent (invalid
// UTF-8 as U+FFFD), and no credential, signature or signing secret.
func TestEnvelopeHostileHeadersOverTheWire(t *testing.T) {
	g, cfg, path := fileGateway(t, handlerConfig)
	conn := dialLoopback(t, serveLoopback(t, g, cfg))
	br := bufio.NewReader(conn)
	odd := "a\t\"b\\c\xff\xc3(\xe2\x80\xa8d\u00e9 ,x"
	robot := `{"msgtype":"text","text":{"content":"product \u2028 新品"}}`
	body := `{"product":"x\ny"}`
	gh, _, err := SignedCurl(cfg, "gh", []byte(body), time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	sends := []struct {
		token, body string
		headers     []string
	}{
		{hTokCred, body, []string{"Authorization: Bearer " + hCred}},
		{hTokText, robot, nil},
		{hTokNone, `{"alert":1}`, nil},
		{"tok-gh-0123456789abcdefghijk", body, gh},
	}
	for i, s := range sends {
		var req strings.Builder
		fmt.Fprintf(&req, "POST /webhook/flow/%s HTTP/1.1\r\nHost: gw\r\n", s.token)
		fmt.Fprintf(&req, "Client-Token: %s%d\r\nHookgate-Loop: %s, ,%s\r\n", odd, i, odd, "\xf0\x9f")
		for _, h := range s.headers {
			req.WriteString(h + "\r\n")
		}
		fmt.Fprintf(&req, "Content-Length: %d\r\n\r\n%s", len(s.body), s.body)
		conn.Write([]byte(req.String()))
		if status, code, _ := readAnswer(t, br); status != 200 || code != 0 {
			t.Fatalf("request %d answered %d %d", i, status, code)
		}
	}
	lines := readEvents(t, path)
	if len(lines) != len(sends) {
		t.Fatalf("%d events, want %d", len(lines), len(sends))
	}
	for i, line := range lines {
		var ev struct {
			ClientToken string   `json:"client_token"`
			Loop        []string `json:"loop"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil || !utf8.ValidString(line) {
			t.Fatalf("event %d is not valid JSON (%v): %q", i, err, line)
		}
		wantTok := perByteValid(odd) + fmt.Sprint(i)
		if ev.ClientToken != wantTok {
			t.Errorf("event %d client_token %q, want %q", i, ev.ClientToken, wantTok)
		}
		// The marker's ids are cut at commas and trimmed; the empty one
		// is dropped.
		if len(ev.Loop) != 4 || ev.Loop[0] != perByteValid(strings.TrimSpace(odd[:strings.IndexByte(odd, ',')])) || ev.Loop[1] != "x" || ev.Loop[2] != "\ufffd\ufffd" {
			t.Errorf("event %d loop %q", i, ev.Loop)
		}
		for _, secret := range []string{hCred, "Secret to Everybody", "old-secret", "sha256="} {
			if strings.Contains(line, secret) {
				t.Errorf("event %d holds %q: %s", i, secret, line)
			}
		}
		if bytes.ContainsAny([]byte(line), "\r\n") {
			t.Errorf("event %d is more than one line", i)
		}
	}
	if got := lines[1]; !strings.Contains(got, `"robot_msgtype":"text"`) || !strings.Contains(got, `"params":`+string(appendJSONString(nil, robot))) {
		t.Errorf("the text event: %s", got)
	}
}
