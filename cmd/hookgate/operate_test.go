package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"
)

// adminGateway starts the rows configuration with an admin listener.
func adminGateway(t *testing.T, extra string) (*gatewayProc, *sink, string) {
	t.Helper()
	s := startSink(t)
	admin := freeAddr(t)
	cfg := strings.ReplaceAll(rowsConfig, "SINK", s.URL)
	cfg = strings.Replace(cfg, "listen: LISTEN\n", "listen: LISTEN\nadmin_listen: "+admin+"\n"+extra, 1)
	g := startGateway(t, cfg)
	return g, s, "http://" + admin
}

func get(t *testing.T, method, url string, headers ...string) (int, string) {
	t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if err := client.Do(req, resp); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode(), string(resp.Body())
}

// scrape parses /metrics with the Prometheus text parser.
func scrape(t *testing.T, admin string, headers ...string) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := get(t, "GET", admin+"/metrics", headers...)
	if status != 200 {
		t.Fatalf("/metrics: %d %s", status, body)
	}
	assertNoSecrets(t, "/metrics", body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return mfs
}

// value returns the sum of a family's samples whose labels include want.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return 0
	}
	sum := 0.0
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func TestAdminEndpoints(t *testing.T) {
	g, s, admin := adminGateway(t, "")
	if status, body := get(t, "GET", admin+"/healthz"); status != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", status, body)
	}
	status, body := get(t, "GET", admin+"/readyz")
	var ready map[string]any
	json.Unmarshal([]byte(body), &ready)
	if status != 200 || ready["ready"] != true || ready["generation"] != 1.0 || ready["flow_engine"] != "ok" {
		t.Fatalf("/readyz: %d %s", status, body)
	}
	for i := 0; i < 3; i++ {
		post(t, "POST", g.url(tokCred), productBody, "Authorization", "Bearer wrong")
	}
	post(t, "POST", g.url(tokCred), productBody, "Authorization", "Bearer "+credential)
	post(t, "POST", g.url("nope-0123456789abcdefghijk"), productBody)
	mfs := scrape(t, admin)
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"automation": "cred", "code": "800005649", "result": "refused"}, 3},
		{map[string]string{"automation": "cred", "code": "0", "result": "triggered"}, 1},
		{map[string]string{"automation": "", "code": "800004404"}, 1},
	} {
		if got := value(mfs, "hookgate_requests_total", c.labels); got != c.want {
			t.Errorf("hookgate_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := value(mfs, "hookgate_request_duration_seconds", nil); got != 5 {
		t.Errorf("request duration count = %v, want 5", got)
	}
	if got := value(mfs, "hookgate_config_generation", nil); got != 1 {
		t.Errorf("generation = %v", got)
	}
	// The flow engine goes away: /readyz says so.
	s.srv.Shutdown()
	status, body = get(t, "GET", admin+"/readyz")
	if status != 503 || !strings.Contains(body, `"ready":false`) {
		t.Fatalf("/readyz with the engine down: %d %s", status, body)
	}
	// POST /reload.
	if status, body := get(t, "POST", admin+"/reload"); status != 200 || !strings.Contains(body, "generation 2") {
		t.Fatalf("/reload: %d %s", status, body)
	}
	if status, _ := get(t, "GET", admin+"/reload"); status != 405 {
		t.Fatalf("GET /reload: %d", status)
	}
	// Nothing but the webhook path on the webhook listener.
	post(t, "GET", g.Base+"/metrics", nil).want(t, 405, 800004405, "method not allowed")
}

func TestAdminToken(t *testing.T) {
	_, _, admin := adminGateway(t, "admin_token: adm-0123456789abcdefghijkl\n")
	if status, _ := get(t, "GET", admin+"/metrics"); status != 401 {
		t.Fatalf("/metrics without the admin token: %d", status)
	}
	scrape(t, admin, "Authorization", "Bearer adm-0123456789abcdefghijkl")
}

// TestDashboardMetricsExist: every metric the dashboard and the alerts use
// is in a live scrape.
func TestDashboardMetricsExist(t *testing.T) {
	g, _, admin := adminGateway(t, "")
	post(t, "POST", g.url(tokCred), productBody, "Authorization", "Bearer "+credential)
	post(t, "POST", g.url(tokAnon), productBody, "Client-Token", "x")
	mfs := scrape(t, admin)
	exported := map[string]bool{}
	for name, mf := range mfs {
		exported[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exported[name+suffix] = true
			}
		}
	}
	re := regexp.MustCompile(`hookgate_[a-z0-9_]+`)
	for _, f := range []string{"../../configs/grafana-dashboard.json", "../../configs/alerts.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		names := re.FindAllString(string(data), -1)
		if len(names) < 5 {
			t.Fatalf("%s names only %d metrics", f, len(names))
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s uses %s, which /metrics does not export", f, n)
			}
		}
	}
}

// TestFloodLogSampling: 10,000 refused requests write a bounded number of
// log lines, and the metrics count every one.
func TestFloodLogSampling(t *testing.T) {
	s := startSink(t)
	admin := freeAddr(t)
	cfg := strings.ReplaceAll(rowsConfig, "SINK", s.URL)
	cfg = strings.Replace(cfg, "log: {level: debug, sample_first: 1000000}", "log: {level: debug, sample_first: 5}", 1)
	cfg = strings.Replace(cfg, "listen: LISTEN\n", "listen: LISTEN\nadmin_listen: "+admin+"\n", 1)
	g := startGateway(t, cfg)
	const n = 10000
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				post(t, "POST", g.url(tokCred), productBody, "Authorization", "Bearer "+tokAnon)
			}
		}()
	}
	wg.Wait()
	secs := int(time.Since(start).Seconds()) + 2
	mfs := scrape(t, "http://"+admin)
	if got := value(mfs, "hookgate_requests_total", map[string]string{"automation": "cred", "code": "800005649"}); got != n {
		t.Errorf("counted %v refusals, want %d", got, n)
	}
	g.stop(t)
	lines := strings.Count(g.log(), `"code":800005649`)
	if lines == 0 || lines > 5*secs {
		t.Errorf("%d log lines for %d refusals in %ds, want 1..%d", lines, n, secs, 5*secs)
	}
	if strings.Contains(g.log(), tokAnon) {
		t.Error("the log holds the credential that was tried")
	}
}

// TestReloadUnderLoad rewrites the configuration 20 times, some of them
// invalid, while a client sends continuously: no request fails, the
// untouched automation's bucket keeps its state, and each valid swap's
// token and keywords are in force as soon as its generation is live.
func TestReloadUnderLoad(t *testing.T) {
	s := startSink(t)
	admin := "http://" + freeAddr(t)
	base := `listen: LISTEN
admin_listen: ` + strings.TrimPrefix(admin, "http://") + `
downstream: {url: "` + s.URL + `"}
tables:
  - id: t
    rps: 1000000
    automations:
      - {id: steady, token: tok-steady-0123456789abcdef, credential: ` + credential + `, rps: 1000000}
      - {id: limited, token: tok-limited-0123456789abcde, rps: 0.05}
      - {id: moving, token: TOKEN, keywords: [KEYWORD], rps: 1000}
`
	cfgFor := func(i int) string {
		c := strings.Replace(base, "TOKEN", fmt.Sprintf("tok-moving-%02d-0123456789abcd", i), 1)
		return strings.Replace(c, "KEYWORD", fmt.Sprintf("kw%02d", i), 1)
	}
	g := startGateway(t, cfgFor(0))
	path := filepath.Join(g.dir, "hookgate.yaml")
	limitedURL := g.url("tok-limited-0123456789abcde")
	post(t, "POST", limitedURL, productBody).want(t, 200, 0, "")
	post(t, "POST", limitedURL, productBody).want(t, 429, 800005652, "Too many requests — try again later")

	var sent, failed atomic.Int64
	stopLoad := repeatUntilStopped(4, func(int) {
		a := post(t, "POST", g.url("tok-steady-0123456789abcdef"), productBody, "Authorization", "Bearer "+credential)
		sent.Add(1)
		if a.Code != 0 || a.Data["triggered"] != true {
			failed.Add(1)
		}
	})
	generation := func() float64 {
		_, body := get(t, "GET", admin+"/readyz")
		var r map[string]any
		json.Unmarshal([]byte(body), &r)
		gen, _ := r["generation"].(float64)
		return gen
	}
	failedReloads := func() float64 {
		return value(scrape(t, admin), "hookgate_config_reloads_total", map[string]string{"result": "failed"})
	}
	write := func(content string, i int) {
		content = strings.ReplaceAll(content, "LISTEN", strings.TrimPrefix(g.Base, "http://"))
		if i%2 == 0 { // an editor's write-to-temp-then-rename
			tmp := path + ".tmp"
			os.WriteFile(tmp, []byte(content), 0o600)
			os.Rename(tmp, path)
		} else {
			os.WriteFile(path, []byte(content), 0o600)
		}
	}
	live := 0
	for i := 1; i <= 20; i++ {
		if i%5 == 0 {
			before := failedReloads()
			write(strings.Replace(cfgFor(i), "rps: 1000}", "rps: 1000, format: xml}", 1), i)
			waitFor(t, func() bool { return failedReloads() > before })
		} else {
			gen := generation()
			write(cfgFor(i), i)
			waitFor(t, func() bool { return generation() > gen })
			live = i
		}
		newURL := g.url(fmt.Sprintf("tok-moving-%02d-0123456789abcd", live))
		a := post(t, "POST", newURL, []byte(fmt.Sprintf(`{"x":"kw%02d"}`, live)))
		if a.Data["triggered"] != true {
			t.Fatalf("reload %d: generation's token and keyword not in force: %s", i, a.Raw)
		}
		if live > 0 {
			post(t, "POST", g.url(fmt.Sprintf("tok-moving-%02d-0123456789abcd", live-1)), productBody).want(t, 404, 800004404, "webhook not found")
		}
	}
	stopLoad()
	if failed.Load() != 0 || sent.Load() < 20 {
		t.Fatalf("%d of %d requests during reloads failed", failed.Load(), sent.Load())
	}
	// The limited automation's bucket survived 16 reloads: still empty.
	post(t, "POST", limitedURL, productBody).want(t, 429, 800005652, "Too many requests — try again later")
	if bytes.Contains([]byte(g.log()), []byte("tok-moving")) {
		t.Error("a webhook token reached the log")
	}
}

// TestReadyzWhileStopping: once SIGTERM arrives the gateway stops
// accepting and drains; /readyz must say so (503, stopping) for as long as
// the drain lasts, so a load balancer that still asks sends requests
// elsewhere, while the request in flight is still answered code 0.
func TestReadyzWhileStopping(t *testing.T) {
	g, s, admin := adminGateway(t, "")
	status, body := get(t, "GET", admin+"/readyz")
	if status != 200 || !strings.Contains(body, `"stopping":false`) {
		t.Fatalf("/readyz before the stop: %d %s", status, body)
	}
	s.set(200, time.Second)
	done := make(chan error, 1)
	var a answer
	go func() {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.Header.SetMethod("POST")
		req.SetRequestURI(g.url(tokAnon))
		req.SetBody(productBody)
		err := client.Do(req, resp)
		if err == nil {
			a = decode(t, resp)
		}
		done <- err
	}()
	s.waitArrived(t, 1)
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(900 * time.Millisecond)
	for {
		status, body = get(t, "GET", admin+"/readyz")
		if status == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz while draining: %d %s; want 503", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var ready map[string]any
	if err := json.Unmarshal([]byte(body), &ready); err != nil || ready["ready"] != false || ready["stopping"] != true {
		t.Fatalf("/readyz while draining: %s (%v); want ready false, stopping true", body, err)
	}
	if err := <-done; err != nil || a.Code != 0 {
		t.Fatalf("request in flight at the stop: %v %+v; want code 0", err, a)
	}
	if err := g.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, g.log())
	}
}
