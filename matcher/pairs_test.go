package matcher

import (
	"math/rand/v2"
	"testing"
)

// nextOracle is groupSet.next by its definition, position by position.
func nextOracle(gs *groupSet, t []byte, p, lim int) (int, uint8) {
	for q := p; q < lim; q++ {
		var bs uint8
		if q+1 < len(t) {
			bs = gs.first[t[q]] & gs.second[t[q+1]]
		} else {
			bs = gs.first[t[q]] & gs.single
		}
		if bs != 0 {
			return q, bs
		}
	}
	return -1, 0
}

// nibbleOracle is pairIndexAVX2 by its definition: the first position
// whose bytes' four nibble lookups share a bucket bit.
func nibbleOracle(nib *[64]byte, t []byte) int {
	for i := 0; i+1 < len(t); i++ {
		a, b := t[i], t[i+1]
		if nib[a&15]&nib[16+a>>4]&nib[32+b&15]&nib[48+b>>4] != 0 {
			return i
		}
	}
	return -1
}

// checkNext compares next, vectorized where the machine allows and
// generic, with the oracle for every start and a few limits.
func checkNext(t *testing.T, gs *groupSet, text []byte, rng *rand.Rand) {
	t.Helper()
	old := hasAVX2
	defer func() { hasAVX2 = old }()
	if old && len(text) >= 33 {
		for p := 0; p+33 <= len(text); p++ {
			if got, want := pairIndexAVX2(text[p:], &gs.nib), nibbleOracle(&gs.nib, text[p:]); got != want {
				t.Fatalf("text %q from %d: pairIndexAVX2 = %d, want %d", text, p, got, want)
			}
		}
	}
	for _, simd := range []bool{false, old} {
		hasAVX2 = simd
		for p := 0; p < len(text); p++ {
			for _, lim := range []int{len(text), p + 1 + rng.IntN(len(text)-p)} {
				wq, wb := nextOracle(gs, text, p, lim)
				if q, b := gs.next(text, p, lim); q != wq || b != wb {
					t.Fatalf("simd %v, text %q [%d, %d): next = %d, %08b; want %d, %08b", simd, text, p, lim, q, b, wq, wb)
				}
			}
		}
	}
}

// TestNext checks the pair search on random keywords and texts over small
// alphabets, where pairs and the nibble tables' near misses abound, at
// every length up to 200.
func TestNext(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	alphabets := []string{"ab", "aAbB\x00\xff", "新品\"\\", "0123456789abcdef", "\x0f\x1f\x8f\xf0\xf1"}
	for iter := range 60 {
		alpha := alphabets[iter%len(alphabets)]
		var keywords []string
		for range 1 + rng.IntN(MaxKeywords) {
			kw := make([]byte, 1+rng.IntN(4))
			for i := range kw {
				kw[i] = alpha[rng.IntN(len(alpha))]
			}
			keywords = append(keywords, string(kw))
		}
		m, err := Compile(keywords, iter%3 == 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, gs := range []*groupSet{&m.groupSet, planFor(m, alpha, rng)} {
			n := rng.IntN(200)
			text := make([]byte, n)
			// Mostly bytes outside the alphabet, so that candidates are
			// spread out and the vectorized loop runs between them.
			for i := range text {
				if rng.IntN(8) == 0 {
					text[i] = alpha[rng.IntN(len(alpha))]
				} else {
					text[i] = byte(rng.IntN(256))
				}
			}
			checkNext(t, gs, text, rng)
		}
	}
}

// planFor returns the groups of a plan built on a text over alpha.
func planFor(m *Matcher, alpha string, rng *rand.Rand) *groupSet {
	text := make([]byte, planMinKept)
	for i := range text {
		text[i] = alpha[rng.IntN(len(alpha))]
	}
	var p plan
	p.build(m, text)
	return &p.gs
}

// FuzzNext compares next with the oracle on arbitrary keywords and texts.
func FuzzNext(f *testing.F) {
	f.Add("ab", "x", []byte("0123456789012345678901234567890123456789ab"), false)
	f.Add("新品", "\xff", []byte("\x8f\xf0 新 品 新品\xff"), true)
	f.Fuzz(func(t *testing.T, k1, k2 string, text []byte, ignoreCase bool) {
		var keywords []string
		for _, k := range []string{k1, k2} {
			if k != "" && len(k) <= MaxKeywordLen {
				keywords = append(keywords, k)
			}
		}
		if len(keywords) == 0 || len(text) > 300 {
			return
		}
		m, err := Compile(keywords, ignoreCase)
		if err != nil {
			t.Fatal(err)
		}
		checkNext(t, &m.groupSet, text, rand.New(rand.NewPCG(1, uint64(len(text)))))
	})
}

// BenchmarkNext measures the pair search over a 16 KiB body, the way the
// prefilter goes from candidate to candidate.
func BenchmarkNext(b *testing.B) {
	text := orderBody(16<<10, false)
	m, err := Compile(absentKeywords, false)
	if err != nil {
		b.Fatal(err)
	}
	var p plan
	p.build(m, text)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		for q := 0; q < len(text); q++ {
			if q, _ = p.gs.next(text, q, len(text)); q < 0 {
				break
			}
			sink += q
		}
	}
}
