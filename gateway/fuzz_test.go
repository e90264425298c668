package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// seedBodies are real payloads from testdata/.
func seedBodies(f *testing.F) [][]byte {
	f.Helper()
	files, _ := filepath.Glob("testdata/*.json")
	var out [][]byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		f.Fatal("no seed payloads in testdata/")
	}
	return out
}

// FuzzEnvelope: for any valid body, client token and loop marker the
// event parses with encoding/json, is one line, and round-trips params.
func FuzzEnvelope(f *testing.F) {
	for _, b := range seedBodies(f) {
		f.Add(b, "8d3e1f0a-uuid", "a, b", uint8(0))
		f.Add(b, "", "", uint8(1))
		f.Add(b, "tok\"\\\x01", "x,,y", uint8(2))
	}
	g, _, _ := testGateway(f)
	rs := g.routes.Load()
	var routesByFormat = map[string]*route{}
	for _, r := range rs.list {
		routesByFormat[r.format] = r
	}
	f.Fuzz(func(t *testing.T, body []byte, clientToken, loop string, format uint8) {
		if !validJSON(body) {
			return
		}
		r := routesByFormat[[]string{"json", "text", "none"}[format%3]]
		st := &reqState{eventID: []byte("0190b3a4-7c1d-7000-8000-000000000000")}
		now := time.Date(2026, 11, 26, 12, 0, 0, 123e6, time.UTC)
		ev := g.appendEvent(nil, st, r, now, -1, []byte(clientToken), netip.MustParseAddr("2001:db8::1"), []byte(loop), body)
		if bytes.ContainsAny(ev, "\n\r") {
			t.Fatalf("event holds a newline: %s", ev)
		}
		// Numbers as written: a valid body may hold one no float64 holds
		// (1e700), which the event carries as sent.
		var m map[string]any
		if err := decodeNumbers(ev, &m); err != nil {
			t.Fatalf("event does not parse: %v\n%s", err, ev)
		}
		if m["received_at"] != "2026-11-26T12:00:00.123Z" || m["source_ip"] != "2001:db8::1" || m["automation"] != r.id {
			t.Fatalf("envelope fields: %v", m)
		}
		switch r.format {
		case "json":
			var want any
			decodeNumbers(body, &want)
			if !reflect.DeepEqual(m["params"], want) {
				t.Fatalf("params %v, want %v", m["params"], want)
			}
		case "text":
			if m["params"] != string(body) {
				t.Fatalf("text params %q, want %q", m["params"], body)
			}
		case "none":
			if v, ok := m["params"]; !ok || v != nil {
				t.Fatalf("none params = %v", v)
			}
		}
		if clientToken == "" && m["client_token"] != nil {
			t.Fatalf("empty client token became %v", m["client_token"])
		}
		loopIDs, _ := m["loop"].([]any)
		if len(loopIDs) == 0 || loopIDs[len(loopIDs)-1] != r.id {
			t.Fatalf("loop %v does not end with %s", m["loop"], r.id)
		}
	})
}

// knownAnswers are the bodies SPEC §3 allows, by status.
func knownAnswer(status int, body []byte) bool {
	for _, e := range refusals {
		if e.Status == status && bytes.Equal(body, e.body) {
			return true
		}
	}
	if status == 200 {
		return bytes.Equal(body, bodyKeywordMiss) || bytes.Equal(body, bodyDuplicate) ||
			bytes.HasPrefix(body, []byte(`{"msg":"","data":{"triggered":true,"event_id":"`))
	}
	return false
}

// FuzzHandler sends random requests through the real server over an
// in-memory listener: no panic, and every answer is one of SPEC §3's.
func FuzzHandler(f *testing.F) {
	for _, b := range seedBodies(f) {
		f.Add("POST", hTokAnon, "Client-Token: abc", b)
		f.Add("POST", hTokCred, "Authorization: Bearer "+hCred, b)
	}
	f.Add("GET", hTokAnon, "", []byte(`{}`))
	f.Add("POST", hTokText, "Transfer-Encoding: chunked", []byte("5\r\n{\"a\":\r\n0\r\n\r\n"))
	f.Add("POST", "../../etc", "X-Forwarded-For: ::1", []byte(`[]`))
	f.Add("POST", hTokNone, "Hookgate-Loop: a,b,c,d,e,f,g,h", []byte(`{"alert":1}`))

	g, _, logs := testGateway(f)
	cfg, _ := Parse([]byte(handlerConfig), noEnv)
	// Short timeouts: an incomplete request costs the fuzzer a second.
	cfg.Server.ReadTimeout = Duration(500 * time.Millisecond)
	cfg.Server.WriteTimeout = Duration(500 * time.Millisecond)
	srv := g.NewServer(cfg)
	ln := fasthttputil.NewInmemoryListener()
	go srv.Serve(ln)
	f.Cleanup(func() { srv.Shutdown() })

	f.Fuzz(func(t *testing.T, method, token, header string, body []byte) {
		if strings.ContainsAny(method+token, " \r\n") || strings.Contains(header, "\r\n\r\n") {
			return
		}
		c, err := ln.Dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var req bytes.Buffer
		fmt.Fprintf(&req, "%s /webhook/flow/%s HTTP/1.1\r\nHost: gw\r\n", method, token)
		if header != "" {
			req.WriteString(strings.TrimRight(header, "\r\n") + "\r\n")
		}
		if !strings.Contains(strings.ToLower(header), "transfer-encoding") && !strings.Contains(strings.ToLower(header), "content-length") {
			fmt.Fprintf(&req, "Content-Length: %d\r\n", len(body))
		}
		req.WriteString("Connection: close\r\n\r\n")
		req.Write(body)
		go c.Write(req.Bytes())
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(c)); err != nil {
			return // the server may close a connection it can't parse
		}
		if !knownAnswer(resp.StatusCode(), resp.Body()) {
			t.Fatalf("answer %d %q is not one of SPEC §3's", resp.StatusCode(), resp.Body())
		}
		if bytes.Contains(logs.Bytes(), []byte("panic")) {
			t.Fatalf("the handler panicked:\n%s", logs.String())
		}
	})
}

// FuzzTargetPath: the path read from any request-target is a piece of it
// that holds no query or fragment, the whole target's start for the
// origin form.
func FuzzTargetPath(f *testing.F) {
	for _, s := range []string{"/webhook/flow/abc?x=1", "http://h/webhook/flow/a#f", "*", "", "https://", "//x/y"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, uri []byte) {
		p := targetPath(uri)
		if !bytes.Contains(uri, p) || bytes.ContainsAny(p, "?#") {
			t.Fatalf("targetPath(%q) = %q", uri, p)
		}
		if len(uri) > 0 && uri[0] == '/' && !bytes.HasPrefix(uri, p) {
			t.Fatalf("targetPath(%q) = %q, not its start", uri, p)
		}
		if len(p) > 0 && p[0] != '/' {
			t.Fatalf("targetPath(%q) = %q, not a path", uri, p)
		}
	})
}

// decodeNumbers decodes JSON b into v as json.Unmarshal does, but keeps
// numbers as json.Number, so any valid number decodes.
func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("data after the JSON value")
	}
	return nil
}
