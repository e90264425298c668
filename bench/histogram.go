package bench

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear, like HdrHistogram: values below 2^(subBits+1)
// have a bucket each; above, every power-of-two range [2^e, 2^(e+1)) is split
// into 2^subBits equal buckets. A bucket is at most 2^-subBits of its lowest
// value wide, and a value is reported as its bucket's midpoint, so the
// relative error is at most 2^-(subBits+1) = 0.39%.
const (
	subBits  = 7
	subCount = 1 << subBits
	// maxBits bounds recordable values: 2^40 ns is 18 minutes. Larger values
	// land in the last bucket; Max stays exact.
	maxBits    = 40
	numBuckets = (maxBits - subBits + 1) * subCount
	maxValue   = int64(1)<<maxBits - 1
)

// Histogram records non-negative values (latencies in nanoseconds) in fixed
// memory. Record does not allocate. A Histogram is not safe for concurrent
// use: give each goroutine its own and Merge them afterwards.
type Histogram struct {
	counts [numBuckets]uint64
	count  uint64
	sum    float64
	min    int64
	max    int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	h := &Histogram{}
	h.Reset()
	return h
}

// Reset empties h.
func (h *Histogram) Reset() {
	clear(h.counts[:])
	h.count, h.sum, h.min, h.max = 0, 0, math.MaxInt64, 0
}

// bucketOf returns the index of the bucket holding v (0 ≤ v ≤ maxValue).
func bucketOf(v int64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 1 - subBits
	return shift*subCount + int(v>>shift)
}

// bucketRange returns the lowest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < 2*subCount {
		return int64(i), 1
	}
	shift := i/subCount - 1
	m := int64(i%subCount + subCount)
	return m << shift, int64(1) << shift
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.count++
	h.sum += float64(v)
	if v > maxValue {
		v = maxValue
	}
	h.counts[bucketOf(v)]++
}

// RecordDuration adds one duration in nanoseconds.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.count == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.count += o.count
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.count }

// Min is the smallest recorded value, 0 when empty.
func (h *Histogram) Min() int64 {
	if h.count == 0 {
		return 0
	}
	return h.min
}

// Max is the largest recorded value (exact), 0 when empty.
func (h *Histogram) Max() int64 { return h.max }

// Mean is the average recorded value, 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.count == 0 {
		return 0
	}
	return h.sum / float64(h.count)
}

// Quantile returns the value at quantile q (0 ≤ q ≤ 1): the rank-th smallest
// value with rank = ceil(q·count), at least 1, within 0.4%. Quantile(0) is
// Min and Quantile(1) is Max, both exact. An empty histogram answers 0.
func (h *Histogram) Quantile(q float64) int64 {
	if h.count == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.count)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := bucketRange(i)
			v := lo + (w-1)/2
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// Percentiles are the latencies a report shows.
type Percentiles struct {
	P50  time.Duration `json:"p50"`
	P90  time.Duration `json:"p90"`
	P99  time.Duration `json:"p99"`
	P999 time.Duration `json:"p99_9"`
	Max  time.Duration `json:"max"`
	Mean time.Duration `json:"mean"`
}

// Percentiles summarises h, whose values are nanoseconds.
func (h *Histogram) Percentiles() Percentiles {
	return Percentiles{
		P50:  time.Duration(h.Quantile(0.50)),
		P90:  time.Duration(h.Quantile(0.90)),
		P99:  time.Duration(h.Quantile(0.99)),
		P999: time.Duration(h.Quantile(0.999)),
		Max:  time.Duration(h.Max()),
		Mean: time.Duration(h.Mean()),
	}
}
