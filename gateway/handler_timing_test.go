package gateway

import (
	"testing"
)

// BenchmarkHandler drives Handle in process on each path, logging to a
// buffer and accepting into the real file sink, to find the pipeline's
// own cost apart from the network.
func BenchmarkHandler(b *testing.B) {
	g, _, _ := testGateway(b)
	bearer := "Bearer " + hCred
	miss := jsonOfSizeForTest(1024, "nothing")
	hit := jsonOfSizeForTest(1024, "product")
	bigMiss := jsonOfSizeForTest(1<<20, "nothing")
	bigHit := jsonOfSizeForTest(1<<20, "product")
	largestHit := jsonOfSizeForTest(4<<20, "product")
	for _, p := range []struct {
		name    string
		token   string
		body    []byte
		headers []string
	}{
		{"keyword-miss-1KiB", hTokCred, miss, []string{"Authorization", bearer}},
		{"keyword-miss-1MiB", hTokCred, bigMiss, []string{"Authorization", bearer}},
		{"accept-1KiB", hTokCred, hit, []string{"Authorization", bearer}},
		{"accept-1MiB", hTokCred, bigHit, []string{"Authorization", bearer}},
		{"accept-4MiB", hTokCred, largestHit, []string{"Authorization", bearer}},
		{"401", hTokCred, miss, []string{"Authorization", "Bearer nope"}},
		{"508", hTokCred, miss, []string{"Authorization", bearer, "Hookgate-Loop", "a,b,cred"}},
		{"404", "nope-0123456789abcdefghijk", miss, nil},
		{"403-disabled", hTokOff, miss, nil},
	} {
		b.Run(p.name, func(b *testing.B) {
			c := newCall()
			b.ReportAllocs()
			b.SetBytes(int64(len(p.body)))
			for i := 0; i < b.N; i++ {
				c.do(g, "POST", p.token, p.body, p.headers...)
			}
		})
	}
}
