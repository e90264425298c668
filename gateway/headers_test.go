package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// proxyConfig makes the tests' peer, loopback, a trusted proxy.
const proxyConfig = `
trusted_proxies: ["127.0.0.0/8"]
limits: {table_rps: 1000000, automation_rps: 1000000, anonymous_rps: 1000000}
tables:
  - id: t
    automations:
      - {id: anon, token: ` + hTokAnon + `}
      - {id: victim, token: tok-victim-0123456789abcdefgh}
      - {id: ipal, token: ` + hTokIP + `, ip_allow: ["10.0.0.0/8"]}
`

// serveLoopback serves g on a loopback listener until the test ends and
// returns its address.
func serveLoopback(t *testing.T, g *Gateway, cfg *Config) string {
	t.Helper()
	srv := g.NewServer(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, srv, func() error { return srv.Serve(ln) })
	return ln.Addr().String()
}

// dialLoopback connects to addr, closes the connection when the test
// ends, and gives it 5 s to be done.
func dialLoopback(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	return conn
}

// readEvents returns the lines of the file sink at path.
func readEvents(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// TestProxyAndLoopHeaders: the headers a proxy or a flow engine's step
// adds are read as one list across their lines (RFC 9110 §5.3), and
// nothing a caller writes in them reaches the event but what SPEC lets
// through.
func TestProxyAndLoopHeaders(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		headers  []string // name, value, …; a name given twice is two lines
		status   int
		code     int64
		sourceIP string   // of the event, when accepted
		loop     []string // of the event, when accepted
	}{
		// An IPv6 zone may hold quotes and commas: believed, it wrote
		// JSON into the event (a second "automation" member, or a line
		// that no longer parses and is lost).
		{"x-real-ip with a zone is not believed", hTokAnon,
			[]string{"X-Real-IP", `fe80::1%","automation":"victim","table":"t","x":"`}, 200, 0, "127.0.0.1", []string{"anon"}},
		{"x-forwarded-for with a zone stops the walk", hTokAnon,
			[]string{"X-Forwarded-For", `fe80::1%"}`}, 200, 0, "127.0.0.1", []string{"anon"}},
		// A proxy that adds a line of its own puts the client it saw last.
		{"x-forwarded-for lines: the proxy's own line first", hTokIP,
			[]string{"X-Forwarded-For", "10.1.2.3", "X-Forwarded-For", "203.0.113.9"}, 403, 800005650, "", nil},
		{"x-forwarded-for lines: an allowed client", hTokIP,
			[]string{"X-Forwarded-For", "203.0.113.9", "X-Forwarded-For", "10.1.2.3"}, 200, 0, "10.1.2.3", []string{"ipal"}},
		{"loop marker: its own id in a second line", hTokAnon,
			[]string{"Hookgate-Loop", "x", "Hookgate-Loop", "anon"}, 508, 800005646, "", nil},
		{"loop marker: eight ids over two lines", hTokAnon,
			[]string{"Hookgate-Loop", "a,b,c,d", "Hookgate-Loop", "e,f,g,h"}, 508, 800005646, "", nil},
		{"loop marker: its own id after an empty line", hTokAnon,
			[]string{"Hookgate-Loop", "", "Hookgate-Loop", "anon"}, 508, 800005646, "", nil},
		{"loop marker: ids after an empty line passed on", hTokAnon,
			[]string{"Hookgate-Loop", "", "Hookgate-Loop", "a"}, 200, 0, "127.0.0.1", []string{"a", "anon"}},
		{"loop marker: the lines' ids passed on", hTokAnon,
			[]string{"Hookgate-Loop", "a", "Hookgate-Loop", "b, c"}, 200, 0, "127.0.0.1", []string{"a", "b", "c", "anon"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, _, path := fileGateway(t, proxyConfig)
			c := newCall()
			c.do(g, "POST", tc.token, bodyProduct, tc.headers...)
			if status, code, data := c.answer(t); status != tc.status || code != tc.code {
				t.Fatalf("answered %d %d %v; want %d %d", status, code, data, tc.status, tc.code)
			}
			if tc.status != 200 {
				return
			}
			lines := readEvents(t, path)
			if len(lines) != 1 {
				t.Fatalf("%d events; want 1", len(lines))
			}
			var ev struct {
				Automation string   `json:"automation"`
				SourceIP   string   `json:"source_ip"`
				Loop       []string `json:"loop"`
			}
			if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
				t.Fatalf("event answered code 0 is not valid JSON (%v): %s", err, lines[0])
			}
			if ev.SourceIP != tc.sourceIP || !slices.Equal(ev.Loop, tc.loop) || ev.Automation != tc.loop[len(tc.loop)-1] {
				t.Fatalf("event has automation %q, source_ip %q, loop %q; want %q, %q", ev.Automation, ev.SourceIP, ev.Loop, tc.sourceIP, tc.loop)
			}
		})
	}
}

// TestForwardedForLinesOverTheWire: fasthttp's server keeps the lines of
// a header apart, and the allow-list reads the client from the last one.
func TestForwardedForLinesOverTheWire(t *testing.T) {
	g, cfg, _ := fileGateway(t, proxyConfig)
	conn := dialLoopback(t, serveLoopback(t, g, cfg))
	body := string(bodyProduct)
	fmt.Fprintf(conn, "POST /webhook/flow/%s HTTP/1.1\r\nHost: gw\r\n"+
		"X-Forwarded-For: 10.1.2.3\r\n"+ // the caller's forgery
		"X-Forwarded-For: 203.0.113.9\r\n"+ // added by the trusted proxy
		"Content-Length: %d\r\n\r\n%s", hTokIP, len(body), body)
	if status, code, _ := readAnswer(t, bufio.NewReader(conn)); status != 403 || code != 800005650 {
		t.Fatalf("caller 203.0.113.9 outside ip_allow 10.0.0.0/8 answered %d %d; want 403 800005650", status, code)
	}
}

// TestLoopLinesOverTheWire: a Hookgate-Loop line left empty, as parsed by
// fasthttp's server, does not hide the lines after it (before, a marker
// naming the automation itself behind an empty line was accepted).
func TestLoopLinesOverTheWire(t *testing.T) {
	g, cfg, _ := fileGateway(t, proxyConfig)
	conn := dialLoopback(t, serveLoopback(t, g, cfg))
	br := bufio.NewReader(conn)
	body := string(bodyProduct)
	for _, tc := range []struct {
		lines  string
		status int
		code   int64
	}{
		{"Hookgate-Loop:\r\nHookgate-Loop: anon\r\n", 508, 800005646},
		{"Hookgate-Loop: \r\nHookgate-Loop: x, anon\r\n", 508, 800005646},
		{"Hookgate-Loop:\r\n", 200, 0},
		{"Hookgate-Loop:\r\nHookgate-Loop: x\r\n", 200, 0},
	} {
		fmt.Fprintf(conn, "POST /webhook/flow/%s HTTP/1.1\r\nHost: gw\r\n%sContent-Length: %d\r\n\r\n%s", hTokAnon, tc.lines, len(body), body)
		if status, code, _ := readAnswer(t, br); status != tc.status || code != tc.code {
			t.Fatalf("%q answered %d %d; want %d %d", tc.lines, status, code, tc.status, tc.code)
		}
	}
}
