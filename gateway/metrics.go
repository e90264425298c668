package gateway

import (
	"errors"
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hookgate/hookgate/cluster"
	"github.com/hookgate/hookgate/downstream"
	"github.com/hookgate/hookgate/idempotency"
	"github.com/hookgate/hookgate/limiter"
)

// Metrics are registered in the Gateway's own registry, never the global
// one. Label values come only from the configuration (table and
// automation ids) and from fixed sets (codes, scopes, results), so a
// request can't create a series: cardinality is bounded by the config.
//
// prometheus/client_golang was chosen over VictoriaMetrics/metrics by a
// request-path benchmark: both cost ≈50–90 ns per request for a counter,
// a histogram and a byte counter with 0 allocations, but only
// client_golang's histogram is lock-free (VictoriaMetrics' takes a mutex
// per update) and exposes standard `le` buckets for histogram_quantile.

// outcome slots: what a request ended with, one counter each per
// automation. The three outcomes of code 0 come first, then one slot per
// Refusal, in the order of the refusals table.
const (
	slotTriggered = iota
	slotKeywordMiss
	slotDuplicate
	slotRefusals
	nSlots = slotRefusals + len(refusals)
)

// slotLabels are each slot's code and result labels, derived from the
// refusals table so that no code is spelled twice.
var slotLabels = func() (l [nSlots][2]string) {
	l[slotTriggered] = [2]string{"0", "triggered"}
	l[slotKeywordMiss] = [2]string{"0", "keyword_miss"}
	l[slotDuplicate] = [2]string{"0", "duplicate"}
	for i, r := range refusals {
		result := "refused"
		if failure(r.Code) {
			result = "failed"
		}
		l[slotRefusals+i] = [2]string{strconv.Itoa(int(r.Code)), result}
	}
	return l
}()

// metrics holds the gateway's collectors.
type metrics struct {
	reg *prometheus.Registry

	duration    *latencyHistogram
	bodyBytes   prometheus.Counter
	fwdDuration *latencyHistogram
	fwdFailures [nFwdReasons]prometheus.Counter
	limited     [3]prometheus.Counter // by limiter.Scope
	tokens      [idempotency.Unavailable + 1]prometheus.Counter
	reloads     [2]prometheus.Counter // ok, failed
	generation  prometheus.Gauge
	// restartPending counts the settings of the live file that wait for a
	// restart (Reload).
	restartPending prometheus.Gauge
	logSampled     prometheus.Counter

	// mu guards routes, the per-automation state kept across reloads.
	mu     sync.Mutex
	routes map[string]*routeStats
	// unknown counts requests that name no automation.
	unknown *routeStats
}

// forwarding failure reasons, a fixed set.
const (
	fwdTimeout = iota
	fwdUnreachable
	fwdRejected
	fwdClosed
	fwdWrite
	fwdAborted
	fwdBreakerOpen
	fwdOther
	nFwdReasons
)

var fwdReasonLabels = [nFwdReasons]string{"timeout", "unreachable", "rejected", "closed", "write", "aborted", "breaker_open", "other"}

// routeStats is one automation's request counters and log sampler. A
// slot's series appears once the automation has answered with it.
type routeStats struct {
	table, id string
	// n counts the requests of each slot: a plain atomic add per request,
	// turned into hookgate_requests_total series at scrape time.
	n       [nSlots]atomic.Uint64
	sampler [nSlots]sampler
}

// inc counts one request in slot.
func (rs *routeStats) inc(slot int) { rs.n[slot].Add(1) }

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), routes: map[string]*routeStats{}}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promFactory{m.reg}
	m.reg.MustRegister(requestsCollector{m})
	m.duration = newLatencyHistogram(m.reg, "hookgate_request_duration_seconds", "Time from the request's headers to its answer.")
	m.bodyBytes = f.counter("hookgate_request_body_bytes_total", "Body bytes read from webhook requests.")
	m.fwdDuration = newLatencyHistogram(m.reg, "hookgate_forward_duration_seconds", "Time to hand one event to the flow engine, failures included.")
	fails := f.counterVec("hookgate_forward_failures_total", "Events the flow engine did not accept, by reason.", "reason")
	for i, l := range fwdReasonLabels {
		m.fwdFailures[i] = fails.WithLabelValues(l)
	}
	lim := f.counterVec("hookgate_rate_limited_total", "Requests refused by a rate limit, by the bucket that refused.", "scope")
	m.limited[limiter.Automation] = lim.WithLabelValues("automation")
	m.limited[limiter.Table] = lim.WithLabelValues("table")
	m.limited[limiter.None] = lim.WithLabelValues("none") // never incremented; keeps the index total
	tok := f.counterVec("hookgate_client_tokens_total", "Client-Token claims by result (claimed, duplicate, in_flight, full, unavailable).", "result")
	for r := idempotency.Claimed; r <= idempotency.Unavailable; r++ {
		m.tokens[r] = tok.WithLabelValues(r.String())
	}
	rel := f.counterVec("hookgate_config_reloads_total", "Configuration reloads by result.", "result")
	m.reloads[0], m.reloads[1] = rel.WithLabelValues("ok"), rel.WithLabelValues("failed")
	m.generation = f.gauge("hookgate_config_generation", "Generation of the configuration being served; 1 at start, +1 per successful reload.")
	m.restartPending = f.gauge("hookgate_config_restart_pending", "Settings changed by the last reload that are applied only at start and wait for a restart; 0 when the running settings are the file's.")
	m.logSampled = f.counter("hookgate_log_lines_sampled_out_total", "Request log lines dropped by sampling; the requests are still counted.")
	m.unknown = &routeStats{}
	return m
}

// route returns the stats of automation id in table, kept across reloads.
func (m *metrics) route(table, id string) *routeStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	rs := m.routes[id]
	if rs == nil || rs.table != table {
		rs = &routeStats{table: table, id: id}
		m.routes[id] = rs
	}
	return rs
}

// prune drops the series of automations that are no longer configured.
func (m *metrics) prune(keep map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.routes {
		if !keep[id] {
			delete(m.routes, id)
		}
	}
}

// forwardFailure counts a hand-over error by its kind.
func (m *metrics) forwardFailure(err error) {
	i := fwdOther
	switch {
	case err == errBreakerOpen:
		i = fwdBreakerOpen
	case errorIs(err, downstream.ErrTimeout):
		i = fwdTimeout
	case errorIs(err, downstream.ErrUnreachable):
		i = fwdUnreachable
	case errorIs(err, downstream.ErrRejected):
		i = fwdRejected
	case errorIs(err, downstream.ErrClosed):
		i = fwdClosed
	case errorIs(err, downstream.ErrWrite):
		i = fwdWrite
	case errorIs(err, downstream.ErrAborted):
		i = fwdAborted
	}
	m.fwdFailures[i].Inc()
}

// registerSink exports the hand-over's own counters.
func (m *metrics) registerSink(fwd Forwarder) {
	f := promFactory{m.reg}
	switch s := fwd.(type) {
	case *downstream.File:
		f.counterFunc("hookgate_file_sink_events_total", "Events appended to the file sink and fsynced.", func() float64 { return float64(s.Stats().Events) })
		f.counterFunc("hookgate_file_sink_fsyncs_total", "fsyncs of the file sink; events_total / fsyncs_total is the group-commit batch size.", func() float64 { return float64(s.Stats().Fsyncs) })
	case *downstream.HTTP:
		f.gaugeFunc("hookgate_downstream_connections", "Open connections to the flow engine.", func() float64 { return float64(s.Stats().Conns) })
		f.counterFunc("hookgate_downstream_requests_total", "Requests sent to the flow engine.", func() float64 { return float64(s.Stats().Requests) })
		f.counterFunc("hookgate_downstream_retries_total", "Hand-overs tried again on a new connection: after a failed dial, or for an event none of whose bytes was written.", func() float64 { return float64(s.Stats().DialRetries) })
		f.counterFunc("hookgate_downstream_resent_total", "Events sent again because the flow engine ended their pipelined connection with an earlier event's answer.", func() float64 { return float64(s.Stats().Resent) })
		f.counterFunc("hookgate_downstream_stray_answers_total", "Connections to the flow engine dropped, one event at a time, because it had sent bytes on them nobody asked for (a second answer, anything after a 101).", func() float64 { return float64(s.Stats().Stray) })
		f.counterFunc("hookgate_downstream_idle_closed_total", "Kept-alive connections the flow engine had closed while idle, found before an event was written on them and replaced.", func() float64 { return float64(s.Stats().IdleClosed) })
	}
}

// registerBreaker exports the circuit breaker's state.
func (m *metrics) registerBreaker(b *breaker) {
	f := promFactory{m.reg}
	f.gaugeFunc("hookgate_downstream_breaker_open", "1 while the flow engine circuit breaker sheds hand-overs.", func() float64 {
		if b.isOpen() {
			return 1
		}
		return 0
	})
	f.counterFunc("hookgate_downstream_breaker_openings_total", "Times the circuit breaker opened.", func() float64 { return float64(b.opened.Load()) })
}

// registerCluster exports the Redis-shared state's counters.
func (m *metrics) registerCluster(stats func() cluster.Stats) {
	f := promFactory{m.reg}
	f.counterFunc("hookgate_cluster_round_trips_total", "Commands sent to Redis (concurrent ones share network writes).", func() float64 { return float64(stats().RoundTrips) })
	f.counterFunc("hookgate_cluster_done_marks_total", "Client-Token done marks sent to Redis after the answers (each also a command).", func() float64 { return float64(stats().DoneMarks) })
	f.counterFunc("hookgate_cluster_done_mark_batches_total", "Pipelined batches the done marks were sent in.", func() float64 { return float64(stats().MarkBatches) })
	f.counterFunc("hookgate_cluster_errors_total", "Redis commands that failed or timed out.", func() float64 { return float64(stats().Errors) })
	f.counterFunc("hookgate_cluster_fallbacks_total", "Rate-limit decisions taken on local buckets because Redis could not answer.", func() float64 { return float64(stats().Fallbacks) })
	f.counterFunc("hookgate_cluster_local_denials_total", "Requests refused by a local note of a bucket Redis had refused, without a round trip.", func() float64 { return float64(stats().LocalDenials) })
	f.counterFunc("hookgate_cluster_cache_hits_total", "Client-Token duplicates answered from the in-process cache of done tokens.", func() float64 { return float64(stats().CacheHits) })
	f.gaugeFunc("hookgate_cluster_redis_down", "1 while Redis is taken to be unavailable.", func() float64 {
		if stats().Down {
			return 1
		}
		return 0
	})
}

// registerTokens exports the Client-Token store's size when it has one.
func (m *metrics) registerTokens(t TokenStore) {
	if l, ok := t.(LocalTokens); ok {
		promFactory{m.reg}.gaugeFunc("hookgate_client_tokens_stored", "Client-Tokens remembered (in flight or done within the window).", func() float64 { return float64(l.Store.Len()) })
		promFactory{m.reg}.gaugeFunc("hookgate_client_tokens_capacity", "Client-Tokens that can be remembered at once.", func() float64 { return float64(l.Store.Cap()) })
	}
}

// promFactory registers collectors in one registry.
type promFactory struct{ reg *prometheus.Registry }

var requestsDesc = prometheus.NewDesc("hookgate_requests_total",
	"Webhook requests by table, automation, answer code and result (triggered, keyword_miss, duplicate, refused, failed).",
	[]string{"table", "automation", "code", "result"}, nil)

// requestsCollector turns the per-automation counters into
// hookgate_requests_total at scrape time. Each series appears once its
// automation has answered with that code, and goes when the automation
// is removed from the configuration.
type requestsCollector struct{ m *metrics }

func (c requestsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- requestsDesc }

func (c requestsCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	all := make([]*routeStats, 0, len(c.m.routes)+1)
	for _, rs := range c.m.routes {
		all = append(all, rs)
	}
	c.m.mu.Unlock()
	all = append(all, c.m.unknown)
	for _, rs := range all {
		for slot := range rs.n {
			if n := rs.n[slot].Load(); n > 0 {
				l := slotLabels[slot]
				ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n), rs.table, rs.id, l[0], l[1])
			}
		}
	}
}

// latency buckets run from 25µs to ≈1.6s, doubling.
const (
	latencyBase    = 25 * time.Microsecond
	latencyBuckets = 17
)

// latencyHistogram is a Prometheus histogram with fixed doubling buckets
// whose Observe is three atomic adds and no search: the bucket of d is
// the bit length of ceil(d/25µs)-1. It is exported with the standard le
// buckets at scrape time.
type latencyHistogram struct {
	desc    *prometheus.Desc
	buckets [latencyBuckets + 1]atomic.Uint64 // the last one is +Inf
	count   atomic.Uint64
	sumNs   atomic.Uint64
}

func newLatencyHistogram(reg *prometheus.Registry, name, help string) *latencyHistogram {
	h := &latencyHistogram{desc: prometheus.NewDesc(name, help, nil, nil)}
	reg.MustRegister(h)
	return h
}

// observe records one duration.
func (h *latencyHistogram) observe(d time.Duration) {
	i := 0
	if d > 0 {
		u := (uint64(d) + uint64(latencyBase) - 1) / uint64(latencyBase)
		i = min(bits.Len64(u-1), latencyBuckets)
	}
	h.buckets[i].Add(1)
	h.count.Add(1)
	h.sumNs.Add(uint64(max(d, 0)))
}

func (h *latencyHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *latencyHistogram) Collect(ch chan<- prometheus.Metric) {
	cumulative := make(map[float64]uint64, latencyBuckets)
	var n uint64
	for i := 0; i < latencyBuckets; i++ {
		n += h.buckets[i].Load()
		cumulative[(latencyBase << i).Seconds()] = n
	}
	// count is read last: a request observed meanwhile can only make it
	// larger than the buckets, as Prometheus expects of +Inf.
	count := max(h.count.Load(), n+h.buckets[latencyBuckets].Load())
	ch <- prometheus.MustNewConstHistogram(h.desc, count, time.Duration(h.sumNs.Load()).Seconds(), cumulative)
}

func (f promFactory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f promFactory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f promFactory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f promFactory) counterFunc(name, help string, fn func() float64) {
	f.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
}

func (f promFactory) gaugeFunc(name, help string, fn func() float64) {
	f.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

func errorIs(err, target error) bool { return errors.Is(err, target) }
