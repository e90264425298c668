package matcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/cloudflare/ahocorasick"
)

// sink and parallelSink keep benchmark results alive so the compiler
// cannot drop the work.
var (
	sink         int
	parallelSink atomic.Int64
)

// absentKeywords are ten keywords a webhook might trigger on, none of which
// occurs in the generated bodies, raw or decoded: every byte of the body
// must be searched.
var absentKeywords = []string{
	"退款失败", "REFUND_FAILED", "chargeback", "紧急告警", "P0-incident",
	"订单取消", "dispute", "风控拦截", "timeout_exceeded", "黑名单",
}

type benchInput struct {
	name       string
	body       []byte
	keywords   []string
	ignoreCase bool
}

var (
	benchOnce   sync.Once
	benchInputs []benchInput
)

// inputs builds the benchmark inputs once: typical bodies, and bodies and
// keywords chosen to defeat a rare-byte prefilter.
func inputs(b *testing.B) []benchInput {
	benchOnce.Do(func() {
		big := orderBody(4<<20, false)
		escaped := orderBody(4<<20, true)
		small := orderBody(1<<10, false)
		benchInputs = []benchInput{
			{"4MiB", big, absentKeywords, false},
			{"4MiB-escaped", escaped, absentKeywords, false},
			{"4MiB-ignorecase", big, absentKeywords, true},
			// Keywords sharing a long prefix that the body repeats.
			{"4MiB-prefix", big, []string{
				`"pay_status":"paid_0`, `"pay_status":"paid_1`, `"pay_status":"paid_2`,
				`"pay_status":"paid_3`, `"pay_status":"paid_4`, `"pay_status":"paid_5`,
				`"pay_status":"paid_6`, `"pay_status":"paid_7`, `"pay_status":"paid_8`,
				`"pay_status":"paid_9`,
			}, false},
			// Keywords made only of the body's most common bytes.
			{"4MiB-commonbytes", big, []string{
				`"e":"`, `"a":"`, `"t":"`, `"n":"`, `"s":"`, `"o":"`, `"i":"`,
				`"r":"`, `"to":"`, `"at":"`,
			}, false},
			{"4MiB-commonbytes-ignorecase", big, []string{
				`"E":"`, `"A":"`, `"T":"`, `"N":"`, `"S":"`, `"O":"`, `"I":"`,
				`"R":"`, `"TO":"`, `"AT":"`,
			}, true},
			// One byte repeated, which every keyword's rarest byte is.
			{"4MiB-onebyte", bytes.Repeat([]byte{'"'}, 4<<20), []string{
				`""e`, `"e"`, `e""`, `"""e`, `"ee`, `""""e`, `"""""e`, `""""""e`,
				`"""""""e`, `""""""""e`,
			}, false},
			{"4MiB-onebyte-escaped", bytes.Repeat([]byte(`\"`), 2<<20), []string{
				`""e`, `"e"`, `e""`, `"""e`, `"ee`, `""""e`, `"""""e`, `""""""e`,
				`"""""""e`, `""""""""e`,
			}, false},
			{"1KiB", small, absentKeywords, false},
			{"1KiB-hit", small, append(absentKeywords[:9:9], "pay_status"), false},
		}
		for _, in := range benchInputs {
			kw, _ := oracleMatch(in.keywords, in.ignoreCase, in.body)
			if want := -1; strings.HasSuffix(in.name, "-hit") {
				want = len(in.keywords) - 1
				if kw != want {
					panic(fmt.Sprintf("%s: keyword %d found, want %d", in.name, kw, want))
				}
			} else if kw != want {
				panic(fmt.Sprintf("%s: keyword %d occurs in the body", in.name, kw))
			}
		}
	})
	return benchInputs
}

// orderBody returns a JSON array of ERP-like orders of about size bytes.
// With escaped, non-ASCII text is written as \uXXXX and slashes as \/,
// the way PHP's json_encode writes by default.
func orderBody(size int, escaped bool) []byte {
	rng := rand.New(rand.NewPCG(7, 7))
	words := []string{"新品", "无线降噪耳机", "黑色", "数据线", "杭州", "西湖区", "文三路",
		"客户急用", "请尽快发货", "贸易有限公司", "wireless", "headset", "cable", "black", "express"}
	phrase := func(n int) string {
		var sb strings.Builder
		for i := range n {
			if i > 0 && rng.IntN(3) == 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(words[rng.IntN(len(words))])
		}
		return sb.String()
	}
	type item struct {
		SKU   string `json:"sku"`
		Title string `json:"title"`
		Qty   int    `json:"qty"`
		Price string `json:"price"`
	}
	type order struct {
		OrderNo   string `json:"order_no"`
		CreatedAt string `json:"created_at"`
		Customer  string `json:"customer"`
		Items     []item `json:"items"`
		PayStatus string `json:"pay_status"`
		Total     string `json:"total"`
		URL       string `json:"url"`
		Remark    string `json:"remark"`
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteByte('[')
	for i := 0; buf.Len() < size; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		o := order{
			OrderNo:   fmt.Sprintf("SO-20240611-%06d", i),
			CreatedAt: fmt.Sprintf("2024-06-11T%02d:%02d:%02d+08:00", rng.IntN(24), rng.IntN(60), rng.IntN(60)),
			Customer:  phrase(2),
			PayStatus: []string{"paid", "unpaid", "partial"}[rng.IntN(3)],
			Total:     fmt.Sprintf("%d.%02d", rng.IntN(10000), rng.IntN(100)),
			URL:       fmt.Sprintf("https://erp.example.com/orders/%d/detail", rng.IntN(1e6)),
			Remark:    phrase(rng.IntN(6)),
		}
		for range 1 + rng.IntN(3) {
			o.Items = append(o.Items, item{
				SKU:   fmt.Sprintf("XP-%04d-BLK", rng.IntN(10000)),
				Title: phrase(1 + rng.IntN(3)),
				Qty:   1 + rng.IntN(9),
				Price: fmt.Sprintf("%d.%02d", rng.IntN(1000), rng.IntN(100)),
			})
		}
		if err := enc.Encode(o); err != nil {
			panic(err)
		}
		buf.Truncate(buf.Len() - 1) // the Encoder's newline
	}
	buf.WriteByte(']')
	if !escaped {
		return buf.Bytes()
	}
	var out []byte
	for s := buf.String(); s != ""; {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == '/':
			out = append(out, `\/`...)
		case r >= utf8.RuneSelf:
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, s[:n]...)
		}
		s = s[n:]
	}
	return out
}

func BenchmarkMatch(b *testing.B) {
	for _, in := range inputs(b) {
		b.Run(in.name+"/matcher", func(b *testing.B) {
			m, err := Compile(in.keywords, in.ignoreCase)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(in.body)))
			for b.Loop() {
				kw, _ := m.Match(in.body)
				sink += kw
			}
		})
		// The baselines search the raw bytes only, and compare case.
		b.Run(in.name+"/ahocorasick", func(b *testing.B) {
			m := ahocorasick.NewStringMatcher(in.keywords)
			b.ReportAllocs()
			b.SetBytes(int64(len(in.body)))
			for b.Loop() {
				if m.Contains(in.body) {
					sink++
				}
			}
		})
		b.Run(in.name+"/bytes.Contains", func(b *testing.B) {
			kws := make([][]byte, len(in.keywords))
			for i, kw := range in.keywords {
				kws[i] = []byte(kw)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(in.body)))
			for b.Loop() {
				for i, kw := range kws {
					if bytes.Contains(in.body, kw) {
						sink += i
						break
					}
				}
			}
		})
	}
}

// BenchmarkMatchParallel is the common case under load: small bodies
// matched from many goroutines against one Matcher.
func BenchmarkMatchParallel(b *testing.B) {
	in := inputs(b)
	for _, name := range []string{"1KiB", "1KiB-hit"} {
		for _, in := range in {
			if in.name != name {
				continue
			}
			b.Run(name, func(b *testing.B) {
				m, err := Compile(in.keywords, in.ignoreCase)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.SetBytes(int64(len(in.body)))
				b.RunParallel(func(pb *testing.PB) {
					n := 0
					for pb.Next() {
						kw, _ := m.Match(in.body)
						n += kw
					}
					parallelSink.Add(int64(n))
				})
			})
		}
	}
}

// BenchmarkScanner matches the 4 MiB bodies in 64 KiB pieces, as they
// would be read from a connection.
func BenchmarkScanner(b *testing.B) {
	for _, in := range inputs(b) {
		if !strings.HasPrefix(in.name, "4MiB") {
			continue
		}
		b.Run(in.name, func(b *testing.B) {
			m, err := Compile(in.keywords, in.ignoreCase)
			if err != nil {
				b.Fatal(err)
			}
			var s Scanner
			b.ReportAllocs()
			b.SetBytes(int64(len(in.body)))
			for b.Loop() {
				s.Reset(m)
				for rest := in.body; len(rest) > 0; {
					n := min(len(rest), 64<<10)
					s.Write(rest[:n])
					rest = rest[n:]
				}
				kw, _ := s.Result()
				sink += kw
			}
		})
	}
}
