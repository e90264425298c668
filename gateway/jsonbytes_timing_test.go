package gateway

import (
	"strings"
	"testing"
)

// BenchmarkAppendOneLine measures the one-line copy of a body into an
// event against a plain copy, the floor, on bodies without line breaks
// and with one every 80 bytes.
func BenchmarkAppendOneLine(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 20, 4 << 20} {
		flat := jsonOfSizeForTest(n, "x")
		lines := []byte(strings.ReplaceAll(string(jsonOfSizeForTest(n, "x")), strings.Repeat("x", 79), strings.Repeat("x", 78)+"\",\n\""))
		lines = append(lines[:0:0], lines...)
		for _, body := range []struct {
			name string
			b    []byte
		}{{"flat", flat}, {"lines", lines}} {
			dst := make([]byte, 0, len(body.b)+64)
			b.Run("copy/"+sizeName(n)+"/"+body.name, func(b *testing.B) {
				b.SetBytes(int64(len(body.b)))
				for i := 0; i < b.N; i++ {
					dst = append(dst[:0], body.b...)
				}
			})
			b.Run("oneline/"+sizeName(n)+"/"+body.name, func(b *testing.B) {
				b.SetBytes(int64(len(body.b)))
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					dst = appendOneLine(dst[:0], body.b)
				}
			})
		}
	}
}
