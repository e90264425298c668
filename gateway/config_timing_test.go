package gateway

import (
	"fmt"
	"testing"
)

// BenchmarkParse measures loading a configuration of many automations,
// which a start and every reload pay.
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{100, 10000} {
		data := fleetYAML(n)
		b.Run(fmt.Sprintf("automations=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(data, noEnv); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fleetYAML returns a valid configuration of n automations in tables of
// 100, each with a credential, keywords, an allow-list and a sample.
func fleetYAML(n int) []byte {
	b := []byte("downstream: {url: \"http://127.0.0.1:8081/events\"}\ntables:\n")
	for i := range n {
		if i%100 == 0 {
			b = fmt.Appendf(b, "  - id: t%d\n    automations:\n", i/100)
		}
		b = fmt.Appendf(b, "      - id: a%d\n        token: \"tok%040d\"\n        credential: \"cred%040d\"\n"+
			"        keywords: [\"product\", \"新品\"]\n        ip_allow: [\"10.0.0.0/8\", \"::1/128\"]\n"+
			"        format: json\n        sample: '{\"event\":\"new product\",\"n\":%d}'\n", i, i, i, i)
	}
	return b
}
