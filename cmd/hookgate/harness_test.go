package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// binary is the hookgate binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookgate-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "hookgate")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building hookgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sink is a real fasthttp flow engine on loopback that records every event.
type sink struct {
	URL string
	srv *fasthttp.Server
	ln  net.Listener

	mu     sync.Mutex
	events []received
	// status is the answer to the next events; delay holds each answer.
	status int
	delay  time.Duration
	// arrived counts every request, answered or not yet.
	arrived int

	// conns is the number of connections open now, maxConns the most
	// at once.
	conns, maxConns atomic.Int64
}

type received struct {
	Header map[string]string
	Body   []byte
}

func startSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveSink(t, ln, "http://"+ln.Addr().String()+"/events")
}

// serveSink serves the engine on ln; url is the downstream.url that
// reaches it.
func serveSink(t *testing.T, ln net.Listener, url string) *sink {
	t.Helper()
	s := &sink{ln: ln, URL: url, status: 200}
	s.srv = &fasthttp.Server{Handler: s.handle, MaxRequestBodySize: 64 << 20,
		ConnState: func(_ net.Conn, st fasthttp.ConnState) {
			switch st {
			case fasthttp.StateNew:
				n := s.conns.Add(1)
				for m := s.maxConns.Load(); n > m && !s.maxConns.CompareAndSwap(m, n); m = s.maxConns.Load() {
				}
			case fasthttp.StateClosed, fasthttp.StateHijacked:
				s.conns.Add(-1)
			}
		}}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Shutdown() })
	return s
}

func (s *sink) handle(ctx *fasthttp.RequestCtx) {
	s.mu.Lock()
	s.arrived++
	status, delay := s.status, s.delay
	h := map[string]string{}
	for _, k := range []string{"Content-Type", "Idempotency-Key", "Hookgate-Loop"} {
		h[k] = string(ctx.Request.Header.Peek(k))
	}
	h["Path"] = string(ctx.Path())
	if status/100 == 2 {
		s.events = append(s.events, received{Header: h, Body: append([]byte(nil), ctx.PostBody()...)})
	}
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	ctx.SetStatusCode(status)
}

func (s *sink) set(status int, delay time.Duration) {
	s.mu.Lock()
	s.status, s.delay = status, delay
	s.mu.Unlock()
}

// waitArrived waits until n requests have reached the engine.
func (s *sink) waitArrived(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		a := s.arrived
		s.mu.Unlock()
		if a >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests reached the engine, want %d", a, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *sink) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.events...)
}

// gatewayProc is a running hookgate binary.
type gatewayProc struct {
	Base   string
	cmd    *exec.Cmd
	dir    string
	stderr *lockedBuffer
	done   chan error
}

// launch starts cmd in dir as a gateway process that will listen on
// addr, its log kept and its exit reported on done.
func launch(t *testing.T, cmd *exec.Cmd, dir, addr string) *gatewayProc {
	t.Helper()
	cmd.Dir = dir
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gatewayProc{Base: "http://" + addr, cmd: cmd, dir: dir, stderr: stderr, done: make(chan error, 1)}
	go func() { g.done <- cmd.Wait() }()
	return g
}

// waitListening waits up to 10 s for g to accept on addr, failing the
// test if it exits first.
func (g *gatewayProc) waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-g.done:
			t.Fatalf("hookgate exited: %v\n%s", err, g.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hookgate did not listen on %s\n%s", addr, g.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer lets the test read the log while the process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startGateway writes config (with LISTEN replaced by a free address) to a
// temporary directory and runs `hookgate serve` there until the test ends.
func startGateway(t *testing.T, config string, env ...string) *gatewayProc {
	t.Helper()
	return startGatewayAt(t, config, freeAddr(t), env...)
}

// startGatewayAt is startGateway on a given listen address.
func startGatewayAt(t *testing.T, config, addr string, env ...string) *gatewayProc {
	t.Helper()
	dir := t.TempDir()
	config = strings.ReplaceAll(config, "LISTEN", addr)
	path := filepath.Join(dir, "hookgate.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "-config", path)
	cmd.Env = append(os.Environ(), env...)
	g := launch(t, cmd, dir, addr)
	g.waitListening(t, addr)
	t.Cleanup(func() {
		g.stop(t)
		assertNoSecrets(t, "the gateway log", g.log())
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.log())
		}
	})
	return g
}

// log returns what the gateway has written to stderr so far.
func (g *gatewayProc) log() string {
	return g.stderr.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (g *gatewayProc) stop(t *testing.T) error {
	t.Helper()
	if g.cmd.ProcessState != nil {
		return nil
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.done:
		g.done <- err
		return err
	case <-time.After(15 * time.Second):
		g.cmd.Process.Kill()
		t.Errorf("hookgate did not stop on SIGTERM")
		return fmt.Errorf("killed")
	}
}

// answer is a decoded gateway response.
type answer struct {
	Status int
	Header map[string]string
	Raw    []byte
	Msg    string         `json:"msg"`
	Data   map[string]any `json:"data"`
	Code   int64          `json:"code"`
}

var client = &fasthttp.Client{MaxConnsPerHost: 2048, DialDualStack: true, ReadTimeout: 20 * time.Second, WriteTimeout: 20 * time.Second}

// post sends a request and decodes the answer; headers alternate name, value.
func post(t *testing.T, method, url string, body []byte, headers ...string) answer {
	t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	req.Header.SetContentType("application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	req.SetBody(body)
	if err := client.Do(req, resp); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return decode(t, resp)
}

// secrets are every webhook token, credential and signing secret the
// tests use, and credentials tried by attackers: none may appear in a
// log, a metric or an answer.
var secrets = []string{
	tokCred, tokAnon, tokDisabled, tokAllow6, tokText, tokNone, tokFold, credential,
	tokSW, tokGH, tokDT, tokHMAC, swOld, swNew, dtSec, "hm-secret", "It's a Secret to Everybody",
	"stolen-guess", "tok-steady-0123456789abcdef", "tok-limited-0123456789abcde", "tok-moving-",
	"adm-0123456789abcdefghijkl",
}

// assertNoSecrets fails the test when text holds a secret.
func assertNoSecrets(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s holds the secret %q", where, s)
		}
	}
}

func decode(t *testing.T, resp *fasthttp.Response) answer {
	t.Helper()
	a := answer{Status: resp.StatusCode(), Raw: append([]byte(nil), resp.Body()...)}
	assertNoSecrets(t, "an answer", string(a.Raw))
	a.Header = map[string]string{}
	for _, k := range resp.Header.PeekKeys() {
		a.Header[strings.ToLower(string(k))] = string(resp.Header.PeekBytes(k))
	}
	if err := json.Unmarshal(a.Raw, &a); err != nil {
		t.Fatalf("answer is not JSON: %v: %q", err, a.Raw)
	}
	// The seed's key order: msg, data, code.
	if !bytes.HasPrefix(a.Raw, []byte(`{"msg":`)) || !bytes.Contains(a.Raw, []byte(`,"data":`)) ||
		bytes.Index(a.Raw, []byte(`"data"`)) > bytes.Index(a.Raw, []byte(`"code"`)) {
		t.Fatalf("answer keys not in msg, data, code order: %s", a.Raw)
	}
	return a
}

// hdr returns a response header, matched without regard to case.
func (a answer) hdr(name string) string { return a.Header[strings.ToLower(name)] }

// want checks an answer's status, code and message.
func (a answer) want(t *testing.T, status int, code int64, msg string) {
	t.Helper()
	if a.Status != status || a.Code != code || a.Msg != msg {
		t.Fatalf("got %d %d %q, want %d %d %q (%s)", a.Status, a.Code, a.Msg, status, code, msg, a.Raw)
	}
}

// repeatUntilStopped runs f(w) over and over on each of workers
// goroutines (w is the worker's number) until the returned stop is
// called; stop returns once every worker has finished its last call.
func repeatUntilStopped(workers int, f func(w int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				f(w)
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}
