package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startServe runs Serve in the test and returns the address it printed;
// socket is "" or a Unix socket it serves on as well, to the sink a relay
// forwards to.
func startServe(t *testing.T, s Server, socket, to string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, s, "127.0.0.1:0", socket, to, pw) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not stop")
		}
		pw.Close()
	})
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("Serve said %q", line)
	}
	return addr
}

// TestSinkCounts posts to the sink over TCP and over its Unix socket; it
// counts both on /stats.
func TestSinkCounts(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "sink.sock")
	addr := startServe(t, ServerSink, sock, "")
	overSocket := &fasthttp.HostClient{Addr: "sink", Dial: func(string) (net.Conn, error) { return net.Dial("unix", sock) }}
	big := make([]byte, 5<<20) // a 4 MiB body's event fits
	for i := range 4 {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + addr + "/events")
		req.Header.SetMethod("POST")
		if i == 2 {
			req.SetBodyRaw(big)
		}
		var err error
		if i == 3 {
			req.SetRequestURI("http://sink/events")
			err = overSocket.DoTimeout(req, resp, 5*time.Second)
		} else {
			err = fasthttp.DoTimeout(req, resp, 5*time.Second)
		}
		if err != nil || resp.StatusCode() != 200 {
			t.Fatalf("POST %d: %v %d", i, err, resp.StatusCode())
		}
	}
	n, err := sinkEvents(addr)
	if err != nil || n != 4 {
		t.Fatalf("sink events %d, %v; want 4", n, err)
	}
}

func TestBareAnswersEverything(t *testing.T) {
	addr := startServe(t, ServerBare, "", "")
	body, _ := Body(4 << 20)
	res, err := Load{Conns: 2, Duration: 200 * time.Millisecond}.Run(context.Background(),
		Target{Addr: addr, Requests: []Request{{URI: []byte("/webhook/flow/x"), Body: body}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answers == 0 || res.Status["200"] != res.Answers || res.Codes["none"] != res.Answers || res.ErrorCount() != 0 {
		t.Fatalf("bare: %+v", res)
	}
}

// TestRelayForwards: every request the relay answers 200 reached the sink
// first, and a relay whose sink is gone answers 502.
func TestRelayForwards(t *testing.T) {
	sink := startServe(t, ServerSink, "", "")
	relay := startServe(t, ServerRelay, "", sink)
	body, _ := Body(1024)
	res, err := Load{Conns: 4, Duration: 200 * time.Millisecond}.Run(context.Background(),
		Target{Addr: relay, Requests: []Request{{URI: []byte("/webhook/flow/x"), Body: body}}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := sinkEvents(sink)
	if res.Answers == 0 || res.Status["200"] != res.Answers || res.ErrorCount() != 0 || err != nil || n < res.Answers {
		t.Fatalf("relay answered %+v; sink took %d (%v)", res, n, err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	orphan := startServe(t, ServerRelay, "", gone)
	var req fasthttp.Request
	var resp fasthttp.Response
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI("http://" + orphan + "/webhook/flow/x")
	req.SetBody(body)
	if err := fasthttp.DoTimeout(&req, &resp, 5*time.Second); err != nil || resp.StatusCode() != fasthttp.StatusBadGateway {
		t.Fatalf("relay without a sink: %d, %v; want 502", resp.StatusCode(), err)
	}
	if err := Serve(context.Background(), ServerRelay, "127.0.0.1:0", "", "", io.Discard); err == nil {
		t.Fatal("a relay without -to started")
	}
}

func TestScrape(t *testing.T) {
	addr := serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyString("# HELP x\n# TYPE hookgate_file_sink_events_total counter\n" +
			"hookgate_file_sink_events_total 1234\nhookgate_file_sink_fsyncs_total 61\n" +
			"hookgate_requests_total{code=\"0\"} 9\n")
	})
	m, err := scrape("http://"+addr+"/metrics", metricSinkEvents, metricSinkFsyncs, "missing_total")
	if err != nil {
		t.Fatal(err)
	}
	if m[metricSinkEvents] != 1234 || m[metricSinkFsyncs] != 61 || len(m) != 2 {
		t.Fatalf("scraped %v", m)
	}
}
