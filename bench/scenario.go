package bench

import (
	"fmt"
	"strings"
)

// Sink is where a scenario's gateway hands accepted events.
type Sink int

const (
	// SinkHTTP forwards to the suite's flow-engine sink process.
	SinkHTTP Sink = iota
	// SinkFile appends to a file: sink with fsync group commit.
	SinkFile
	// SinkUnix forwards to the same sink process over its Unix socket
	// (downstream.socket) instead of TCP.
	SinkUnix
)

func (s Sink) String() string {
	switch s {
	case SinkFile:
		return "file"
	case SinkUnix:
		return "unix"
	}
	return "http"
}

// engine reports whether the sink is the suite's flow-engine process.
func (s Sink) engine() bool { return s == SinkHTTP || s == SinkUnix }

// Auth is the Authorization header a shape sends.
type Auth int

const (
	AuthNone  Auth = iota // no header
	AuthValid             // the automation's own credential
	AuthWrong             // a Bearer credential that matches no automation
)

// ClientTokenMode is the Client-Token header a shape sends.
type ClientTokenMode int

const (
	ClientTokenNone     ClientTokenMode = iota // no header
	ClientTokenRepeated                        // one fixed value per automation: duplicates after the first
	ClientTokenUnique                          // a new value on every request
)

// Unknown as a Shape's Group sends to tokens that name no automation.
const Unknown = -1

// Shape is one kind of request of a scenario.
type Shape struct {
	// Group indexes the scenario's Groups; requests spread over all of its
	// automations. Unknown sends to tokens no automation has.
	Group       int
	BodyBytes   int
	Auth        Auth
	ClientToken ClientTokenMode
	// Loop sends Hookgate-Loop naming the target automation itself (508).
	Loop bool
	// Weight is the shape's share of a mix; 0 counts as 1.
	Weight int
}

// Scenario is a request shape (or a mix of them) plus the gateway
// configuration it needs.
type Scenario struct {
	Name  string
	About string
	Sink  Sink
	// Groups are the automations of the scenario's gateway configuration.
	Groups []Group
	Shapes []Shape
	// Expect lists the answer codes a healthy run sees.
	Expect []int64
	// Pipeline is the gateway's downstream.pipeline; 0 keeps the default.
	Pipeline int
	// Cluster runs the gateway with its rate limits and Client-Tokens in
	// a redis-server the suite starts on loopback.
	Cluster bool
}

// BodyBytes is the body size of the scenario's first shape: the size its
// bare baseline is measured with.
func (s *Scenario) BodyBytes() int { return s.Shapes[0].BodyBytes }

// The fleet the throughput scenarios spread over: thousands of automations
// with limits high enough never to refuse.
const (
	fleetAutomations = 4096
	fleetTables      = 256
	fleetRPS         = 100000 // per automation; tables get 1e6
)

// absentKeywords never occur in the generated bodies: the keyword-miss
// path scans the whole body for all ten.
var absentKeywords = []string{"refund", "chargeback", "escalation", "outage", "P0-incident",
	"cancelled", "fraud", "urgent", "新品", "VIP-customer"}

func fleet(name, format string) Group {
	return Group{Name: name, Automations: fleetAutomations, Tables: fleetTables, Format: format, RPS: fleetRPS}
}

// Scenarios returns every scenario, in report order.
func Scenarios() []Scenario {
	const kb = 1 << 10
	kwFleet := fleet("kw", "json")
	kwFleet.Keywords = absentKeywords
	credFleet := fleet("cred", "json")
	credFleet.Credential = true
	offFleet := fleet("off", "json")
	offFleet.Disabled = true
	ok := []int64{0}
	return []Scenario{
		{Name: "accept_json", About: "1 KB JSON accepted, format json, forwarded to the flow-engine sink",
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{BodyBytes: kb}}, Expect: ok},
		{Name: "accept_text", About: "1 KB accepted, format text, forwarded",
			Groups: []Group{fleet("acc", "text")}, Shapes: []Shape{{BodyBytes: kb}}, Expect: ok},
		{Name: "accept_none", About: "1 KB accepted, format none, forwarded",
			Groups: []Group{fleet("acc", "none")}, Shapes: []Shape{{BodyBytes: kb}}, Expect: ok},
		{Name: "accept_unix", About: "1 KB JSON accepted, format json, forwarded to the same sink over a Unix socket", Sink: SinkUnix,
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{BodyBytes: kb}}, Expect: ok},
		{Name: "accept_pipelined", About: "1 KB JSON accepted, format json, forwarded to the sink with up to 16 events in flight per connection (downstream.pipeline: 16)",
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{BodyBytes: kb}}, Expect: ok, Pipeline: 16},
		{Name: "accept_file", About: "1 KB JSON accepted into the file: sink (fsync group commit)", Sink: SinkFile,
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{BodyBytes: kb}}, Expect: ok},
		{Name: "keyword_miss", About: "1 KB JSON, none of 10 keywords present: scanned, not forwarded",
			Groups: []Group{kwFleet}, Shapes: []Shape{{BodyBytes: kb}}, Expect: ok},
		{Name: "duplicate", About: "one Client-Token per automation, repeated: the first triggers, the rest are duplicates",
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{BodyBytes: kb, ClientToken: ClientTokenRepeated}}, Expect: ok},
		{Name: "rate_limited", About: "one anonymous automation at the default 1 req/s, hammered: 429",
			Groups: []Group{{Name: "hot", Automations: 1, Tables: 1, Format: "json"}},
			Shapes: []Shape{{BodyBytes: kb}}, Expect: []int64{800005652, 0}},
		{Name: "bad_credential", About: "wrong Bearer credential: 401 before the body is read",
			Groups: []Group{credFleet}, Shapes: []Shape{{BodyBytes: kb, Auth: AuthWrong}}, Expect: []int64{800005649}},
		{Name: "unknown_url", About: "token naming no automation: 404 before the body is read",
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{Group: Unknown, BodyBytes: kb}}, Expect: []int64{800004404}},
		{Name: "disabled", About: "disabled automation: 403",
			Groups: []Group{offFleet}, Shapes: []Shape{{BodyBytes: kb}}, Expect: []int64{800004509}},
		{Name: "loop", About: "Hookgate-Loop already holds the target: 508",
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{BodyBytes: kb, Loop: true}}, Expect: []int64{800005646}},
		{Name: "accept_tokens", About: "1 KB JSON accepted with a new Client-Token each, state in process (baseline of accept_tokens_cluster)",
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{BodyBytes: kb, ClientToken: ClientTokenUnique}}, Expect: ok},
		{Name: "accept_tokens_cluster", About: "as accept_tokens, with rate limits and Client-Tokens in Redis on loopback",
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{BodyBytes: kb, ClientToken: ClientTokenUnique}}, Expect: ok, Cluster: true},
		{Name: "body_64k", About: "64 KB JSON accepted and forwarded",
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{BodyBytes: 64 * kb}}, Expect: ok},
		{Name: "body_1m", About: "1 MiB JSON accepted and forwarded",
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{BodyBytes: 1 << 20}}, Expect: ok},
		{Name: "body_4m", About: "4 MiB JSON (exactly max_body_bytes) accepted and forwarded",
			Groups: []Group{fleet("acc", "json")}, Shapes: []Shape{{BodyBytes: 4 << 20}}, Expect: ok},
		{Name: "mix", About: "40% accept (unique Client-Token), 20% keyword miss, 10% accept with credential, 10% bad credential, 10% unknown, 10% duplicate",
			Groups: []Group{fleet("acc", "json"), kwFleet, credFleet},
			Shapes: []Shape{
				{Group: 0, BodyBytes: kb, ClientToken: ClientTokenUnique, Weight: 4},
				{Group: 1, BodyBytes: kb, Weight: 2},
				{Group: 2, BodyBytes: kb, Auth: AuthValid, Weight: 1},
				{Group: 2, BodyBytes: kb, Auth: AuthWrong, Weight: 1},
				{Group: Unknown, BodyBytes: kb, Weight: 1},
				{Group: 0, BodyBytes: kb, ClientToken: ClientTokenRepeated, Weight: 1},
			},
			Expect: []int64{0, 800005649, 800004404}},
	}
}

// QuickScenarios are the ones -quick runs by default.
var QuickScenarios = []string{"accept_json", "accept_file", "keyword_miss", "unknown_url"}

// Select returns the scenarios named in a comma-separated list, in the
// list's order; "all" or "" selects every scenario.
func Select(all []Scenario, list string) ([]Scenario, error) {
	if list == "" || list == "all" {
		return all, nil
	}
	var out []Scenario
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, s := range all {
			if s.Name == name {
				out = append(out, s)
				found = true
				break
			}
		}
		if !found {
			names := make([]string, len(all))
			for i, s := range all {
				names[i] = s.Name
			}
			return nil, fmt.Errorf("unknown scenario %q; known: %s", name, strings.Join(names, ", "))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenarios in %q", list)
	}
	return out, nil
}
