package matcher

import (
	"math/bits"
	"sync"
)

// plan is a choice of groups made for one stretch of text from a sample of
// its own bytes. The static table of byte frequencies guesses at a typical
// body; a given body often repeats bytes the table deems rare (the letters
// of its field names, the UTF-8 of its language) and lacks others. Choosing
// each keyword's byte by what the sample holds makes the passes stop
// several times less often on such bodies, and lets keywords that share a
// byte absent from the text share one pass.
//
// A plan lives in scratch space that the search borrows (a pool, a
// Scanner), so that choosing one allocates nothing.
type plan struct {
	// groups are the chosen groups, rarer bytes first. They and their
	// cands point into g and c.
	groups []group
	g      [2 * MaxKeywords]group
	c      [MaxKeywords]cand
	hist   [256]uint32

	// Scratch for build: the bytes worth choosing, one per set of
	// keywords (idx[set] is 1 + its index in opt), and for each set of
	// keywords the least cost of covering it, -1 when none is known yet,
	// with the last option taken and the set it was added to.
	opt  [256]option
	idx  [1 << MaxKeywords]int16
	best [1 << MaxKeywords]int
	from [1 << MaxKeywords]uint8
	prev [1 << MaxKeywords]uint16
	// dense is set when the sample holds so many candidates that the
	// prefilter would give up on most blocks.
	dense bool
	// left is how many more bytes the plan is used for before the text
	// is sampled again.
	left int
}

// option is a byte a plan may search for: the keywords holding it, and
// what searching for it costs, in stops, times 256, plus its static cost
// to break ties.
type option struct {
	set  uint16
	b    byte
	cost int
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

// sample counts the bytes of evenly spread windows of t into p.hist and
// returns how many bytes it counted.
func (p *plan) sample(t []byte) int {
	p.hist = [256]uint32{}
	n := min(max(len(t)/sampleEvery, sampleMin), sampleMax)
	step := len(t) / n
	total := 0
	for i := range n {
		w := t[i*step:]
		w = w[:min(len(w), sampleWindow)]
		for _, b := range w {
			p.hist[b]++
		}
		total += len(w)
	}
	return total
}

// build samples t, the text the plan is for, and chooses the groups: a
// byte for each keyword such that the passes, each costing about as much
// as stopping passCost times, and the stops they make cost least. This is
// a set cover over at most MaxKeywords keywords, small enough to solve
// exactly. Within a keyword, the byte checked before the whole keyword is
// the one the sample holds least of.
func (p *plan) build(m *Matcher, t []byte) {
	size := p.sample(t)
	// A pass over a block costs about as much as stopping on 1/350 of
	// its bytes.
	passCost := size>>9 + 1
	h := &p.hist
	count := func(b byte) int {
		if m.ignoreCase && lower(b) != upper(b) {
			return int(h[lower(b)]) + int(h[upper(b)])
		}
		return int(h[b])
	}
	passes := func(b byte) int {
		if m.ignoreCase && lower(b) != upper(b) {
			return 2
		}
		return 1
	}
	// The options are, for each set of keywords a byte covers, the
	// cheapest such byte; ties go to the byte the static table deems
	// rarer. Then every set of keywords, in increasing order, extends the
	// cheapest covers found so far by one option.
	nopt := 0
	p.idx = [1 << MaxKeywords]int16{}
	for _, b := range m.kwBytes {
		c := (passes(b)*passCost+count(b))<<8 + cost(b, m.ignoreCase)
		set := m.has[b]
		if i := p.idx[set]; i == 0 {
			p.opt[nopt] = option{set: set, b: b, cost: c}
			nopt++
			p.idx[set] = int16(nopt)
		} else if c < p.opt[i-1].cost {
			p.opt[i-1] = option{set: set, b: b, cost: c}
		}
	}
	all := uint16(1)<<len(m.keywords) - 1
	for i := range p.best[:all+1] {
		p.best[i] = -1
	}
	p.best[0] = 0
	for set := range all + 1 {
		c := p.best[set]
		if c < 0 {
			continue
		}
		for i, o := range p.opt[:nopt] {
			next := set | o.set
			if next != set && (p.best[next] < 0 || c+o.cost < p.best[next]) {
				p.best[next], p.from[next], p.prev[next] = c+o.cost, uint8(i), set
			}
		}
	}
	p.groups = p.g[:0]
	nc := 0
	for set := all; set != 0; set = p.prev[set] {
		best := p.opt[p.from[set]].b
		covered := set &^ p.prev[set]
		first := nc
		for ks := covered; ks != 0; ks &= ks - 1 {
			k := bits.TrailingZeros16(ks)
			kw := m.keywords[k]
			off := -1
			for i := 0; i < len(kw); i++ {
				if m.fold[kw[i]] == best {
					off = i
					break
				}
			}
			off2 := off
			for i := 0; i < len(kw); i++ {
				if i == off {
					continue
				}
				b, b2 := m.fold[kw[i]], m.fold[kw[off2]]
				if off2 == off || count(b) < count(b2) ||
					count(b) == count(b2) && cost(b, m.ignoreCase) < cost(b2, m.ignoreCase) {
					off2 = i
				}
			}
			p.c[nc] = cand{kw: int32(k), off: int32(off), n: int32(len(kw)), off2: int32(off2), b2: m.fold[kw[off2]]}
			nc++
		}
		cands := p.c[first:nc:nc]
		if passes(best) == 2 {
			p.groups = append(p.groups, group{b: lower(best), cands: cands}, group{b: upper(best), cands: cands})
		} else {
			p.groups = append(p.groups, group{b: best, cands: cands})
		}
	}
	// What the prefilter would spend on a block, by the sample, against
	// its budget.
	units := 0
	for _, g := range p.groups {
		units += int(h[g.b]) * (stopCost + len(g.cands))
	}
	p.dense = units*blockSize/size > blockSize>>budgetShift+budgetMin
	// Rarer bytes first, as buildGroups orders them.
	less := func(x, y byte) bool {
		return h[x] < h[y] || h[x] == h[y] && cost(x, m.ignoreCase) < cost(y, m.ignoreCase)
	}
	g := p.groups
	for i := 1; i < len(g); i++ {
		for j := i; j > 0 && less(g[j].b, g[j-1].b); j-- {
			g[j], g[j-1] = g[j-1], g[j]
		}
	}
}
