package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// sendInFlight sends n requests to tokAnon at once; wait returns each
// one's answer or error once all have ended.
func sendInFlight(t *testing.T, g *gatewayProc, n int) (wait func() ([]answer, []error)) {
	t.Helper()
	var wg sync.WaitGroup
	answers := make([]answer, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod("POST")
			req.SetRequestURI(g.url(tokAnon))
			req.SetBody(productBody)
			if errs[i] = client.Do(req, resp); errs[i] == nil {
				answers[i] = decode(t, resp)
			}
		}()
	}
	return func() ([]answer, []error) {
		wg.Wait()
		return answers, errs
	}
}

// checkAllAccepted checks that every request was answered code 0 and
// that each answered event is at the engine exactly once.
func checkAllAccepted(t *testing.T, s *sink, answers []answer, errs []error) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range s.received() {
		seen[r.Header["Idempotency-Key"]]++
	}
	accepted := 0
	for i, a := range answers {
		if errs[i] != nil {
			t.Errorf("request %d not answered: %v", i, errs[i])
			continue
		}
		if a.Code != 0 || a.Data["triggered"] != true {
			t.Errorf("request %d: %s", i, a.Raw)
			continue
		}
		accepted++
		if id, _ := a.Data["event_id"].(string); seen[id] != 1 {
			t.Errorf("event %s answered code 0 is at the engine %d times", id, seen[id])
		}
	}
	if accepted != len(answers) {
		t.Errorf("%d of %d requests answered code 0 (the engine holds %d events)", accepted, len(answers), len(s.received()))
	}
}

// TestSIGTERMEngineSlowerThanWriteTimeout stops the gateway while the
// engine takes longer over each event than server.write_timeout: a
// write_timeout bounds an answer's write, not the hand-over before it,
// so the events handed over during the stop are answered code 0 as they
// are outside one.
func TestSIGTERMEngineSlowerThanWriteTimeout(t *testing.T) {
	s := startSink(t)
	s.set(200, 1500*time.Millisecond)
	cfg := strings.ReplaceAll(rowsConfig, `downstream: {url: "SINK", timeout: 2s}`,
		`downstream: {url: "`+s.URL+`", timeout: 5s}
server: {write_timeout: 500ms}`)
	g := startGateway(t, cfg)

	// Outside a stop, the slow engine is no matter.
	wait := sendInFlight(t, g, 5)
	answers, errs := wait()
	checkAllAccepted(t, s, answers, errs)

	const n = 20
	wait = sendInFlight(t, g, n)
	s.waitArrived(t, 5+n)
	if err := g.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, g.log())
	}
	answers, errs = wait()
	checkAllAccepted(t, s, answers, errs)
}

// TestStopSignalsDuringDrain sends SIGTERM while requests wait on a slow
// engine, then SIGTERM, SIGINT and SIGHUP again during the drain: the
// listener is closed at once, the later signals neither cut the drain
// short nor reload, every request is answered code 0 with its event at
// the engine, and the process exits 0 having logged its stop.
func TestStopSignalsDuringDrain(t *testing.T) {
	g, s := rowsGateway(t)
	s.set(200, 1500*time.Millisecond)
	addr := strings.TrimPrefix(g.Base, "http://")
	const n = 50
	wait := sendInFlight(t, g, n)
	s.waitArrived(t, n)
	start := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused at once, well before the drain ends.
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Since(start) > 700*time.Millisecond {
			t.Fatalf("the webhook listener still accepts %v after SIGTERM", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		time.Sleep(100 * time.Millisecond)
		if err := g.cmd.Process.Signal(sig); err != nil {
			t.Fatalf("%v during the drain: %v", sig, err)
		}
	}
	select {
	case err := <-g.done:
		g.done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, g.log())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit 15 s after SIGTERM")
	}
	answers, errs := wait()
	checkAllAccepted(t, s, answers, errs)
	log := g.log()
	if !strings.Contains(log, `"msg":"stopped"`) {
		t.Errorf("no \"stopped\" line in the log")
	}
	if strings.Contains(log, "configuration reloaded") || strings.Contains(log, "reload refused") {
		t.Errorf("a SIGHUP during the drain reloaded the file")
	}
}

// TestSIGTERMWithIdleConnections stops a gateway holding a kept-alive
// connection that has been answered and sends nothing more, and one
// that never sent a byte: neither holds the stop past server.read_timeout.
func TestSIGTERMWithIdleConnections(t *testing.T) {
	s := startSink(t)
	cfg := strings.ReplaceAll(rowsConfig, `downstream: {url: "SINK", timeout: 2s}`,
		`downstream: {url: "`+s.URL+`", timeout: 2s}
server: {read_timeout: 1s, idle_timeout: 60s}`)
	g := startGateway(t, cfg)
	addr := strings.TrimPrefix(g.Base, "http://")

	kept, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	if _, err := kept.Write([]byte("POST /webhook/flow/" + tokAnon + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(productBody)) + "\r\n\r\n" + string(productBody))); err != nil {
		t.Fatal(err)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	br := bufio.NewReader(kept)
	if err := resp.Read(br); err != nil {
		t.Fatal(err)
	}
	if a := decode(t, resp); a.Code != 0 || resp.ConnectionClose() {
		t.Fatalf("first answer %s, Connection: close %v", a.Raw, resp.ConnectionClose())
	}
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	if err := g.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, g.log())
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the stop took %v with idle connections open; read_timeout is 1s", d)
	}
	// The kept-alive connection was closed, not left answering.
	kept.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("the kept-alive connection still open after the stop: %d bytes, %v", n, err)
	}
}

// TestSIGTERMDrainBounded stops a gateway while its engine holds every
// event far past downstream.timeout and a caller trickles a body: the
// stop waits for neither beyond its timeouts (README: the drain takes at
// most read_timeout + downstream.timeout + write_timeout), the held
// requests are answered 800005660, not code 0, and the trickling
// connection is cut.
func TestSIGTERMDrainBounded(t *testing.T) {
	s := startSink(t)
	s.set(200, 4*time.Second)
	cfg := strings.ReplaceAll(rowsConfig, `downstream: {url: "SINK", timeout: 2s}`,
		`downstream: {url: "`+s.URL+`", timeout: 1s}
server: {read_timeout: 1s, write_timeout: 1s}`)
	g := startGateway(t, cfg)
	addr := strings.TrimPrefix(g.Base, "http://")

	const n = 5
	wait := sendInFlight(t, g, n)
	s.waitArrived(t, n)
	trickle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer trickle.Close()
	if _, err := trickle.Write([]byte("POST /webhook/flow/" + tokAnon + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			time.Sleep(100 * time.Millisecond)
			if _, err := trickle.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()

	start := time.Now()
	if err := g.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, g.log())
	}
	// 3 s is the sum of the three timeouts; the engine holds each
	// event 4 s.
	d := time.Since(start)
	if d > 3*time.Second {
		t.Fatalf("the stop took %v; the timeouts add up to 3s", d)
	}
	t.Logf("stopped in %v", d)
	answers, errs := wait()
	for i, a := range answers {
		if errs[i] != nil {
			t.Errorf("request %d not answered: %v", i, errs[i])
		} else if a.Code != 800005660 || a.Status != 503 {
			t.Errorf("request %d held by the engine past downstream.timeout: %d %s; want 503 code 800005660", i, a.Status, a.Raw)
		}
	}
	trickle.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.Copy(io.Discard, trickle); err != nil {
		t.Fatalf("the trickling connection still open after the stop: %v", err)
	}
}

// TestListenerBusyAtStart starts the gateway on a webhook address, and
// then an admin address, already taken: it exits 1 naming the field, and
// never says it started.
func TestListenerBusyAtStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := busy.Addr().String()
	for _, tc := range []struct{ name, config, field string }{
		{"listen", "listen: " + taken + "\n", "listen: "},
		{"admin_listen", "listen: " + freeAddr(t) + "\nadmin_listen: " + taken + "\n", "admin_listen: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := dir + "/hookgate.yaml"
			cfg := tc.config + "tables:\n  - id: t\n    automations:\n      - {id: a, token: " + tokAnon + "}\n"
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(binary, "serve", "-config", path)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1\n%s", err, out)
			}
			if !strings.Contains(string(out), "hookgate: "+tc.field) || !strings.Contains(string(out), taken) {
				t.Fatalf("the error names neither %q nor %s:\n%s", tc.field, taken, out)
			}
			if strings.Contains(string(out), "hookgate started") {
				t.Fatalf("said it started:\n%s", out)
			}
		})
	}
}

// TestAcceptOutOfFiles opens more connections than the gateway may hold
// files: accept failing with EMFILE is a passing fault, not the end of
// the process. Once the connections close, requests are served again and
// SIGTERM still stops it with exit 0.
func TestAcceptOutOfFiles(t *testing.T) {
	s := startSink(t)
	addr := freeAddr(t)
	dir := t.TempDir()
	path := dir + "/hookgate.yaml"
	cfg := "listen: " + addr + "\ndownstream: {url: \"" + s.URL + "\"}\nlimits: {anonymous_rps: 100000}\ntables:\n  - id: t\n    automations:\n      - {id: a, token: " + tokAnon + "}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Go raises the soft limit to the hard one at start: lower both.
	g := launch(t, exec.Command("sh", "-c", `ulimit -n 64 && exec "$0" serve -config "$1"`, binary, path), dir, addr)
	cmd, stderr, done := g.cmd, g.stderr, g.done
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", stderr.String())
		}
	}()
	g.waitListening(t, addr)
	var conns []net.Conn
	for range 100 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(300 * time.Millisecond)
	for _, c := range conns {
		c.Close()
	}
	select {
	case err := <-done:
		t.Fatalf("hookgate exited when out of files: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	post(t, "POST", g.url(tokAnon), productBody).want(t, 200, 0, "")
	if n := strings.Count(stderr.String(), "accepting connections; retrying"); n != 1 {
		t.Errorf("%d lines say accept is retried, want 1", n)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit after SIGTERM")
	}
}
