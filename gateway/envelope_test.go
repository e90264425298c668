package gateway

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestAppendReceivedAt: the hand-written RFC 3339 millisecond form equals
// time's own for every kind of instant — other zones, leap days, the last
// millisecond of a year, before 1970, and years outside four digits (which
// fall back to time's).
func TestAppendReceivedAt(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	cases := []time.Time{
		time.Date(2026, 11, 27, 10, 36, 2, 795_000_000, time.UTC),
		time.Date(2026, 11, 27, 2, 5, 9, 7_999_999, shanghai),
		time.Date(2024, 2, 29, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 1_000_000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 6, 15, 12, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
		time.Now(),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		cases = append(cases, time.UnixMilli(r.Int64N(500*365*24*3600*1000)-200*365*24*3600*1000).Add(time.Duration(r.IntN(1e6))))
	}
	for _, c := range cases {
		want := c.UTC().AppendFormat(nil, receivedAtLayout)
		if got := appendReceivedAt([]byte("x"), c); string(got) != "x"+string(want) {
			t.Fatalf("%v: %s, want x%s", c, got, want)
		}
	}
}

func BenchmarkAppendReceivedAt(b *testing.B) {
	now := time.Now()
	buf := make([]byte, 0, 64)
	b.Run("AppendFormat", func(b *testing.B) {
		for b.Loop() {
			buf = now.UTC().AppendFormat(buf[:0], receivedAtLayout)
		}
	})
	b.Run("appendReceivedAt", func(b *testing.B) {
		for b.Loop() {
			buf = appendReceivedAt(buf[:0], now)
		}
	})
}
