package gateway

import "testing"

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
