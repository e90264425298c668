package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// oracle is the exact quantile of sorted values with Quantile's rank rule.
func oracle(sorted []int64, q float64) int64 {
	if q <= 0 {
		return sorted[0]
	}
	if q >= 1 {
		return sorted[len(sorted)-1]
	}
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

var quantiles = []float64{0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1}

// checkQuantiles compares h with the oracle over values: within 1%, and
// exact below 256 where every value has its own bucket.
func checkQuantiles(t *testing.T, h *Histogram, values []int64) {
	t.Helper()
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	if h.Count() != uint64(len(values)) {
		t.Fatalf("count %d, want %d", h.Count(), len(values))
	}
	for _, q := range quantiles {
		got, want := h.Quantile(q), oracle(sorted, q)
		tol := float64(want) * 0.01
		if want < 2*subCount {
			tol = 0
		}
		if math.Abs(float64(got-want)) > tol {
			t.Errorf("q%g: got %d, want %d ± %.0f", q, got, want, tol)
		}
	}
	if h.Min() != sorted[0] || h.Max() != sorted[len(sorted)-1] {
		t.Errorf("min/max %d/%d, want %d/%d", h.Min(), h.Max(), sorted[0], sorted[len(sorted)-1])
	}
}

func TestHistogramOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		n    int
		gen  func() int64
	}{
		{"small exact", 10000, func() int64 { return r.Int64N(256) }},
		{"uniform µs", 100000, func() int64 { return 1000 + r.Int64N(1_000_000) }},
		{"exponential", 100000, func() int64 { return int64(r.ExpFloat64() * 200_000) }},
		{"lognormal tail", 100000, func() int64 { return int64(math.Exp(r.NormFloat64()*1.5 + 12)) }},
		{"constant", 1000, func() int64 { return 123_456_789 }},
		{"powers of two", 64, func() int64 { return 1 << r.IntN(39) }},
		{"bucket edges", 5000, func() int64 { return int64(1)<<(8+r.IntN(30)) - 1 + r.Int64N(3) }},
		{"single", 1, func() int64 { return 42_000 }},
		{"huge", 1000, func() int64 { return int64(r.IntN(1<<20)) << 20 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistogram()
			values := make([]int64, tc.n)
			for i := range values {
				values[i] = tc.gen()
				h.Record(values[i])
			}
			checkQuantiles(t, h, values)
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var all []int64
	merged := NewHistogram()
	for part := range 8 {
		h := NewHistogram()
		// Each part has its own range, so the merge must combine tails.
		scale := float64(int64(1000) << (2 * part))
		for range 5000 {
			v := int64(r.ExpFloat64() * scale)
			h.Record(v)
			all = append(all, v)
		}
		merged.Merge(h)
	}
	merged.Merge(NewHistogram()) // an empty one changes nothing
	checkQuantiles(t, merged, all)
	var mean float64
	for _, v := range all {
		mean += float64(v)
	}
	mean /= float64(len(all))
	if math.Abs(merged.Mean()-mean) > mean*1e-9 {
		t.Errorf("mean %g, want %g", merged.Mean(), mean)
	}
}

func TestHistogramEdges(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(0.5) != 0 || h.Quantile(0) != 0 || h.Quantile(1) != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("an empty histogram must answer 0")
	}
	if p := h.Percentiles(); p != (Percentiles{}) {
		t.Fatalf("empty percentiles %+v", p)
	}

	h.Record(-5) // counts as 0
	if h.Min() != 0 || h.Quantile(1) != 0 {
		t.Fatalf("negative value: min %d max %d", h.Min(), h.Quantile(1))
	}

	h.Reset()
	big := int64(3) << 40 // past the last bucket: clamped there, Max exact
	h.Record(1000)
	h.Record(big)
	if h.Max() != big || h.Quantile(1) != big {
		t.Fatalf("max %d, want %d", h.Max(), big)
	}
	if got := h.Quantile(0.99); got > big || got < maxValue/2 {
		t.Fatalf("q0.99 of an overflowed value: %d", got)
	}
	if got := h.Quantile(0.5); got < 1000 || got > 1004 || h.Quantile(0) != 1000 {
		t.Fatalf("q0.5 %d, q0 %d, want 1000 (q0.5 within its bucket)", got, h.Quantile(0))
	}

	// Quantiles never leave [min, max], even though a bucket's midpoint may.
	h.Reset()
	h.Record(1_000_001)
	if got := h.Quantile(0.5); got != 1_000_001 {
		t.Fatalf("one value: q0.5 %d", got)
	}

	// The rank rule: q0.999 of 1..1000 is the 999th value, q0.5 the 500th.
	h.Reset()
	for i := 1; i <= 1000; i++ {
		h.Record(int64(i))
	}
	near := func(got time.Duration, want int64) bool {
		return math.Abs(float64(int64(got)-want)) <= float64(want)/256
	}
	p := h.Percentiles()
	if !near(p.P50, 500) || !near(p.P90, 900) || !near(p.P99, 990) || !near(p.P999, 999) || p.Max != 1000 {
		t.Fatalf("percentiles of 1..1000: %+v", p)
	}
	// Below 256 every value has its own bucket: exact.
	h.Reset()
	for i := 1; i <= 200; i++ {
		h.Record(int64(i))
	}
	if h.Quantile(0.5) != 100 || h.Quantile(0.995) != 199 || h.Quantile(0.001) != 1 {
		t.Fatalf("1..200: q0.5 %d q0.995 %d q0.001 %d", h.Quantile(0.5), h.Quantile(0.995), h.Quantile(0.001))
	}
	h.RecordDuration(2 * time.Second)
	if h.Max() != int64(2*time.Second) {
		t.Fatalf("RecordDuration: max %d", h.Max())
	}
}

func TestBucketLayout(t *testing.T) {
	// Every value maps to a bucket whose range holds it; buckets are
	// contiguous and at most 1/128 of their lowest value wide.
	prevLo, prevW := int64(-1), int64(1)
	for i := range numBuckets {
		lo, w := bucketRange(i)
		if lo != prevLo+prevW {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevLo+prevW)
		}
		if lo >= 2*subCount && w*subCount > lo {
			t.Fatalf("bucket %d [%d,+%d) is too wide", i, lo, w)
		}
		for _, v := range []int64{lo, lo + w - 1} {
			if b := bucketOf(v); b != i {
				t.Fatalf("value %d in bucket %d, want %d", v, b, i)
			}
		}
		prevLo, prevW = lo, w
	}
	if prevLo+prevW-1 != maxValue {
		t.Fatalf("last bucket ends at %d, want %d", prevLo+prevW-1, maxValue)
	}
}
