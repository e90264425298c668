//go:build linux

package matcher

import (
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// guarded returns a page of memory between two pages that may not be
// touched: a read past either end of a slice at an edge of the page
// faults instead of reading a neighbour's bytes.
func guarded(t *testing.T) []byte {
	t.Helper()
	ps := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 3*ps, unix.PROT_NONE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	page := mem[ps : 2*ps : 2*ps]
	if err := unix.Mprotect(page, unix.PROT_READ|unix.PROT_WRITE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	return page
}

// TestGuardPages runs Match, the Scanner and the pair search on inputs of
// every length up to 300 that end right before a page no one may read,
// or start right after one, so that a read beyond the slice given (by the
// vectorized search, say) crashes the test.
func TestGuardPages(t *testing.T) {
	page := guarded(t)
	ps := len(page)
	long := strings.Repeat("k", MaxKeywordLen-3) + `"é`
	sets := []struct {
		keywords   []string
		ignoreCase bool
	}{
		{[]string{"k"}, false},
		{[]string{"é"}, false},
		{[]string{`"k`}, true},
		{[]string{long}, false},
		{[]string{"k", `"k`, "kk\\", "é", long}, false},
		{[]string{"K", "kK", long}, true},
	}
	// Contents: no candidates, candidates everywhere, and the keyword
	// bytes among escapes, which the decoded pass must read to the end.
	fills := []string{"x", "k", `"kk\`, `\u00e9\"k`, `k\ud83d\`, "\\u006b\\u0"}
	rng := rand.New(rand.NewPCG(8, 9))
	for si, set := range sets {
		m, err := Compile(set.keywords, set.ignoreCase)
		if err != nil {
			t.Fatal(err)
		}
		for fi, fill := range fills {
			src := []byte(strings.Repeat(fill, 300/len(fill)+1))
			for n := 0; n <= 300; n++ {
				// Half the time, random bytes of the fill, so that
				// escapes are cut at every place by the page's end.
				body := src[len(src)-n:]
				if n%2 == 1 {
					body = make([]byte, n)
					for i := range body {
						body[i] = fill[rng.IntN(len(fill))]
					}
				}
				wantKW, wantOK := oracleMatch(set.keywords, set.ignoreCase, body)
				for _, at := range []int{ps - n, 0} {
					in := page[at : at+n : at+n]
					copy(in, body)
					checkGuarded(t, m, in, wantKW, wantOK, si, fi, at)
				}
			}
		}
	}
}

func checkGuarded(t *testing.T, m *Matcher, in []byte, wantKW int, wantOK bool, si, fi, at int) {
	t.Helper()
	if kw, ok := m.Match(in); kw != wantKW || ok != wantOK {
		t.Fatalf("set %d fill %d at %d: Match(%q) = %d, %v; oracle %d, %v", si, fi, at, in, kw, ok, wantKW, wantOK)
	}
	var s Scanner
	for _, piece := range []int{1, 2, 5, 33, 64, 300} {
		s.Reset(m)
		for rest := in; len(rest) > 0; {
			c := min(piece, len(rest))
			s.Write(rest[:c])
			rest = rest[c:]
		}
		if kw, ok := s.Result(); kw != wantKW || ok != wantOK {
			t.Fatalf("set %d fill %d at %d: Scanner(%q in pieces of %d) = %d, %v; oracle %d, %v",
				si, fi, at, in, piece, kw, ok, wantKW, wantOK)
		}
	}
	// Cuts near the ends, where a piece ends at the page's edge or
	// leaves a short piece that does.
	for cut := range len(in) + 1 {
		if cut > 8 && cut < len(in)-24 {
			continue
		}
		s.Reset(m)
		s.Write(in[:cut])
		s.Write(in[cut:])
		if kw, ok := s.Result(); kw != wantKW || ok != wantOK {
			t.Fatalf("set %d fill %d at %d: Scanner(%q cut at %d) = %d, %v; oracle %d, %v",
				si, fi, at, in, cut, kw, ok, wantKW, wantOK)
		}
	}
	old := hasAVX2
	defer func() { hasAVX2 = old }()
	// Every length from the page's edge is tried by the lengths of in;
	// starts near its end give the short searches.
	for p := 0; p < len(in); p++ {
		if p >= 4 && p < len(in)-40 {
			continue
		}
		if old && len(in)-p >= 33 {
			if got, want := pairIndexAVX2(in[p:], &m.nib), nibbleOracle(&m.nib, in[p:]); got != want {
				t.Fatalf("set %d fill %d at %d: pairIndexAVX2(%q) = %d, want %d", si, fi, at, in[p:], got, want)
			}
		}
		for _, simd := range []bool{false, old} {
			hasAVX2 = simd
			wq, wb := nextOracle(&m.groupSet, in, p, len(in))
			if q, b := m.next(in, p, len(in)); q != wq || b != wb {
				t.Fatalf("set %d fill %d at %d, simd %v: next(%q, %d) = %d, %08b; want %d, %08b", si, fi, at, simd, in, p, q, b, wq, wb)
			}
		}
	}
}
