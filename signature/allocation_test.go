//go:build !race

package signature

import (
	"testing"
	"time"
)

// TestVerifyAllocs checks that the per-request path, Begin + Write + Finish,
// allocates nothing once the pool is warm, for every scheme, with the
// request accepted and refused.
func TestVerifyAllocs(t *testing.T) {
	now := time.Unix(1700000000, 0)
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	for _, cfg := range roundTripConfigs() {
		cfg.Secrets = append(cfg.Secrets, cfg.Secrets[0]+"x") // a rotation in progress
		if cfg.Scheme == StandardWebhooks {
			cfg.Secrets[1] = swSecret
		}
		v := mustCompile(t, cfg)
		in := mustSign(t, cfg, body, now, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
		var c Check
		f := func(name string, body []byte, want error) {
			t.Helper()
			run := func() {
				if err := v.Begin(&c, in, now.UnixNano()); err != nil {
					t.Fatalf("%v: %s: Begin: %v", cfg, name, err)
				}
				c.Write(body[:100])
				c.Write(body[100:])
				if err := c.Finish(); err != want {
					t.Fatalf("%v: %s: Finish = %v; want %v", cfg, name, err, want)
				}
			}
			run()
			if n := testing.AllocsPerRun(100, run); n != 0 {
				t.Fatalf("%v: %s: %v allocations per request; want 0", cfg, name, n)
			}
		}
		f("accepted", body, nil)
		if cfg.Scheme != DingTalk {
			altered := append([]byte(nil), body...)
			altered[500] ^= 1
			f("refused", altered, ErrMismatch)
		}
		// Refused in Begin.
		empty := &input{}
		if n := testing.AllocsPerRun(100, func() {
			if err := v.Begin(&c, empty, now.UnixNano()); err != ErrMissing {
				t.Fatalf("%v: Begin without headers = %v", cfg, err)
			}
		}); n != 0 {
			t.Fatalf("%v: refused Begin: %v allocations; want 0", cfg, n)
		}
		if cfg.Scheme == StandardWebhooks || cfg.Scheme == DingTalk {
			late := now.Add(2 * time.Hour).UnixNano()
			if n := testing.AllocsPerRun(100, func() {
				if err := v.Begin(&c, in, late); err != ErrExpired {
					t.Fatalf("%v: Begin two hours late = %v", cfg, err)
				}
			}); n != 0 {
				t.Fatalf("%v: expired Begin: %v allocations; want 0", cfg, n)
			}
		}
	}
}
