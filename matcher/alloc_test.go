//go:build !race

package matcher

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMatchAllocs(t *testing.T) {
	alert, err := os.ReadFile(filepath.Join("testdata", "alert_escaped.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := func(name string, keywords []string, ignoreCase bool, body []byte, want int) {
		t.Helper()
		m, err := Compile(keywords, ignoreCase)
		if err != nil {
			t.Fatal(err)
		}
		if kw, _ := m.Match(body); kw != want {
			t.Fatalf("%s: Match = %d; want %d", name, kw, want)
		}
		if n := testing.AllocsPerRun(100, func() { m.Match(body) }); n != 0 {
			t.Fatalf("%s: Match makes %v allocations; want 0", name, n)
		}
		var s Scanner
		s.Reset(m)
		if n := testing.AllocsPerRun(100, func() {
			s.Reset(m)
			for i := 0; i < len(body); i += 7 {
				s.Write(body[i:min(len(body), i+7)])
			}
			s.Result()
		}); n != 0 {
			t.Fatalf("%s: Scanner makes %v allocations; want 0", name, n)
		}
	}
	f("hit", []string{"P0", "firing"}, false, alert, 1)
	f("miss", []string{"P0", "恢复"}, false, alert, -1)
	f("escaped hit", []string{"P0", "值班"}, false, alert, 1)
	f("escaped miss", []string{"P0", "值班的"}, false, alert, -1)
	f("ignore case", []string{"P0", "HIGHERRORRATE"}, true, alert, 1)
	f("ignore case escaped", []string{"P0", "RUNBOOKS/PAYMENT"}, true, alert, 1)
	f("no keywords", nil, false, alert, -1)
}
