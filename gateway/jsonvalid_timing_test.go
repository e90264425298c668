package gateway

import (
	"encoding/json"
	"testing"

	"github.com/valyala/fastjson"
)

// BenchmarkValidJSON compares the validator with encoding/json and
// fastjson on a 1 KiB and a 64 KiB body.
func BenchmarkValidJSON(b *testing.B) {
	for _, n := range []int{1 << 10, 64 << 10} {
		body := jsonOfSizeForTest(n, "x")
		for _, v := range []struct {
			name  string
			valid func([]byte) bool
		}{
			{"hookgate", validJSON},
			{"encoding-json", json.Valid},
			{"fastjson", func(b []byte) bool { return fastjson.ValidateBytes(b) == nil }},
		} {
			b.Run(v.name+"/"+sizeName(n), func(b *testing.B) {
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
