package gateway

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMatcherCache: automations with the same keywords (and case rule)
// share one compiled matcher; any difference gets its own.
func TestMatcherCache(t *testing.T) {
	c := matcherCache{}
	get := func(ignoreCase bool, kw ...string) any {
		t.Helper()
		m, err := c.compile(kw, ignoreCase)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a := get(false, "refund", "退款")
	if b := get(false, "refund", "退款"); b != a {
		t.Error("the same keywords compiled twice")
	}
	for _, other := range []any{
		get(true, "refund", "退款"),
		get(false, "退款", "refund"),
		get(false, "refund,退款"),
		get(false, "refund"),
		get(false),
	} {
		if other == a {
			t.Errorf("different keywords share a matcher")
		}
	}
	if m := get(false, "refund", "退款"); m != a {
		t.Error("the cache lost an entry")
	}
	if _, err := c.compile([]string{""}, false); err == nil {
		t.Error("an empty keyword compiled")
	}
}

// TestTokenTable: every hash put in finds its route, a hash put twice is
// refused the second time (compile's collision check), hashes left out
// find nothing, including ones that share their low bits (one probe run)
// and the table full to its bound.
func TestTokenTable(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 1000} {
		m := map[uint64]*route{}
		for i := range n {
			// Every fourth hash shares its low 16 bits with the one
			// before, so runs of probes form.
			h := uint64(i)*0x9e3779b97f4a7c15 | 1
			if i%4 == 3 {
				h = h&^0xffff | (uint64(i-1)*0x9e3779b97f4a7c15|1)&0xffff
			}
			m[h] = &route{id: fmt.Sprint(i)}
		}
		tt := newTokenTable(n)
		for h, r := range m {
			if !tt.put(h, r) {
				t.Fatalf("%d routes: put(%x) refused a new hash", n, h)
			}
		}
		for h := range m {
			if tt.put(h, &route{}) {
				t.Fatalf("%d routes: put(%x) took a hash already there", n, h)
			}
		}
		if len(tt.slots) < 2*n || len(tt.slots)&(len(tt.slots)-1) != 0 {
			t.Fatalf("%d routes: %d slots, want a power of two at least twice as many", n, len(tt.slots))
		}
		for h, r := range m {
			if got := tt.get(h); got != r {
				t.Fatalf("%d routes: get(%x) = %v, want route %s", n, h, got, r.id)
			}
			for _, absent := range []uint64{h + 1<<32, h ^ 1<<63} {
				if _, in := m[absent]; !in && tt.get(absent) != nil {
					t.Fatalf("%d routes: get(%x), never put in, found a route", n, absent)
				}
			}
		}
	}
}

// BenchmarkTokenTable looks up random tokens' hashes among n routes in
// the table and in the Go map it replaced; with a million routes the
// structure is far larger than the caches, as thousands of automations'
// are under load with the kernel's networking sharing them.
func BenchmarkTokenTable(b *testing.B) {
	for _, n := range []int{4096, 1 << 20} {
		m := make(map[uint64]*route, n)
		keys := make([]uint64, n)
		r := &route{}
		for i := range keys {
			keys[i] = rand.Uint64()
			m[keys[i]] = r
		}
		tt := newTokenTable(n)
		for h, r := range m {
			tt.put(h, r)
		}
		rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		b.Run(fmt.Sprintf("%d/map", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				if m[keys[i&(n-1)]] == nil {
					b.Fatal("missing")
				}
				i++
			}
		})
		b.Run(fmt.Sprintf("%d/table", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				if tt.get(keys[i&(n-1)]) == nil {
					b.Fatal("missing")
				}
				i++
			}
		})
	}
}

// TestRefusedReloadChangesNoRate: a configuration that compile refuses —
// here an automation after the changed ones fails — leaves every
// bucket's rate as it was. The rates were set while compiling, so a
// refused reload used to leave some of its new limits live.
func TestRefusedReloadChangesNoRate(t *testing.T) {
	g, _, _ := fileGateway(t, proxyConfig)
	before := g.routes.Load()
	anon := before.list[0]
	rate, tableRate := anon.bucket.Rate(), anon.tableLimit.Rate()
	next, err := Parse([]byte(proxyConfig), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	next.Tables[0].RPS = 3
	next.Tables[0].Automations[0].RPS = 2
	next.Tables[0].Automations[2].IPAllow = []string{"not-an-address"} // what Parse would refuse
	if _, err := g.Reload(next); err == nil {
		t.Fatal("a reload with a bad ip_allow was taken")
	}
	if g.routes.Load() != before {
		t.Fatal("a refused reload swapped its routes in")
	}
	if got, got2 := anon.bucket.Rate(), anon.tableLimit.Rate(); got != rate || got2 != tableRate {
		t.Fatalf("after a refused reload the rates are %v and %v (table); want %v and %v", got, got2, rate, tableRate)
	}
}

// TestReloadAppliesLogSampling: log.sample_first set by a reload bounds
// the request lines from the next request on (the README lists the log
// settings among those a reload applies).
func TestReloadAppliesLogSampling(t *testing.T) {
	g, _, logs := testGateway(t)
	c := newCall()
	bearer := "Bearer " + hCred
	lines := func() int { return strings.Count(logs.String(), `"msg":"request"`) }
	for range 5 { // within the default 20 lines a second
		c.do(g, "POST", hTokCred, bodyMiss, "Authorization", bearer)
	}
	if n := lines(); n != 5 {
		t.Fatalf("%d request lines for 5 keyword misses, want 5", n)
	}
	next, err := Parse([]byte("log: {sample_first: 1}\n"+handlerConfig), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if pending, err := g.Reload(next); err != nil || len(pending) > 0 {
		t.Fatalf("reload: %v, pending %q", err, pending)
	}
	for range 10 {
		c.do(g, "POST", hTokCred, bodyMiss, "Authorization", bearer)
	}
	// One line a second now: none more in this second, one if the next
	// began meanwhile.
	if n := lines() - 5; n > 1 {
		t.Fatalf("%d request lines for 10 keyword misses after sample_first: 1, want at most 1", n)
	}
}
