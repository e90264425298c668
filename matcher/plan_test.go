package matcher

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPlanned compares Match and Scanner with the oracle on bodies long
// enough to be searched with plans: a body's character changes where a
// new plan is chosen, and keywords are planted across the edges where the
// search goes from the static groups to a plan and from one plan to the
// next.
func TestPlanned(t *testing.T) {
	if testing.Short() {
		t.Skip("large bodies")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabets := []string{`"e`, `abcdefgh`, `"ea:\`, "x\\u65b0\\u54c1\\/", "新品无线降噪耳机"}
	// The first full block starts after the growing small ones; plans
	// are chosen there and every planSpan bytes after.
	firstFull := firstBlockSize + 4*firstBlockSize + 16*firstBlockSize
	edges := []int{firstFull, firstFull + planSpan, firstFull + 2*planSpan}
	for iter := range 24 {
		n := planMin + rng.IntN(2*planSpan+planSpan/2)
		body := make([]byte, 0, n)
		for len(body) < n {
			// Stretches of different alphabets, so that plans differ.
			alpha := alphabets[rng.IntN(len(alphabets))]
			for range min(n-len(body), 1+rng.IntN(planSpan/2)) {
				body = append(body, alpha[rng.IntN(len(alpha))])
			}
		}
		alpha := alphabets[iter%len(alphabets)]
		var keywords []string
		for range 1 + rng.IntN(MaxKeywords) {
			kw := make([]byte, 3+rng.IntN(12))
			for i := range kw {
				kw[i] = alpha[rng.IntN(len(alpha))]
			}
			// Keywords that hardly occur, so that they are searched far.
			kw[rng.IntN(len(kw))] = "QWRTYZ"[rng.IntN(6)]
			keywords = append(keywords, string(kw))
		}
		if k := rng.IntN(len(keywords) + 1); k < len(keywords) {
			kw := keywords[k]
			e := edges[rng.IntN(len(edges))] + rng.IntN(len(kw)-1) + 1
			if iter%4 == 3 {
				// Escaped, for the decoded pass.
				kw = `\u00` + "QWRTYZ"[rng.IntN(6):][:1] + kw[1:]
			}
			if e <= n && e >= len(kw) {
				copy(body[e-len(kw):], kw)
			}
		}
		ignoreCase := iter%3 == 0
		checkOracle(t, iter, keywords, ignoreCase, body, rng, 4*blockSize)
	}
}

// TestPlanCover checks the buckets a plan chooses: every keyword in
// exactly one, by a pair of its adjacent bytes that the bucket's tables
// hold, and pairs that never occur in the text chosen where the keywords
// allow, so that the prefilter never stops on it.
func TestPlanCover(t *testing.T) {
	text := bytes.Repeat([]byte(`{"status":"paid","total":"12.50"}`), 4096)
	f := func(keywords []string, ignoreCase bool, wantStops bool) {
		t.Helper()
		m, err := Compile(keywords, ignoreCase)
		if err != nil {
			t.Fatal(err)
		}
		var p plan
		p.build(m, text)
		seen := make([]int, len(keywords))
		for bk, g := range p.gs.groups {
			bit := uint8(1) << bk
			for _, c := range g.cands {
				kw := keywords[c.kw]
				if m.fold[kw[c.off]] != g.b || m.fold[kw[c.off2]] != c.b2 || int(c.n) != len(kw) {
					t.Fatalf("%q: cand %+v of bucket %q is wrong", keywords, c, g.b)
				}
				if p.gs.first[kw[c.off]]&bit == 0 || p.gs.second[kw[c.off+1]]&bit == 0 {
					t.Fatalf("%q: bucket %d lacks the pair of %q at %d", keywords, bk, kw, c.off)
				}
				seen[c.kw]++
			}
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("%q: keyword %d in %d buckets", keywords, k, n)
			}
		}
		if stops := p.stops(text); (stops > 0) != wantStops {
			t.Fatalf("%q: %d stops on the sample; want stops: %v", keywords, stops, wantStops)
		}
	}
	f([]string{"status_x", "paid_x", "total_x"}, false, false)
	f([]string{"status", "unpaid"}, false, true) // "status" occurs
	f([]string{"Refund", "REFUSED"}, true, false)
	f([]string{"新品", "新货"}, false, false)
	f([]string{"paid", "aid", "Paid"}, false, true)
}

// TestPlanEdge plants a keyword across the edge where the search goes
// from the static groups, which look for it by its pair "JZ", to a plan,
// which looks for "qJ" since the text holds many a "JZ" and no 'q'.
// Its pair for the blocks before the edge starts after it, and the other
// pair starts before it.
func TestPlanEdge(t *testing.T) {
	firstFull := firstBlockSize + 4*firstBlockSize + 16*firstBlockSize
	m, err := Compile([]string{"qJZ"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.groups[0].cands[0]; c.off != 1 {
		t.Fatalf("static pair at %d; the test needs \"JZ\"", c.off)
	}
	body := bytes.Repeat([]byte(strings.Repeat("a", 38)+"JZ"), planMin/40*2)
	var p plan
	p.build(m, body)
	if c := p.gs.groups[0].cands[0]; c.off != 0 {
		t.Fatalf("planned pair at %d; the test needs \"qJ\"", c.off)
	}
	for _, e := range []int{firstFull - 2, firstFull - 1, firstFull, firstFull + 1} {
		b := bytes.Clone(body)
		copy(b[e-1:], "qJZ")
		if kw, ok := m.Match(b); kw != 0 || !ok {
			t.Fatalf("qJZ at %d: Match = %d, %v", e-1, kw, ok)
		}
	}
}
