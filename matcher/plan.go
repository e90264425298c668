package matcher

import (
	"bytes"
	"math/bits"
	"sync"
)

// plan is a choice of pairs made for one stretch of text from a sample of
// its own bytes. The static table of byte frequencies guesses at a typical
// body; a given body often repeats bytes the table deems rare (the letters
// of its field names, the UTF-8 of its language) and lacks others.
// Choosing each keyword's pair by how often the sample holds it makes the
// prefilter stop several times less often on such bodies.
//
// A plan lives in scratch space that the search borrows (a pool, a
// Scanner), so that choosing one allocates nothing.
type plan struct {
	gs groupSet
	// The sample: hist counts the bytes at its positions (those followed
	// by another sampled byte), and second holds the bytes that follow
	// them, those following a byte b at second[start[b]:start[b+1]].
	hist   [256]uint32
	start  [257]uint16
	fill   [256]uint16
	second [sampleMax * sampleWindow]byte
	// dense is set when the sample holds so many candidates that the
	// prefilter would give up on most blocks.
	dense bool
	// left is how many more bytes the plan is used for before the text
	// is sampled again.
	left int
}

const (
	// planMin is the shortest rest of a body that Match samples: below
	// it, sampling costs more than the passes it saves.
	planMin = 64 << 10
	// planMinKept is planMin for a search whose plan is kept from one
	// call to the next (a Scanner's pieces, the decoded stretches), where
	// the cost of sampling spreads over planSpan bytes.
	planMinKept = 16 << 10
	// planSpan is how many bytes a plan is used for: a body may change
	// character along the way (an array of one kind of record, then
	// another).
	planSpan = 1 << 20
	// sampleWindow is the length of a sampled run of bytes. The sample is
	// one window per sampleEvery bytes, at least sampleMin and at most
	// sampleMax of them, spread evenly.
	sampleWindow = 128
	sampleEvery  = 2 << 10
	sampleMin    = 8
	sampleMax    = 32
)

var planPool sync.Pool // of *plan

// getPlan returns a pooled plan; return it with putPlan.
func getPlan() *plan {
	p, _ := planPool.Get().(*plan)
	if p == nil {
		p = new(plan)
	}
	p.left = 0
	return p
}

func putPlan(p *plan) { planPool.Put(p) }

// window returns the i-th of the n windows of t that make the sample:
// sampleWindow positions and the byte after the last.
func window(t []byte, i, n int) []byte {
	w := t[i*(len(t)/n):]
	return w[:min(len(w), sampleWindow+1)]
}

// windows returns how many windows sample t.
func windows(t []byte) int { return min(max(len(t)/sampleEvery, sampleMin), sampleMax) }

// sample indexes the pairs of adjacent bytes in evenly spread windows of
// t and returns how many it indexed.
func (p *plan) sample(t []byte) int {
	p.hist = [256]uint32{}
	n := windows(t)
	total := 0
	for i := range n {
		w := window(t, i, n)
		for j := 0; j+1 < len(w); j++ {
			p.hist[w[j]]++
		}
		total += max(len(w)-1, 0)
	}
	p.start[0] = 0
	for b := range 256 {
		p.start[b+1] = p.start[b] + uint16(p.hist[b])
		p.fill[b] = p.start[b]
	}
	for i := range n {
		w := window(t, i, n)
		for j := 0; j+1 < len(w); j++ {
			p.second[p.fill[w[j]]] = w[j+1]
			p.fill[w[j]]++
		}
	}
	return total
}

// pairs returns how often the sample holds a followed by b.
func (p *plan) pairs(a, b byte) int {
	return bytes.Count(p.second[p.start[a]:p.start[int(a)+1]], []byte{b})
}

// build samples t, the text the plan is for, and chooses each keyword's
// pair: the one the sample holds least often, ties going to the rarer by
// the static table. Within a keyword, the byte checked before the whole
// keyword is the one the sample holds least of.
func (p *plan) build(m *Matcher, t []byte) {
	size := p.sample(t)
	h := &p.hist
	count := func(b byte) int {
		if m.ignoreCase && lower(b) != upper(b) {
			return int(h[lower(b)]) + int(h[upper(b)])
		}
		return int(h[b])
	}
	pairCost := func(k, o int) int {
		kw := m.keywords[k]
		a, b := m.fold[kw[o]], m.fold[kw[o+1]]
		va, na := m.variants(a)
		vb, nb := m.variants(b)
		n := 0
		for _, x := range va[:na] {
			for _, y := range vb[:nb] {
				n += p.pairs(x, y)
			}
		}
		return n<<16 + cost(a, m.ignoreCase)*cost(b, m.ignoreCase)
	}
	byteCost := func(b byte) int { return count(b)<<8 + cost(b, m.ignoreCase) }
	p.gs.set(m, pairCost, byteCost)
	// What the prefilter would spend on a block, by the sample, against
	// its budget.
	p.dense = size > 0 && p.stops(t)*blockSize/size > blockSize>>budgetShift+budgetMin
}

// stops returns what the prefilter would spend, with p's pairs, on the
// sample's positions.
func (p *plan) stops(t []byte) int {
	gs := &p.gs
	n := windows(t)
	units := 0
	for i := range n {
		w := window(t, i, n)
		for j := 0; j+1 < len(w); j++ {
			for bs := gs.first[w[j]] & gs.second[w[j+1]]; bs != 0; bs &= bs - 1 {
				units += stopCost + len(gs.groups[bits.TrailingZeros8(bs)].cands)
			}
		}
	}
	return units
}
