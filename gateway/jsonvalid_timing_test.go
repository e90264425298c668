package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

// BenchmarkValidJSON compares the validator with encoding/json and
// fastjson on a 1 KiB and a 64 KiB body, and on 64 KiB of strings made of
// \u escapes, where plain runs are short.
func BenchmarkValidJSON(b *testing.B) {
	escaped := []byte(`{"note":"` + strings.Repeat(`\u65b0\u54c1 `, (64<<10)/13) + `"}`)
	for _, n := range []int{1 << 10, 64 << 10, -1} {
		body, name := escaped, "64KiB-escaped"
		if n > 0 {
			body, name = jsonOfSizeForTest(n, "x"), sizeName(n)
		}
		for _, v := range []struct {
			name  string
			valid func([]byte) bool
		}{
			{"hookgate", validJSON},
			// The same without the vectorized string scan, in the same
			// run: what the scan gains.
			{"hookgate-portable", func(b []byte) bool {
				old := hasAVX2
				hasAVX2 = false
				ok := validJSON(b)
				hasAVX2 = old
				return ok
			}},
			{"encoding-json", json.Valid},
			{"fastjson", func(b []byte) bool { return fastjson.ValidateBytes(b) == nil }},
		} {
			b.Run(v.name+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				ok := true
				for i := 0; i < b.N; i++ {
					ok = ok && v.valid(body)
				}
				if !ok {
					b.Fatal("invalid")
				}
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string { return string(appendInt(nil, n)) }
