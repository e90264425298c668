package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/hookgate/hookgate/cluster"
	"github.com/hookgate/hookgate/downstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestLatencyHistogram checks bucket placement at and around every bound
// against a direct comparison with the le bounds.
func TestLatencyHistogram(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newLatencyHistogram(reg, "h_seconds", "test")
	var durations []time.Duration
	for i := 0; i <= latencyBuckets; i++ {
		b := latencyBase << i
		durations = append(durations, b-1, b, b+1)
	}
	durations = append(durations, 0, -5, time.Hour)
	for _, d := range durations {
		h.observe(d)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := mfs[0].Metric[0].Histogram
	if got.GetSampleCount() != uint64(len(durations)) {
		t.Fatalf("count %d, want %d", got.GetSampleCount(), len(durations))
	}
	for _, b := range got.Bucket {
		want := uint64(0)
		for _, d := range durations {
			if d.Seconds() <= b.GetUpperBound()+1e-12 {
				want++
			}
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("le=%g: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	_ = dto.MetricType_HISTOGRAM
}

// TestSlotLabels: every refusal's outcome is counted under its own code,
// as failed only when the gateway failed, and the code-0 outcomes under
// theirs.
func TestSlotLabels(t *testing.T) {
	for _, r := range refusals {
		l := slotLabels[slotOf(&outcome{refusal: r})]
		want := "refused"
		if r == ErrUnavailable {
			want = "failed"
		}
		if l[0] != fmt.Sprint(int(r.Code)) || l[1] != want {
			t.Errorf("%d counts as %v, want [%d %s]", r.Code, l, r.Code, want)
		}
	}
	for reason, want := range map[string]string{"": "triggered", reasonKeywordMiss: "keyword_miss", reasonDuplicate: "duplicate"} {
		if l := slotLabels[slotOf(&outcome{reason: reason})]; l != [2]string{"0", want} {
			t.Errorf("code 0 %q counts as %v, want %s", reason, l, want)
		}
	}
}

// TestClusterMetrics: the Redis-shared state's counters are exported
// under the names the README and the bench suite read.
func TestClusterMetrics(t *testing.T) {
	m := newMetrics()
	st := cluster.Stats{RoundTrips: 10, DoneMarks: 4, MarkBatches: 2, Errors: 1, Fallbacks: 3, LocalDenials: 5, CacheHits: 6, Down: true}
	m.registerCluster(func() cluster.Stats { return st })
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, x := range mf.Metric {
			switch {
			case x.Counter != nil:
				got[mf.GetName()] = x.Counter.GetValue()
			case x.Gauge != nil:
				got[mf.GetName()] = x.Gauge.GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"hookgate_cluster_round_trips_total":       10,
		"hookgate_cluster_done_marks_total":        4,
		"hookgate_cluster_done_mark_batches_total": 2,
		"hookgate_cluster_errors_total":            1,
		"hookgate_cluster_fallbacks_total":         3,
		"hookgate_cluster_local_denials_total":     5,
		"hookgate_cluster_cache_hits_total":        6,
		"hookgate_cluster_redis_down":              1,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (exported: %v), want %v", name, v, ok, want)
		}
	}
}

// TestDownstreamMetrics: an HTTP flow engine's counters are exported,
// retries and re-sends among them.
func TestDownstreamMetrics(t *testing.T) {
	s, err := downstream.Open(downstream.Config{URL: "http://127.0.0.1:9/events"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := newMetrics()
	m.registerSink(s)
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"hookgate_downstream_connections", "hookgate_downstream_requests_total",
		"hookgate_downstream_retries_total", "hookgate_downstream_resent_total", "hookgate_downstream_stray_answers_total", "hookgate_downstream_idle_closed_total"} {
		if !got[name] {
			t.Errorf("%s is not exported", name)
		}
	}
}
