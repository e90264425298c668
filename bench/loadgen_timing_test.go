package bench

import (
	"testing"
	"time"
)

// BenchmarkGeneratorRequest is the generator's cost per request against
// a loopback fasthttp server in the same process (both sides are in the
// numbers): prepare, send, read, record.
func BenchmarkGeneratorRequest(b *testing.B) {
	addr := serve(b, gatewayLike)
	body, _ := Body(1024)
	target := Target{Addr: addr, Requests: []Request{
		{URI: []byte("/webhook/flow/a"), Body: body, Header: []Header{{[]byte("Authorization"), []byte("Bearer x")}}},
		{URI: []byte("/webhook/flow/b"), Body: body, UniqueClientToken: true},
	}}
	l := Load{Conns: 1, Duration: time.Second, Timeout: 5 * time.Second}
	w := newWorker(&target, &l, 0, "bench")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		w.prepare()
		err := w.do()
		w.record(time.Microsecond, err)
	}
	if w.counts.Errors() != 0 {
		b.Fatalf("errors: %v", w.counts.errs)
	}
}

var sinkQuantile int64

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	v := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		v += 7919
		h.Record(v & (1<<30 - 1))
	}
	sinkQuantile = h.Quantile(0.99)
}

func BenchmarkHistogramQuantile(b *testing.B) {
	h := NewHistogram()
	for i := range int64(100000) {
		h.Record(i * 997)
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkQuantile = h.Quantile(0.999)
	}
}

var sinkCode int64

func BenchmarkCode(b *testing.B) {
	body := []byte(`{"msg":"","data":{"triggered":true,"event_id":"019375a1-7c2e-7d3a-9f10-2b8c4e6d1a55"},"code":0}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		c, _ := Code(body)
		sinkCode += c
	}
}
