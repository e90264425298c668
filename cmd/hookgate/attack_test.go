package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rss reads a process's resident memory in KiB.
func rss(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// TestSlowClients: 1,000 connections that send their headers a byte a
// second don't stop a normal client from being served as usual.
func TestSlowClients(t *testing.T) {
	g, _ := rowsGateway(t)
	addr := strings.TrimPrefix(g.Base, "http://")
	measure := func(n int) (lat []time.Duration) {
		for i := 0; i < n; i++ {
			start := time.Now()
			post(t, "POST", g.url(tokAnon), productBody).want(t, 200, 0, "")
			lat = append(lat, time.Since(start))
		}
		return lat
	}
	before := median(measure(30))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var opened atomic.Int64
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			opened.Add(1)
			line := "POST /webhook/flow/" + tokAnon + " HTTP/1.1\r\nHost: x\r\n"
			for i := 0; i < len(line); i++ {
				if _, err := c.Write([]byte{line[i]}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
				}
			}
		}()
	}
	waitFor(t, func() bool { return opened.Load() >= 990 })
	time.Sleep(500 * time.Millisecond)
	during := measure(30)
	close(stop)
	wg.Wait()
	if m := median(during); m > 20*before+20*time.Millisecond {
		t.Fatalf("median latency %s under 1,000 slow connections, %s before", m, before)
	}
	t.Logf("median latency %s before, %s with 1,000 slow connections open", before, median(during))
}

// TestHostileBytes: garbage, a 1 MB request line and 10,000 headers get a
// clean refusal and a closed connection, and nothing else is disturbed.
func TestHostileBytes(t *testing.T) {
	g, _ := rowsGateway(t)
	addr := strings.TrimPrefix(g.Base, "http://")
	var headers strings.Builder
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&headers, "X-H%d: v\r\n", i)
	}
	for name, raw := range map[string]string{
		"1 MB request line": "POST /webhook/flow/" + strings.Repeat("a", 1<<20) + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"10,000 headers":    "POST /webhook/flow/" + tokAnon + " HTTP/1.1\r\nHost: x\r\n" + headers.String() + "\r\n",
		"binary garbage":    string([]byte{0, 1, 2, 0xff, 0xfe, '\r', '\n', '\r', '\n'}),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			go c.Write([]byte(raw))
			r := bufio.NewReader(c)
			status, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if !strings.HasPrefix(status, "HTTP/1.1 404") {
				t.Fatalf("status %q", status)
			}
			rest, _ := io_ReadAll(r) // returns once the server closes
			if !strings.Contains(rest, `"code":800004404`) {
				t.Fatalf("answer %q", rest)
			}
		})
	}
	post(t, "POST", g.url(tokAnon), productBody).want(t, 200, 0, "")
}

// TestFloodWithLeakedURL: one process floods an automation without its
// credential and another automation of the same table past its limit, at
// full speed, while a legitimate sender posts 4 req/s with the
// credential: every legitimate request is admitted, memory stays flat and
// the log stays bounded.
func TestFloodWithLeakedURL(t *testing.T) {
	s := startSink(t)
	g := startGateway(t, fmt.Sprintf(`listen: LISTEN
downstream: {url: %q}
log: {level: debug, sample_first: 5}
tables:
  - id: t
    automations:
      - {id: victim, token: %s, credential: %s}
      - {id: other, token: %s}
`, s.URL, tokCred, credential, tokAnon))
	pid := g.cmd.Process.Pid
	// Warm up, then take the baseline.
	for i := 0; i < 2000; i++ {
		post(t, "POST", g.url(tokCred), productBody, "Authorization", "Bearer nope")
	}
	base := rss(t, pid)

	var flooded atomic.Int64
	stopFlood := repeatUntilStopped(24, func(w int) {
		if w%2 == 0 {
			post(t, "POST", g.url(tokCred), productBody, "Authorization", "Bearer stolen-guess")
		} else {
			post(t, "POST", g.url(tokAnon), productBody) // 1 req/s allowed, the rest 429
		}
		flooded.Add(1)
	})
	admitted := 0
	tick := time.NewTicker(250 * time.Millisecond)
	for i := 0; i < 12; i++ { // 4 req/s for 3 s
		<-tick.C
		a := post(t, "POST", g.url(tokCred), productBody, "Authorization", "Bearer "+credential)
		if a.Code == 0 && a.Data["triggered"] == true {
			admitted++
		} else {
			t.Errorf("legitimate request refused: %s", a.Raw)
		}
	}
	tick.Stop()
	peak := rss(t, pid)
	stopFlood()
	if admitted != 12 {
		t.Fatalf("%d of 12 legitimate requests admitted", admitted)
	}
	if grown := peak - base; grown > 64<<10 {
		t.Errorf("RSS grew %d KiB during the flood (from %d KiB)", grown, base)
	}
	g.stop(t)
	lines := strings.Count(g.log(), "\n")
	t.Logf("flood: %d requests in 3 s; RSS %d → %d KiB; %d log lines", flooded.Load(), base, peak, lines)
	if lines > 400 {
		t.Errorf("%d log lines for a 3 s flood", lines)
	}
}

// TestBigBodyFloodMemory: after a flood of 4 MiB bodies the gateway's
// memory returns to its baseline (buffers go back, the janitor hands the
// memory to the OS once the burst is over).
func TestBigBodyFloodMemory(t *testing.T) {
	g, _ := rowsGateway(t)
	pid := g.cmd.Process.Pid
	for i := 0; i < 200; i++ {
		post(t, "POST", g.url(tokAnon), productBody)
	}
	base := rss(t, pid)
	big := jsonOfSize(4<<20, "x")
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				post(t, "POST", g.url(tokAnon), big)
				post(t, "POST", g.url(tokAnon), jsonOfSize(4<<20+1, "x")) // 413, after reading the cap
			}
		}()
	}
	wg.Wait()
	peak := rss(t, pid)
	deadline := time.Now().Add(20 * time.Second)
	after := rss(t, pid)
	for after > base+32<<10 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		after = rss(t, pid)
	}
	t.Logf("RSS %d KiB before, %d at the peak, %d after", base, peak, after)
	if after > base+32<<10 {
		t.Fatalf("RSS stayed at %d KiB after the flood, baseline %d KiB", after, base)
	}
}

// TestClientTokenStoreFull: at its capacity the store refuses new tokens
// with a clear, retryable answer instead of forgetting one it holds.
func TestClientTokenStoreFull(t *testing.T) {
	s := startSink(t)
	admin := freeAddr(t)
	g := startGateway(t, fmt.Sprintf(`listen: LISTEN
admin_listen: %s
idempotency_capacity: 100
limits: {table_rps: 100000, automation_rps: 100000, anonymous_rps: 100000}
downstream: {url: %q}
tables:
  - id: t
    automations:
      - {id: a, token: %s}
`, admin, s.URL, tokAnon))
	for i := 0; i < 100; i++ {
		a := post(t, "POST", g.url(tokAnon), productBody, "Client-Token", fmt.Sprintf("ct-%d", i))
		if a.Data["triggered"] != true {
			t.Fatalf("token %d: %s", i, a.Raw)
		}
	}
	a := post(t, "POST", g.url(tokAnon), productBody, "Client-Token", "ct-one-too-many")
	a.want(t, 429, 800005652, "Too many requests — try again later")
	if a.hdr("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// Nothing held was forgotten: every earlier token is still a duplicate.
	for i := 0; i < 100; i++ {
		if a := post(t, "POST", g.url(tokAnon), productBody, "Client-Token", fmt.Sprintf("ct-%d", i)); a.Data["duplicate"] != true {
			t.Fatalf("token %d forgotten at capacity: %s", i, a.Raw)
		}
	}
	// Requests without a Client-Token are not affected.
	post(t, "POST", g.url(tokAnon), productBody).want(t, 200, 0, "")
	mfs := scrape(t, "http://"+admin)
	if value(mfs, "hookgate_client_tokens_total", map[string]string{"result": "full"}) != 1 {
		t.Error("the refusal was not counted as full")
	}
}
