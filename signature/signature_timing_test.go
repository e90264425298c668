package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
	"time"
)

var benchSink int

// BenchmarkVerify measures Begin + Write + Finish for a 1 KiB body, per
// scheme, with one secret and with two (a rotation in progress, which
// hashes the body twice). The baselines are a plain HMAC-SHA256 of the
// same body: keyed afresh with hmac.New each time, and reused with Reset.
func BenchmarkVerify(b *testing.B) {
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	now := time.Unix(1700000000, 0)
	for _, cfg := range roundTripConfigs()[:7] {
		for _, nsecrets := range []int{1, 2} {
			cfg := cfg
			cfg.Secrets = append([]string{cfg.Secrets[0]}, cfg.Secrets...)[:nsecrets]
			name := cfg.Scheme
			if cfg.Header != "" {
				name += "/" + cfg.Header
			}
			if cfg.Encoding != "" {
				name += "/" + cfg.Encoding
			}
			if nsecrets == 2 {
				name += "/2secrets"
			}
			b.Run(name, func(b *testing.B) {
				v := mustCompile(b, cfg)
				in := mustSign(b, cfg, body, now, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
				var c Check
				b.ReportAllocs()
				if v.NeedsBody() { // dingtalk signs no body
					b.SetBytes(int64(len(body)))
				}
				for b.Loop() {
					if err := v.Begin(&c, in, now.UnixNano()); err != nil {
						b.Fatal(err)
					}
					c.Write(body)
					if c.Finish() == nil {
						benchSink++
					}
				}
			})
		}
	}
	b.Run("baseline/hmac.New", func(b *testing.B) {
		key := []byte("gh secret")
		var sum [sha256.Size]byte
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			h := hmac.New(sha256.New, key)
			h.Write(body)
			benchSink += int(h.Sum(sum[:0])[0])
		}
	})
	b.Run("baseline/hmac.Reset", func(b *testing.B) {
		h := hmac.New(sha256.New, []byte("gh secret"))
		var sum [sha256.Size]byte
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			h.Reset()
			h.Write(body)
			benchSink += int(h.Sum(sum[:0])[0])
		}
	})
}

// BenchmarkVerifyParallel is the github scheme from every core at once,
// which exercises the pool of HMAC states.
func BenchmarkVerifyParallel(b *testing.B) {
	body := make([]byte, 1024)
	cfg := Config{Scheme: GitHub, Secrets: []string{"gh secret"}}
	v := mustCompile(b, cfg)
	in := mustSign(b, cfg, body, time.Now(), "")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.RunParallel(func(pb *testing.PB) {
		var c Check
		n := 0
		for pb.Next() {
			if err := v.Begin(&c, in, 0); err != nil {
				panic(err)
			}
			c.Write(body)
			if c.Finish() == nil {
				n++
			}
		}
		_ = n
	})
}
