package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/gateway"
)

func noEnv(string) (string, bool) { return "", false }

func TestScenarioConfigs(t *testing.T) {
	p := ConfigParams{Listen: "127.0.0.1:18080", AdminListen: "127.0.0.1:19090",
		Downstream: "http://127.0.0.1:18081/events", LogLevel: "warn"}
	// Scenarios with the same groups share a configuration: validate each
	// distinct one once (4096 automations take a while under -race).
	seen := map[string]bool{}
	for _, sc := range Scenarios() {
		key := fmt.Sprintf("%v %v %d", sc.Groups, sc.Sink, sc.Pipeline)
		parse := !seen[key]
		seen[key] = true
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			f, err := NewFleet(sc.Groups)
			if err != nil {
				t.Fatal(err)
			}
			pp := p
			pp.Pipeline = sc.Pipeline
			switch sc.Sink {
			case SinkFile:
				pp.Downstream = "file:" + t.TempDir() + "/events.jsonl"
			case SinkUnix:
				pp.Downstream, pp.Socket = "http://sink/events", "/tmp/sink.sock"
			}
			want := 0
			for _, g := range sc.Groups {
				want += g.Automations
			}
			if f.Automations() != want {
				t.Fatalf("fleet has %d automations, want %d", f.Automations(), want)
			}
			if parse {
				checkConfig(t, &sc, f, pp)
			}
			checkRequests(t, &sc, f)
		})
	}
}

// checkConfig parses the generated configuration with the gateway's own
// parser and checks what it holds.
func checkConfig(t *testing.T, sc *Scenario, f *Fleet, p ConfigParams) {
	t.Helper()
	cfg, err := gateway.Parse(f.AppendYAML(nil, p), noEnv)
	if err != nil {
		t.Fatalf("generated configuration is invalid: %v", err)
	}
	got := 0
	for _, tb := range cfg.Tables {
		got += len(tb.Automations)
		for _, a := range tb.Automations {
			if len(a.Token) < 22 || strings.Trim(a.Token, urlSafe) != "" {
				t.Fatalf("token of %s is not ≥ 22 URL-safe characters", a.ID)
			}
		}
	}
	if got != f.Automations() {
		t.Fatalf("%d automations in the configuration, want %d", got, f.Automations())
	}
	if cfg.Downstream.URL != p.Downstream || cfg.Downstream.Socket != p.Socket || (p.Pipeline > 0 && cfg.Downstream.Pipeline != p.Pipeline) || cfg.Listen != p.Listen || cfg.AdminListen != p.AdminListen || cfg.Log.Level != "warn" {
		t.Fatalf("params not applied: %+v", cfg)
	}
	// The throughput fleets: 4096 automations over 256 tables with limits
	// that never refuse; the rate-limit scenario keeps the defaults.
	first := cfg.Tables[0]
	if sc.Name == "rate_limited" {
		if first.RPS != 0 || first.Automations[0].RPS != 0 || cfg.Limits.AnonymousRPS != 1 {
			t.Fatalf("rate_limited must keep the default limits: table %g, automation %g", first.RPS, first.Automations[0].RPS)
		}
		return
	}
	if sc.Groups[0].Automations != 4096 || len(cfg.Tables)%256 != 0 || first.RPS != 1e6 || first.Automations[0].RPS != fleetRPS {
		t.Fatalf("fleet: %d automations, %d tables, rps %g/%g", sc.Groups[0].Automations, len(cfg.Tables), first.RPS, first.Automations[0].RPS)
	}
}

const urlSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// checkRequests checks the requests Requests prepares for sc.
func checkRequests(t *testing.T, sc *Scenario, f *Fleet) {
	t.Helper()
	reqs, err := Requests(sc, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) < 4096 && sc.Name != "rate_limited" {
		t.Fatalf("%d requests: too few to spread", len(reqs))
	}
	tokens := map[string]bool{}
	for _, g := range f.Groups {
		for _, tok := range g.Tokens {
			tokens[tok] = true
		}
	}
	checked := map[*byte]bool{} // bodies are shared: check each once
	for i, r := range reqs[:min(len(reqs), 200)] {
		tok, ok := strings.CutPrefix(string(r.URI), "/webhook/flow/")
		if !ok || len(tok) < 22 || strings.Trim(tok, urlSafe) != "" {
			t.Fatalf("request %d: URI %q", i, r.URI)
		}
		if sc.Name == "unknown_url" && tokens[tok] {
			t.Fatalf("unknown_url request %d names an automation", i)
		}
		if sc.Name != "unknown_url" && sc.Name != "mix" && !tokens[tok] {
			t.Fatalf("request %d names no automation", i)
		}
		if checked[&r.Body[0]] {
			continue
		}
		checked[&r.Body[0]] = true
		if len(r.Body) != sc.BodyBytes() && sc.Name != "mix" || !json.Valid(r.Body) {
			t.Fatalf("request %d: body of %d bytes, valid %v", i, len(r.Body), json.Valid(r.Body))
		}
		for _, kw := range absentKeywords {
			if bytes.Contains(r.Body, []byte(kw)) {
				t.Fatalf("body holds keyword %q", kw)
			}
		}
	}
}

func TestRequestsSpreadAndHeaders(t *testing.T) {
	sc := Scenario{Name: "t", Groups: []Group{
		{Name: "a", Automations: 10, Tables: 2, Format: "json", Credential: true, RPS: 10},
	}, Shapes: []Shape{
		{Group: 0, BodyBytes: 512, Auth: AuthValid, Weight: 2},
		{Group: 0, BodyBytes: 512, Auth: AuthWrong, ClientToken: ClientTokenRepeated, Loop: true},
		{Group: Unknown, BodyBytes: 256, ClientToken: ClientTokenUnique},
	}}
	f, err := NewFleet(sc.Groups)
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := Requests(&sc, f)
	if err != nil {
		t.Fatal(err)
	}
	// One cycle is 2+1+1 requests; the spread is the unknown tokens' 4096.
	if len(reqs) != 4096*4 {
		t.Fatalf("%d requests", len(reqs))
	}
	hdr := func(r Request, k string) string {
		for _, h := range r.Header {
			if string(h.Key) == k {
				return string(h.Value)
			}
		}
		return ""
	}
	g := f.Groups[0]
	// Shape 0 walks the automations in order with their own credentials.
	if reqs[0].URI == nil || string(reqs[0].URI) != "/webhook/flow/"+g.Tokens[0] || hdr(reqs[0], "Authorization") != "Bearer "+g.Credentials[0] {
		t.Fatalf("request 0: %s %q", reqs[0].URI, hdr(reqs[0], "Authorization"))
	}
	if string(reqs[1].URI) != "/webhook/flow/"+g.Tokens[1] || hdr(reqs[1], "Authorization") != "Bearer "+g.Credentials[1] {
		t.Fatalf("request 1: %s", reqs[1].URI)
	}
	r2 := reqs[2]
	if auth := hdr(r2, "Authorization"); !strings.HasPrefix(auth, "Bearer ") || auth == "Bearer "+g.Credentials[0] {
		t.Fatalf("wrong credential %q", auth)
	}
	if hdr(r2, "Client-Token") != "repeated-a_0" || hdr(r2, "Hookgate-Loop") != "a_0" {
		t.Fatalf("request 2 headers %q %q", hdr(r2, "Client-Token"), hdr(r2, "Hookgate-Loop"))
	}
	if r3 := reqs[3]; !r3.UniqueClientToken || len(r3.Body) != 256 || len(r3.Header) != 0 {
		t.Fatalf("request 3 %+v", r3)
	}
	// The shape's automations wrap: request 4*10 is automation 0 again... for shape 1 (once per cycle).
	if string(reqs[4*10+2].URI) != "/webhook/flow/"+g.Tokens[0] {
		t.Fatalf("shape 1 does not wrap around its group")
	}

	bad := sc
	bad.Shapes = []Shape{{Group: 3, BodyBytes: 512}}
	if _, err := Requests(&bad, f); err == nil {
		t.Fatal("a shape naming a missing group must fail")
	}
	bad.Shapes = []Shape{{Group: 0, BodyBytes: 10}}
	if _, err := Requests(&bad, f); err == nil {
		t.Fatal("a body below the minimum must fail")
	}
}

func TestBody(t *testing.T) {
	for _, n := range []int{MinBodyBytes, 1000, 1024, 64 << 10, 4 << 20} {
		b, err := Body(n)
		if err != nil || len(b) != n || !json.Valid(b) {
			t.Fatalf("Body(%d): %d bytes, valid %v, err %v", n, len(b), json.Valid(b), err)
		}
	}
	if _, err := Body(MinBodyBytes - 1); err == nil {
		t.Fatal("too small a body must fail")
	}
}

func TestSelect(t *testing.T) {
	all := Scenarios()
	s, err := Select(all, "all")
	if err != nil || len(s) != len(all) {
		t.Fatalf("all: %d, %v", len(s), err)
	}
	s, err = Select(all, "unknown_url, accept_json")
	if err != nil || len(s) != 2 || s[0].Name != "unknown_url" || s[1].Name != "accept_json" {
		t.Fatalf("list: %v", err)
	}
	if _, err := Select(all, "accept_json,nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown name: %v", err)
	}
	if _, err := Select(all, ","); err == nil {
		t.Fatal("empty list must fail")
	}
	for _, name := range QuickScenarios {
		if _, err := Select(all, name); err != nil {
			t.Fatalf("quick scenario %s: %v", name, err)
		}
	}
	names := map[string]bool{}
	for _, sc := range all {
		if names[sc.Name] || len(sc.Expect) == 0 || sc.About == "" {
			t.Fatalf("scenario %s: duplicate name, or no Expect or About", sc.Name)
		}
		names[sc.Name] = true
	}
}
