package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hookgate/hookgate/downstream"
	"github.com/hookgate/hookgate/idempotency"
	"github.com/hookgate/hookgate/signature"
)

const (
	hTokCred = "tok-cred-0123456789abcdefghij"
	hTokAnon = "tok-anon-0123456789abcdefghij"
	hTokText = "tok-text-0123456789abcdefghij"
	hTokNone = "tok-none-0123456789abcdefghij"
	hTokOff  = "tok-off-0123456789abcdefghijk"
	hTokIP   = "tok-ipal-0123456789abcdefghij"
	hTokSlow = "tok-slow-0123456789abcdefghij"
	hCred    = "credential-0123"
)

const handlerConfig = `
limits: {table_rps: 1000000, automation_rps: 1000000, anonymous_rps: 1000000}
tables:
  - id: t
    automations:
      - {id: cred, token: ` + hTokCred + `, credential: ` + hCred + `, keywords: [product, 新品]}
      - {id: anon, token: ` + hTokAnon + `}
      - {id: text, token: ` + hTokText + `, format: text}
      - {id: none, token: ` + hTokNone + `, format: none, keywords: [alert]}
      - {id: off, token: ` + hTokOff + `, enabled: false}
      - {id: ipal, token: ` + hTokIP + `, ip_allow: ["10.0.0.0/8"]}
      - id: gh
        token: tok-gh-0123456789abcdefghijk
        verify: {scheme: github, secrets: ["old-secret", "It's a Secret to Everybody"]}
      - id: sw
        token: tok-sw-0123456789abcdefghijk
        verify: {scheme: standard-webhooks, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}
  - id: slow
    rps: 1
    automations:
      - {id: slow, token: ` + hTokSlow + `, rps: 1}
`

// testGateway is a Gateway of handlerConfig on a real file sink, logging
// JSON to a buffer.
func testGateway(t testing.TB) (*Gateway, *downstream.File, *bytes.Buffer) {
	t.Helper()
	g, _, sink, _, logs := newTestGateway(t, handlerConfig)
	return g, sink, logs
}

// fileGateway is a Gateway of the given configuration on a real file
// sink; it returns the sink's path.
func fileGateway(t testing.TB, config string) (*Gateway, *Config, string) {
	t.Helper()
	g, cfg, _, path, _ := newTestGateway(t, config)
	return g, cfg, path
}

// newTestGateway is a Gateway of config on a real file sink at path, in
// a temporary directory, logging JSON to a buffer; both are closed when
// the test ends.
func newTestGateway(t testing.TB, config string) (g *Gateway, cfg *Config, sink *downstream.File, path string, logs *bytes.Buffer) {
	t.Helper()
	cfg, err := Parse([]byte(config), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "events.jsonl")
	sink, err = downstream.OpenFile(path, cfg.MaxEventBytes())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	logs = new(bytes.Buffer)
	enc := zap.NewProductionEncoderConfig()
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(logs), zapcore.InfoLevel)
	if g, err = New(cfg, Options{Forwarder: sink, Log: zap.New(core)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g, cfg, sink, path, logs
}

// call is one request driven straight through Handle, with the body as a
// stream, as fasthttp's server hands it over with StreamRequestBody.
type call struct {
	ctx    fasthttp.RequestCtx
	req    fasthttp.Request
	body   bytes.Reader
	remote net.TCPAddr
	uri    []byte
	// chunked sends the body without a declared length.
	chunked bool
	// declared, when not 0, is the length declared instead of the
	// body's: more is a body cut short.
	declared int
}

func newCall() *call {
	c := &call{remote: net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}}
	c.ctx.Init(&c.req, &c.remote, nil)
	return c
}

// do runs one request; headers alternate name and value.
func (c *call) do(g *Gateway, method, token string, body []byte, headers ...string) {
	c.head(method, token, headers)
	c.body.Reset(body)
	size := len(body)
	if c.declared != 0 {
		size = c.declared
	}
	if c.chunked {
		size = -1
	}
	c.ctx.Request.SetBodyStream(&c.body, size)
	g.Handle(&c.ctx)
}

// hijackField is where a RequestCtx keeps the handler registered by
// Hijack, which fasthttp's server runs after the request handler returns
// and offers no other way to reach.
var hijackField = func() reflect.StructField {
	f, _ := reflect.TypeFor[fasthttp.RequestCtx]().FieldByName("hijackHandler")
	return f
}()

// hijacked runs, on conn, the hijack handler the last request registered,
// as fasthttp's server would, and reports whether there was one.
func (c *call) hijacked(t testing.TB, conn net.Conn) bool {
	if hijackField.Type != reflect.TypeFor[fasthttp.HijackHandler]() {
		t.Fatalf("fasthttp.RequestCtx has no field hijackHandler of type HijackHandler")
	}
	h := *(*fasthttp.HijackHandler)(unsafe.Add(unsafe.Pointer(&c.ctx), hijackField.Offset))
	if h == nil {
		return false
	}
	c.ctx.Hijack(nil)
	h(conn)
	return true
}

// bufConn is a connection whose writes go to a buffer and whose reads
// end at once.
type bufConn struct{ out bytes.Buffer }

func (b *bufConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (b *bufConn) Write(p []byte) (int, error)      { return b.out.Write(p) }
func (b *bufConn) Close() error                     { return nil }
func (b *bufConn) LocalAddr() net.Addr              { return nil }
func (b *bufConn) RemoteAddr() net.Addr             { return nil }
func (b *bufConn) SetDeadline(time.Time) error      { return nil }
func (b *bufConn) SetReadDeadline(time.Time) error  { return nil }
func (b *bufConn) SetWriteDeadline(time.Time) error { return nil }

// expect runs g's ExpectHandler on a POST's headers, declaring length
// bytes, as fasthttp does before the body of a request that sent Expect:
// 100-continue, and returns its status.
func (c *call) expect(g *Gateway, token string, length int, headers ...string) int {
	c.head(fasthttp.MethodPost, token, headers)
	c.ctx.Request.Header.Set(fasthttp.HeaderExpect, "100-continue")
	c.ctx.Request.Header.SetContentLength(length)
	return g.Expect(&c.ctx)
}

// head resets the call and sets its request line and headers.
func (c *call) head(method, token string, headers []string) {
	c.ctx.Request.Reset()
	c.ctx.Response.Reset()
	c.ctx.Request.Header.SetMethod(method)
	c.uri = append(append(c.uri[:0], webhookPrefix...), token...)
	c.ctx.Request.SetRequestURIBytes(c.uri)
	for i := 0; i+1 < len(headers); i += 2 {
		c.ctx.Request.Header.Add(headers[i], headers[i+1]) // a name given twice is two lines
	}
}

func (c *call) answer(t testing.TB) (status int, code int64, data map[string]any) {
	t.Helper()
	var a struct {
		Msg  string         `json:"msg"`
		Data map[string]any `json:"data"`
		Code int64          `json:"code"`
	}
	if err := json.Unmarshal(c.ctx.Response.Body(), &a); err != nil {
		t.Fatalf("answer %q: %v", c.ctx.Response.Body(), err)
	}
	return c.ctx.Response.StatusCode(), a.Code, a.Data
}

var (
	bodyProduct = []byte(`{"name":"Jasmine green","event":"new product"}`)
	bodyMiss    = []byte(`{"name":"Jasmine green"}`)
	bodyRobot   = []byte(`{"msgtype":"text","text":{"content":"hello"}}`)
	bodyAlert   = []byte(`{"alert":"disk"}`)
	bodyBroken  = []byte(`{"a":`)
)

func TestHandlerPaths(t *testing.T) {
	g, _, _ := testGateway(t)
	c := newCall()
	bearer := "Bearer " + hCred
	tests := []struct {
		name    string
		method  string
		token   string
		body    []byte
		headers []string
		status  int
		code    int64
	}{
		{"accept json", "POST", hTokCred, bodyProduct, []string{"Authorization", bearer}, 200, 0},
		{"accept text", "POST", hTokText, bodyRobot, nil, 200, 0},
		{"accept none", "POST", hTokNone, []byte(`{"alert":1}`), nil, 200, 0},
		{"keyword miss", "POST", hTokCred, bodyMiss, []string{"Authorization", bearer}, 200, 0},
		{"method", "GET", hTokCred, nil, nil, 405, 800004405},
		{"not found", "POST", "nope-0123456789abcdefghijk", bodyProduct, nil, 404, 800004404},
		{"disabled", "POST", hTokOff, bodyProduct, nil, 403, 800004509},
		{"ip", "POST", hTokIP, bodyProduct, nil, 403, 800005650},
		{"credential", "POST", hTokCred, bodyProduct, []string{"Authorization", "Bearer x"}, 401, 800005649},
		{"loop", "POST", hTokCred, bodyProduct, []string{"Authorization", bearer, "Hookgate-Loop", "x,cred"}, 508, 800005646},
		{"invalid json", "POST", hTokCred, []byte(`{"product":`), []string{"Authorization", bearer}, 400, 800006003},
		// The token is matched as sent: a query after it is fine, a
		// percent-encoded or extended token names no automation.
		{"query", "POST", hTokText + "?source=erp&x=%2F", bodyRobot, nil, 200, 0},
		{"fragment", "POST", hTokText + "#x", bodyRobot, nil, 200, 0},
		{"encoded", "POST", "%" + fmt.Sprintf("%X", hTokText[0]) + hTokText[1:], bodyRobot, nil, 404, 800004404},
		{"extended", "POST", hTokText + "/x", bodyRobot, nil, 404, 800004404},
		// Credentials and loop markers are found whatever case the
		// caller writes their names in.
		{"header case", "POST", hTokCred, bodyProduct, []string{"AUTHORIZATION", bearer}, 200, 0},
		{"loop case", "POST", hTokCred, bodyProduct, []string{"Authorization", bearer, "hookgate-LOOP", "cred"}, 508, 800005646},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.do(g, tc.method, tc.token, tc.body, tc.headers...)
			status, code, _ := c.answer(t)
			if status != tc.status || code != tc.code {
				t.Fatalf("got %d %d, want %d %d: %s", status, code, tc.status, tc.code, c.ctx.Response.Body())
			}
		})
	}
}

// TestLogLevel: refusals, 508 included, log at debug; only failures at
// error.
func TestLogLevel(t *testing.T) {
	for _, c := range []struct {
		e    *Refusal
		want zapcore.Level
	}{
		{ErrLoop, zapcore.DebugLevel}, {ErrCredential, zapcore.DebugLevel}, {ErrRateLimited, zapcore.DebugLevel},
		{ErrNotFound, zapcore.DebugLevel}, {ErrUnavailable, zapcore.ErrorLevel},
		{nil, zapcore.InfoLevel}, // code 0
	} {
		out := &outcome{refusal: c.e}
		if got := logLevel(out); got != c.want {
			t.Errorf("code %d status %d logs at %v, want %v", out.code(), out.status(), got, c.want)
		}
	}
}

// TestTargetPath reads the path out of every request-target form.
func TestTargetPath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/webhook/flow/abc", "/webhook/flow/abc"},
		{"/webhook/flow/abc?x=1", "/webhook/flow/abc"},
		{"/webhook/flow/abc#f", "/webhook/flow/abc"},
		{"/webhook/flow/abc?x=/webhook/flow/zzz", "/webhook/flow/abc"},
		{"http://gw.example.com/webhook/flow/abc?x", "/webhook/flow/abc"},
		{"https://gw.example.com:8443/webhook/flow/abc", "/webhook/flow/abc"},
		{"http://gw.example.com", ""},
		{"*", ""},
		{"", ""},
		{"?x", ""},
	} {
		if got := string(targetPath([]byte(c.in))); got != c.want {
			t.Errorf("targetPath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestCanonicalHeaderNames checks the header names the request path
// peeks and sets without normalizing against fasthttp's normalization:
// one spelled otherwise would never be found.
func TestCanonicalHeaderNames(t *testing.T) {
	for _, k := range [][]byte{strRetryAfter, strWWWAuthenticate, strAllow, strAuthorization,
		strClientToken, strLoop, strXFF, strXRealIP} {
		var h fasthttp.RequestHeader
		h.Set(strings.ToLower(string(k)), "v")
		var got []string
		for key := range h.All() {
			got = append(got, string(key))
		}
		if len(got) != 1 || got[0] != string(k) {
			t.Errorf("%q is not canonical: fasthttp writes %q", k, got)
		}
	}
}

// TestHandlerZeroAllocs: no path allocates per request in steady state.
// Logging is on (JSON into a buffer) and accepted events go through the
// real file sink.
func TestHandlerZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	g, _, logs := testGateway(t)
	c := newCall()
	bearer := "Bearer " + hCred
	big := jsonOfSizeForTest(64<<10, "product")
	// Over maxPooledBody: the body and the event are borrowed from the
	// gateway's bigBuffers, and up to the 4 MiB cap.
	huge := jsonOfSizeForTest(maxPooledBody+1, "product")
	largest := jsonOfSizeForTest(4<<20, "product")
	overCap := jsonOfSizeForTest(4<<20+1, "product")
	ghSig := signedHeaders(t, signature.Config{Scheme: "github", Secrets: []string{"It's a Secret to Everybody"}}, bodyProduct, c.ctx.Time(), "")
	// Each standard-webhooks delivery id is the idempotency key: many ids,
	// each signed, so the accept path is measured, not the duplicate one.
	var swSig []string
	var swIDs []string
	swSigs := map[string]string{}
	for i := 0; i < 300; i++ {
		id := fmt.Sprintf("msg_%04d", i)
		h := signedHeaders(t, signature.Config{Scheme: "standard-webhooks", Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, bodyProduct, c.ctx.Time(), id)
		swSigs[id] = h[5]
		swIDs = append(swIDs, id)
		swSig = h
	}

	// A token another request holds in flight, and a gateway whose sink
	// is closed: the 409 and 503 paths.
	if _, res := g.tokens.Claim("", "anon", []byte("held"), time.Now().UnixNano()); res != idempotency.Claimed {
		t.Fatalf("claiming the held token: %v", res)
	}
	down, downSink, _ := testGateway(t)
	downSink.Close()
	// Behind a trusted proxy (loopback), whose X-Forwarded-For lines are
	// read from the last.
	proxied, _, _ := fileGateway(t, proxyConfig)
	expectStatus := 0
	var lingered bufConn

	n := 0
	paths := []struct {
		name string
		run  func()
	}{
		{"accept json", func() { c.do(g, "POST", hTokCred, bodyProduct, "Authorization", bearer) }},
		{"accept json 64 KiB", func() { c.do(g, "POST", hTokCred, big, "Authorization", bearer) }},
		{"accept json 1 MiB + 1", func() { c.do(g, "POST", hTokCred, huge, "Authorization", bearer) }},
		{"accept json 4 MiB", func() { c.do(g, "POST", hTokCred, largest, "Authorization", bearer) }},
		{"accept json 4 MiB chunked", func() {
			c.chunked = true
			c.do(g, "POST", hTokCred, largest, "Authorization", bearer)
			c.chunked = false
		}},
		{"accept text robot", func() { c.do(g, "POST", hTokText, bodyRobot, "Client-Token", "") }},
		{"accept none", func() { c.do(g, "POST", hTokNone, bodyAlert) }},
		{"accept with client-token", func() {
			n++
			tok := tokenBuf[:0]
			tok = appendInt(tok, n)
			c.do(g, "POST", hTokAnon, bodyProduct, "Client-Token", b2s(tok))
		}},
		{"duplicate", func() { c.do(g, "POST", hTokAnon, bodyProduct, "Client-Token", "dup-fixed") }},
		{"keyword miss", func() { c.do(g, "POST", hTokCred, bodyMiss, "Authorization", bearer) }},
		{"405", func() { c.do(g, "GET", hTokCred, nil) }},
		{"404", func() { c.do(g, "POST", "nope-0123456789abcdefghijk", bodyProduct) }},
		{"404 chunked, drained before the answer", func() {
			c.chunked = true
			c.do(g, "POST", "nope-0123456789abcdefghijk", big)
			c.chunked = false
		}},
		{"403 disabled", func() { c.do(g, "POST", hTokOff, bodyProduct) }},
		{"403 ip", func() { c.do(g, "POST", hTokIP, bodyProduct) }},
		{"401", func() { c.do(g, "POST", hTokCred, bodyProduct, "Authorization", "Bearer nope") }},
		{"508", func() { c.do(g, "POST", hTokCred, bodyProduct, "Authorization", bearer, "Hookgate-Loop", "a,cred") }},
		{"429", func() { c.do(g, "POST", hTokSlow, bodyProduct) }},
		{"409 in flight", func() { c.do(g, "POST", hTokAnon, bodyProduct, "Client-Token", "held") }},
		{"503 engine unavailable", func() { c.do(down, "POST", hTokCred, bodyProduct, "Authorization", bearer) }},
		{"400", func() { c.do(g, "POST", hTokCred, bodyBroken, "Authorization", bearer) }},
		{"accept github signature", func() { c.do(g, "POST", "tok-gh-0123456789abcdefghijk", bodyProduct, ghSig...) }},
		{"accept standard-webhooks signature", func() {
			n++
			id := swIDs[n%len(swIDs)]
			swSig[1], swSig[5] = id, swSigs[id]
			c.do(g, "POST", "tok-sw-0123456789abcdefghijk", bodyProduct, swSig...)
		}},
		{"401 bad signature", func() { c.do(g, "POST", "tok-gh-0123456789abcdefghijk", bodyMiss, ghSig...) }},
		{"401 missing signature", func() { c.do(g, "POST", "tok-gh-0123456789abcdefghijk", bodyProduct) }},
		{"508 loop marker over two lines", func() {
			c.do(g, "POST", hTokCred, bodyProduct, "Authorization", bearer, "Hookgate-Loop", "a", "Hookgate-Loop", "cred")
		}},
		{"accept loop marker over two lines", func() {
			c.do(g, "POST", hTokCred, bodyProduct, "Authorization", bearer, "Hookgate-Loop", "a", "Hookgate-Loop", "b")
		}},
		{"accept through a trusted proxy, x-forwarded-for over two lines", func() {
			c.do(proxied, "POST", hTokIP, bodyProduct, "X-Forwarded-For", "203.0.113.9", "X-Forwarded-For", "10.1.2.3")
		}},
		{"accept through a trusted proxy, x-forwarded-for entries with ports", func() {
			c.do(proxied, "POST", hTokIP, bodyProduct, "X-Forwarded-For", "203.0.113.9:51234, 10.1.2.3:443")
		}},
		{"403 through a trusted proxy that writes unknown for the client", func() {
			c.do(proxied, "POST", hTokIP, bodyProduct, "X-Forwarded-For", "unknown")
		}},
		{"expect: 100 continue", func() { expectStatus = c.expect(g, hTokCred, len(bodyProduct), "Authorization", bearer) }},
		{"404 expect", func() { expectStatus = c.expect(g, "nope-0123456789abcdefghijk", len(bodyProduct)) }},
		{"413 chunked, cut off at the cap", func() {
			c.chunked = true
			c.do(g, "POST", hTokCred, overCap, "Authorization", bearer)
			c.chunked = false
		}},
		{"413 expect", func() { expectStatus = c.expect(g, hTokCred, 64<<20, "Authorization", bearer) }},
		// Declared longer than fasthttp drains itself: the answer is
		// written and the body drained by the hijack handler (linger).
		{"404 lingered, answered and drained after", func() {
			c.do(g, "POST", "nope-0123456789abcdefghijk", huge)
			lingered.out.Reset()
			if !c.hijacked(t, &lingered) {
				t.Fatal("the request did not linger")
			}
		}},
		{"413 declared past what lingers, closed unread", func() {
			c.declared = 64 << 20
			c.do(g, "POST", hTokCred, bodyProduct, "Authorization", bearer)
			c.declared = 0
		}},
		{"400 signed, body cut short before its MAC", func() {
			c.declared = len(bodyProduct) + 100
			c.do(g, "POST", "tok-gh-0123456789abcdefghijk", bodyProduct, ghSig...)
			c.declared = 0
		}},
		{"508 loop marker after an empty line", func() {
			c.do(g, "POST", hTokCred, bodyProduct, "Authorization", bearer, "Hookgate-Loop", "", "Hookgate-Loop", "cred")
		}},
		{"413 lingered, declared over the cap", func() {
			c.do(g, "POST", hTokCred, overCap, "Authorization", bearer)
			lingered.out.Reset()
			if !c.hijacked(t, &lingered) {
				t.Fatal("the request did not linger")
			}
		}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			for i := 0; i < 20; i++ { // warm the pools and buffers
				p.run()
			}
			if allocs := testing.AllocsPerRun(200, p.run); allocs != 0 {
				t.Errorf("%.2f allocations per request, want 0", allocs)
			}
			// A path named by its status answered with it.
			if want, err := strconv.Atoi(strings.SplitN(p.name, " ", 2)[0]); err == nil && c.ctx.Response.StatusCode() != want {
				t.Errorf("the path measured answered %d: %s", c.ctx.Response.StatusCode(), c.ctx.Response.Body())
			}
			if (strings.Contains(p.name, "drained") || strings.Contains(p.name, "lingered")) && c.body.Len() != 0 {
				t.Errorf("%d bytes of the body left unread", c.body.Len())
			}
			if strings.Contains(p.name, "lingered") {
				ans := lingered.out.String()
				if !strings.HasPrefix(ans, "HTTP/1.1 "+strings.SplitN(p.name, " ", 2)[0]+" ") || !strings.Contains(ans, "Connection: close\r\n") {
					t.Errorf("the lingering answer written: %q", ans)
				}
			}
			if strings.Contains(p.name, "expect") {
				want := fasthttp.StatusContinue
				if n, err := strconv.Atoi(strings.SplitN(p.name, " ", 2)[0]); err == nil {
					want = n
				}
				if expectStatus != want {
					t.Errorf("Expect returned %d: %s; want %d", expectStatus, c.ctx.Response.Body(), want)
				}
			}
			if strings.HasPrefix(p.name, "accept") {
				if _, code, data := c.answer(t); code != 0 || data["triggered"] != true {
					t.Errorf("the path measured did not trigger: %s", c.ctx.Response.Body())
				}
			}
		})
	}
	if logs.Len() == 0 {
		t.Error("nothing was logged")
	}
}

var tokenBuf = make([]byte, 0, 32)

func appendInt(dst []byte, n int) []byte {
	if n >= 10 {
		dst = appendInt(dst, n/10)
	}
	return append(dst, byte('0'+n%10))
}

func jsonOfSizeForTest(n int, kw string) []byte {
	head := `{"k":"` + kw + `","pad":"`
	b := append([]byte(head), bytes.Repeat([]byte("x"), n-len(head)-2)...)
	return append(b, `"}`...)
}

// TestBigBodies: bodies over maxPooledBody, declared or chunked, are read
// and forwarded whole through buffers the gateway keeps for the next
// such request, and the small bodies between them are too.
func TestBigBodies(t *testing.T) {
	g, _, _ := testGateway(t)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	sink, err := downstream.OpenFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	g.fwd = sink
	c := newCall()
	bearer := "Bearer " + hCred
	var sent [][]byte
	var bigRequests uint64
	for i, tc := range []struct {
		name    string
		size    int
		chunked bool
	}{
		{"declared, 1 MiB + 1", maxPooledBody + 1, false},
		{"small after a big one", 100, false},
		{"chunked, 4 MiB", 4 << 20, true},
		{"declared, 4 MiB", 4 << 20, false},
		{"chunked, grows past the pooled size", maxPooledBody + 4096, true},
		{"chunked, small", 100, true},
		{"declared, 2 MiB", 2 << 20, false},
		{"declared, under the pooled size, its event over", maxPooledBody - 1000, false},
	} {
		body := jsonOfSizeForTest(tc.size, "product")
		body[len(body)-3] = byte('a' + i) // a stale buffer would show
		c.chunked = tc.chunked
		c.do(g, "POST", hTokCred, body, "Authorization", bearer)
		if status, code, data := c.answer(t); status != 200 || code != 0 || data["triggered"] != true {
			t.Fatalf("%s: %d %d %v", tc.name, status, code, data)
		}
		sent = append(sent, body)
		if tc.size+bigSlack > maxPooledBody {
			bigRequests++
		}
	}
	c.chunked = false
	if n := g.big.len(); n == 0 {
		t.Error("no big buffer was kept for the next large body")
	}
	// The janitor learns from this count that big buffers are in use.
	if got := g.bigBodies.Load(); got != bigRequests {
		t.Errorf("%d requests counted as using big buffers, want %d", got, bigRequests)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if len(lines) != len(sent) {
		t.Fatalf("%d events forwarded, want %d", len(lines), len(sent))
	}
	// The sinks size what they keep by it (the file sink's batch buffers).
	maxEvent := (&Config{MaxBodyBytes: DefaultMaxBodyBytes}).MaxEventBytes()
	for i, line := range lines {
		var ev struct{ Params json.RawMessage }
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if len(line) > maxEvent {
			t.Errorf("event %d: %d bytes, over MaxEventBytes %d", i, len(line), maxEvent)
		}
		if !bytes.Equal(ev.Params, sent[i]) {
			t.Errorf("event %d: params of %d bytes differ from the %d-byte body sent", i, len(ev.Params), len(sent[i]))
		}
	}
}

// TestBigBuffers: the kept buffers stay within their byte budget, one too
// small for a need is replaced, and drain lets them all go.
func TestBigBuffers(t *testing.T) {
	var p bigBuffers
	const size = 4 << 20
	for i := 0; i < bigBufferBytes/size+3; i++ {
		p.put(make([]byte, 0, size))
	}
	if got, want := p.len(), bigBufferBytes/size; got != want {
		t.Errorf("kept %d buffers of 4 MiB, want %d (the budget)", got, want)
	}
	b := p.get(100, size)
	if cap(b) != size || len(b) != 0 {
		t.Errorf("get returned len %d cap %d, want a kept empty buffer of %d", len(b), cap(b), size)
	}
	p.put(b)
	if b := p.get(size+1, size+2); cap(b) < size+1 {
		t.Errorf("need %d: got cap %d", size+1, cap(b))
	}
	p.drain()
	if p.len() != 0 || p.held != 0 {
		t.Errorf("after drain: %d buffers, %d bytes held", p.len(), p.held)
	}
	if b := p.get(10, 20); cap(b) != 20 {
		t.Errorf("empty pool: got cap %d, want a new buffer of 20", cap(b))
	}
}

// TestBigBufferFor: a big buffer is sized by what it must hold, rounded up
// to a power of two and bounded by what serves any body under the cap, not
// by the cap alone: a body of a little over 1 MiB under a 1 GiB cap took
// two buffers of 1 GiB.
func TestBigBufferFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name          string
		need, maxBody int
		want          int
	}{
		{"just over the pooled size", mib + 1, 4 * mib, 2 * mib},
		{"its event", mib + bigSlack, 4 * mib, 2 * mib},
		{"past half the cap: one that serves any", 2*mib + 1, 4 * mib, bigBufferSize(4 * mib)},
		{"the largest body", 4*mib + 1, 4 * mib, bigBufferSize(4 * mib)},
		{"a huge cap", mib + 1, 1 << 30, 2 * mib},
		{"a huge cap, 3 MiB", 3 * mib, 32 * mib, 4 * mib},
		{"a power of two", 8 * mib, 32 * mib, 8 * mib},
		{"an escaped event past the cap", 9 * mib, 4 * mib, 9 * mib},
	}
	for _, tc := range tests {
		if got := bigBufferFor(tc.need, tc.maxBody); got != tc.want {
			t.Errorf("%s: bigBufferFor(%d, %d) = %d; want %d", tc.name, tc.need, tc.maxBody, got, tc.want)
		}
	}
}

// TestBigBuffersOfSeveralSizes: get takes the kept buffer nearest the top
// that is large enough, leaving the smaller ones for smaller needs.
func TestBigBuffersOfSeveralSizes(t *testing.T) {
	var p bigBuffers
	const mib = 1 << 20
	for _, size := range []int{2 * mib, 8 * mib, 2 * mib} {
		p.put(make([]byte, 0, size))
	}
	if b := p.get(3*mib, 4*mib); cap(b) != 8*mib {
		t.Fatalf("need 3 MiB: got a buffer of %d; want the kept 8 MiB one", cap(b))
	}
	if p.len() != 2 || p.held != 4*mib {
		t.Fatalf("after taking 8 MiB: %d kept, %d bytes; want the two of 2 MiB", p.len(), p.held)
	}
	if b := p.get(3*mib, 4*mib); cap(b) != 4*mib {
		t.Fatalf("need 3 MiB, none kept fits: got %d; want a new one of 4 MiB", cap(b))
	}
	for range 2 {
		if b := p.get(mib+1, 2*mib); cap(b) != 2*mib {
			t.Fatalf("need 1 MiB + 1: got %d; want a kept 2 MiB one", cap(b))
		}
	}
	if p.len() != 0 || p.held != 0 {
		t.Fatalf("%d kept, %d bytes; want none", p.len(), p.held)
	}
}

// TestBigBodyAllocatesItsSize: under a raised cap, a body of a little over
// 1 MiB allocates buffers of its size, not of the cap's.
func TestBigBodyAllocatesItsSize(t *testing.T) {
	g, _, _ := fileGateway(t, `
max_body_bytes: 33554432
limits: {table_rps: 1000000, automation_rps: 1000000, anonymous_rps: 1000000}
tables:
  - id: t
    automations:
      - {id: anon, token: `+hTokAnon+`}
`)
	c := newCall()
	body := jsonOfSizeForTest(maxPooledBody+1, "x")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c.do(g, "POST", hTokAnon, body)
	runtime.ReadMemStats(&after)
	if status, code, _ := c.answer(t); status != 200 || code != 0 {
		t.Fatalf("%d %d", status, code)
	}
	// Two buffers of 2 MiB, body and event, and what the sink copies.
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Fatalf("one %d-byte body under a 32 MiB cap allocated %d MiB", len(body), got>>20)
	}
}

// TestBigBuffersTrim: trim lets go of exactly the buffers that stayed
// free since the last trim, the longest kept first.
func TestBigBuffersTrim(t *testing.T) {
	var p bigBuffers
	const size = 2 << 20
	for i := 0; i < 10; i++ {
		p.put(make([]byte, 0, size))
	}
	if freed := p.trim(); freed != 0 {
		t.Errorf("first trim freed %d bytes: buffers put back in its interval count as used", freed)
	}
	var out [][]byte
	for i := 0; i < 3; i++ { // three in use at once: seven never were
		out = append(out, p.get(size, size))
	}
	for _, b := range out {
		p.put(b)
	}
	if freed := p.trim(); freed != 7*size {
		t.Errorf("trim after three were used freed %d bytes, want %d", freed, 7*size)
	}
	if p.len() != 3 || p.held != 3*size {
		t.Errorf("after trim: %d buffers, %d bytes held; want 3, %d", p.len(), p.held, 3*size)
	}
	if b := p.get(size, size); &b[:1][0] != &out[2][:1][0] {
		t.Error("the most recently put buffer was not the one kept on top")
	}
	if freed := p.trim(); freed != 2*size {
		t.Errorf("trim after one was used freed %d bytes, want %d", freed, 2*size)
	}
}

// TestJanitorTrimsBigBuffers: while large bodies keep coming one at a
// time, the buffers a burst left behind are let go.
func TestJanitorTrimsBigBuffers(t *testing.T) {
	g, _, _ := testGateway(t)
	for i := 0; i < 8; i++ {
		g.big.put(make([]byte, 0, 2<<20))
	}
	go g.janitor(20 * time.Millisecond)
	for deadline := time.Now().Add(5 * time.Second); g.big.len() > 1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d big buffers still kept after 5 s of one large body at a time", g.big.len())
		}
		b := g.big.get(1<<20, 2<<20) // one large body
		g.bigBodies.Add(1)
		time.Sleep(2 * time.Millisecond)
		g.big.put(b)
	}
}

// TestJanitorDrainsBigBuffers: once large bodies stop coming, the kept
// buffers are let go.
func TestJanitorDrainsBigBuffers(t *testing.T) {
	g, _, _ := testGateway(t)
	g.big.put(make([]byte, 0, 2<<20))
	g.bigBodies.Add(1)
	go g.janitor(10 * time.Millisecond)
	for deadline := time.Now().Add(5 * time.Second); g.big.len() != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the big buffers were still kept 5 s after the last large body")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHandlerRecoversFromPanic: a panic answers 503 and releases the token.
func TestHandlerRecoversFromPanic(t *testing.T) {
	g, _, _ := testGateway(t)
	g.fwd = panicky{}
	c := newCall()
	c.do(g, "POST", hTokAnon, bodyProduct, "Client-Token", "p1")
	if status, code, _ := c.answer(t); status != 503 || code != 800005660 {
		t.Fatalf("got %d %d", status, code)
	}
	sink, err := downstream.OpenFile(filepath.Join(t.TempDir(), "e.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	g.fwd = sink
	c.do(g, "POST", hTokAnon, bodyProduct, "Client-Token", "p1")
	if _, _, data := c.answer(t); data["triggered"] != true {
		t.Fatalf("token not released after a panic: %s", c.ctx.Response.Body())
	}
}

type panicky struct{}

func (panicky) Forward(_, _, _ []byte, _ time.Time) error { panic("boom") }

// TestChunkedCap: without Content-Length the body is cut off at the cap.
func TestChunkedCap(t *testing.T) {
	g, _, _ := testGateway(t)
	c := newCall()
	for _, tc := range []struct {
		size   int
		status int
	}{{4 << 20, 200}, {4<<20 + 1, 413}} {
		body := jsonOfSizeForTest(tc.size, "x")
		c.ctx.Request.Reset()
		c.ctx.Response.Reset()
		c.ctx.Request.Header.SetMethod("POST")
		c.ctx.Request.SetRequestURI("/webhook/flow/" + hTokAnon)
		c.body.Reset(body)
		c.ctx.Request.SetBodyStream(io.MultiReader(&c.body), -1)
		g.Handle(&c.ctx)
		if got := c.ctx.Response.StatusCode(); got != tc.status {
			t.Errorf("%d bytes chunked: status %d, want %d", tc.size, got, tc.status)
		}
	}
	_ = time.Second
}

// signedHeaders returns the headers a sender adds, as name, value pairs.
func signedHeaders(t testing.TB, cfg signature.Config, body []byte, now time.Time, id string) []string {
	t.Helper()
	hs, _, err := signature.Sign(cfg, body, now, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range hs {
		out = append(out, h[0], h[1])
	}
	return out
}

// trickle is a request body that arrives a few bytes per read, as a slow
// caller's would.
type trickle struct {
	b []byte
	n int
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}

// TestKeywordsAcrossReads: the keywords of a large or chunked body are
// searched as it is read, so a keyword — raw, or written as JSON escapes —
// cut across reads of any size is still found, and a body without one is
// still a miss; the small body, matched whole, agrees.
func TestKeywordsAcrossReads(t *testing.T) {
	g, _, _ := testGateway(t)
	c := newCall()
	bearer := "Bearer " + hCred
	pad := strings.Repeat("x", streamScanMin+1000)
	for _, tc := range []struct {
		name      string
		body      string
		triggered bool
	}{
		{"raw", `{"a":"` + pad + `","event":"new product"}`, true},
		{"escaped", `{"a":"` + pad + `","event":"\u65b0\u54c1"}`, true},
		{"miss", `{"a":"` + pad + `","event":"new prod uct"}`, false},
		{"small", `{"event":"new product"}`, true},
	} {
		for _, n := range []int{1, 7, 64, 4096, -1} {
			size := len(tc.body)
			if n < 0 { // chunked: no declared length
				n, size = 100, -1
			}
			c.ctx.Request.Reset()
			c.ctx.Response.Reset()
			c.ctx.Request.Header.SetMethod("POST")
			c.ctx.Request.SetRequestURI(webhookPrefix + hTokCred)
			c.ctx.Request.Header.Set("Authorization", bearer)
			c.ctx.Request.SetBodyStream(&trickle{b: []byte(tc.body), n: n}, size)
			g.Handle(&c.ctx)
			status, code, data := c.answer(t)
			if status != 200 || code != 0 || data["triggered"] != tc.triggered {
				t.Errorf("%s in reads of %d (length %d): %d %d %v, want triggered %v", tc.name, n, size, status, code, data, tc.triggered)
			}
		}
	}
}
