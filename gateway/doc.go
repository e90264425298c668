// Package gateway is hookgate's request pipeline: it loads and compiles the
// configuration, runs the checks of the contract (SPEC §3) in order on each
// webhook request, builds the event envelope (SPEC §7) and hands accepted
// events to the flow engine through a Forwarder.
//
// The pipeline is built for floods: every check that needs only the request
// line and headers runs before the body is read, refusals are pre-rendered
// byte slices, and the accept path reuses pooled buffers, so a request makes
// no heap allocation in steady state.
package gateway
