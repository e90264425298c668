// Package bench is hookgate's benchmark suite: a load generator on
// fasthttp's client (closed loop and open loop, with a log-linear latency
// histogram), the scenarios that drive a real hookgate process (each a
// request shape plus the configuration it needs), the flow-engine sink and
// bare baseline servers, and the report (markdown, JSON and an SVG chart).
//
// cmd/hookbench wires it: it parses flags into Options, runs the Suite they
// describe and saves the Report.
package bench
