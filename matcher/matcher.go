// Package matcher decides whether a webhook body contains one of an
// automation's trigger keywords (SPEC §4).
//
// A body contains a keyword when its raw bytes contain it, or when the text
// obtained by decoding the body's JSON escapes (\uXXXX including surrogate
// pairs, \", \\, \/, \b, \f, \n, \r, \t) contains it. A lone or invalid
// surrogate decodes to U+FFFD, as encoding/json does; a malformed escape is
// kept as it is. Escapes are decoded over the whole body, which for valid
// JSON is the same as decoding each string, since backslashes occur only
// inside strings.
//
// Matching is case-sensitive unless the Matcher is compiled with ignoreCase,
// which folds the ASCII letters A-Z and a-z and compares every other byte as
// it is.
//
// When several keywords occur, the one reported is the keyword whose first
// occurrence ends earliest in the raw body; ties (occurrences ending at the
// same byte) go to the keyword with the lower index. Only when no keyword
// occurs in the raw body is the decoded text searched, by the same rule.
//
// The package knows nothing of HTTP: it works on []byte and is safe for
// concurrent use.
//
// The search runs a prefilter in front of an exact check: each keyword is
// looked for by a pair of its adjacent bytes, the rarest pair by a sample
// of the body (by a static table of byte frequencies for short bodies),
// and each candidate verified. On amd64 with AVX2 the pairs are found 64
// positions at a time in the manner of Hyperscan's Teddy (see groupSet).
// Where candidates come too thick for that to pay, as on bodies crafted
// against the keywords, an Aho-Corasick automaton scans instead, four
// streams at a time. The decoded text is searched only around escapes,
// which is where an occurrence missing from the raw bytes must be.
package matcher

import (
	"bytes"
	"fmt"
	"math/bits"
)

const (
	// MaxKeywords is the most keywords one automation may have.
	MaxKeywords = 10
	// MaxKeywordLen is the longest keyword, in bytes.
	MaxKeywordLen = 256
)

// Matcher finds an automation's keywords in webhook bodies. It is built by
// Compile, immutable afterwards and safe for concurrent use.
type Matcher struct {
	keywords   []string
	folded     []string // keywords with A-Z lowered, used when ignoreCase
	ignoreCase bool
	maxLen     int // length of the longest keyword
	// fold maps a byte to the form keywords are compared in: itself, or
	// its lower case when ignoring case.
	fold [256]byte

	// groupSet drives the prefilter until a plan replaces it: the
	// keywords looked for by their rarest pairs by the static table.
	groupSet
	// ac is the exact automaton that takes over where the prefilter
	// would see too many candidates.
	ac dfa
}

// group is a bucket of keywords the prefilter looks for by one pair (b
// is the pair's first byte), with the offset of the pair in each.
type group struct {
	b     byte
	cands []cand
}

// cand is a keyword in a group: kw is its index, off the offset of its
// pair within it and n its length. Before comparing the whole
// keyword, the prefilter checks that its byte at off2 is b2 (folded when
// ignoring case), which rejects most candidates for the price of a load.
type cand struct {
	kw, off, n, off2 int32
	b2               byte
}

// Check returns the error Compile would return for keywords, without
// building anything: what a configuration check needs.
func Check(keywords []string) error {
	if len(keywords) > MaxKeywords {
		return fmt.Errorf("%d keywords, at most %d", len(keywords), MaxKeywords)
	}
	for i, kw := range keywords {
		if kw == "" {
			return fmt.Errorf("keyword %d is empty", i)
		}
		if len(kw) > MaxKeywordLen {
			return fmt.Errorf("keyword %d is %d bytes, at most %d", i, len(kw), MaxKeywordLen)
		}
	}
	return nil
}

// Compile builds a Matcher for keywords, compared case-insensitively for
// ASCII letters when ignoreCase is set. There may be at most MaxKeywords
// keywords, each non-empty and at most MaxKeywordLen bytes; errors name the
// offending keyword by its 0-based index. No keywords make a Matcher that
// every body triggers. The Matcher keeps its own copy of keywords.
func Compile(keywords []string, ignoreCase bool) (*Matcher, error) {
	if err := Check(keywords); err != nil {
		return nil, err
	}
	m := &Matcher{
		keywords:   append([]string(nil), keywords...),
		ignoreCase: ignoreCase,
	}
	if len(keywords) == 0 {
		return m, nil
	}
	for c := range m.fold {
		m.fold[c] = byte(c)
		if ignoreCase {
			m.fold[c] = lower(byte(c))
		}
	}
	if ignoreCase {
		m.folded = make([]string, len(keywords))
		for i, kw := range keywords {
			m.folded[i] = lowerASCII(kw)
		}
	}
	for _, kw := range keywords {
		m.maxLen = max(m.maxLen, len(kw))
	}
	m.groupSet.set(m, func(k, o int) int {
		return cost(keywords[k][o], ignoreCase) * cost(keywords[k][o+1], ignoreCase)
	}, func(b byte) int { return cost(b, ignoreCase) })
	m.ac = buildDFA(keywords, ignoreCase)
	return m, nil
}

// Len returns the number of keywords.
func (m *Matcher) Len() int { return len(m.keywords) }

// Keyword returns keyword i as given to Compile.
func (m *Matcher) Keyword(i int) string { return m.keywords[i] }

// IgnoreCase reports whether ASCII letters are compared without case.
func (m *Matcher) IgnoreCase() bool { return m.ignoreCase }

// Match reports whether body triggers the automation. ok is true when a
// keyword occurs in body (raw or once its JSON escapes are decoded) or when
// there are no keywords. kw is the index of the keyword found, chosen by the
// rule in the package documentation, or -1 when there are no keywords or
// none occurs.
//
// Match accepts any bytes, valid JSON or not, and does not keep body. It
// makes no allocation in steady state.
func (m *Matcher) Match(body []byte) (kw int, ok bool) {
	if len(m.keywords) == 0 {
		return -1, true
	}
	if kw, _ = m.find(body); kw >= 0 {
		return kw, true
	}
	i := bytes.IndexByte(body, '\\')
	if i < 0 {
		return -1, false
	}
	// No keyword occurs in the raw bytes, so an occurrence in the decoded
	// text must include bytes produced by an escape; the unescaper only
	// searches around those. The bytes before the first backslash are
	// plain, and only the last maxLen-1 of them can reach an escape.
	u := getUnescaper(m)
	u.write(body[max(0, i-(m.maxLen-1)):])
	kw = u.close()
	putUnescaper(u)
	return kw, kw >= 0
}

// find returns the keyword whose first occurrence in t ends earliest (ties
// to the lower index) and the end offset of that occurrence, or -1 and 0
// when no keyword occurs in t.
func (m *Matcher) find(t []byte) (kw, end int) {
	if len(t) < planMin {
		var a adapt
		return m.search(t, &a, firstBlockSize)
	}
	a := adapt{p: getPlan(), planMin: planMin}
	kw, end = m.search(t, &a, firstBlockSize)
	putPlan(a.p)
	return kw, end
}

// adapt is what search learns about a text's density in candidates, kept
// across calls for texts that continue one another.
type adapt struct {
	fails int // blocks in a row on which the prefilter gave up
	skip  int // blocks to leave to the automaton before trying it again

	// p, when not nil, is where search keeps the plan it chooses for
	// full blocks once at least planMin bytes are left to search.
	p       *plan
	planMin int
}

// search is find for a text whose first block is first bytes long.
//
// t is cut into blocks. In each block the prefilter looks for the
// keywords' pairs and verifies each candidate; when a block yields more
// candidates than the prefilter can verify faster than the
// automaton would scan, the automaton scans that block instead, and the
// next few blocks too, backing off exponentially while the text stays
// dense in candidates.
//
// Blocks start small and grow, so that an occurrence near the start of a
// body, the usual place of its distinctive fields, is found without
// searching much beyond it.
func (m *Matcher) search(t []byte, a *adapt, first int) (kw, end int) {
	const noEnd = int(^uint(0) >> 1)
	kw, end = -1, noEnd
	w := m.maxLen - 1
	// The automaton resumes where it stopped when consecutive blocks use
	// it, instead of rescanning the w bytes before each block.
	acPos, acState := -1, uint32(0)
	// prev is 0 when the prefilter searched the last block with the
	// static groups, 1 with a.p's, 2 with an older plan's, and -1 when
	// the automaton covered it or there was none.
	prev := -1
	for bs, size := 0, first; bs < min(len(t), end); bs, size = bs+size, min(size*4, blockSize) {
		be := min(bs+size, len(t), end)
		gs, cur := &m.groupSet, 0
		if p := a.p; p != nil && size == blockSize && be-bs > planBlockMin {
			if p.left <= 0 && len(t)-bs >= a.planMin {
				p.build(m, t[bs:min(len(t), bs+planSpan)])
				p.left = planSpan
				if prev == 1 {
					prev = 2 // the groups it used are gone
				}
			}
			if p.left > 0 {
				gs, cur = &p.gs, 1
				p.left -= be - bs
			}
		}
		switch {
		case cur == 1 && a.p.dense:
			// The sample says the prefilter would give up: the block
			// goes to the automaton without a try.
		case a.skip > 0:
			a.skip--
		default:
			if prev >= 0 && prev != cur && bs > 0 {
				// An occurrence across bs may hold the byte the old
				// groups look for after bs and the one the new ones look
				// for before it, and be found by neither. It lies within
				// w bytes of bs.
				kw, end = m.across(t, bs, kw, end)
			}
			prev = cur
			var done bool
			kw, end, done = m.prefilter(gs, t, bs, be, kw, end)
			if done {
				a.fails = 0
				continue
			}
			a.fails++
			a.skip = 1<<min(a.fails, maxBackoff) - 1
		}
		prev = -1
		// The automaton covers every occurrence that overlaps [bs, be),
		// which includes all the prefilter would have found there.
		lo, s := max(0, bs-w), uint32(0)
		if acPos > lo {
			lo, s = acPos, acState
		}
		hi := min(len(t), be+w, end)
		if lo >= hi {
			continue
		}
		n, s, found := m.ac.scan4(s, t[lo:hi], w)
		if !found {
			acPos, acState = hi, s
			continue
		}
		acPos = -1
		e := lo + n
		k := m.endingAt(t, e)
		if e < end || k < kw {
			kw, end = k, e
		}
	}
	if kw < 0 {
		return -1, 0
	}
	return kw, end
}

const (
	// blockSize is the span over which the prefilter's candidates are
	// counted against its budget.
	blockSize = 16 << 10
	// firstBlockSize is the size of the first block; each next one is four
	// times larger, up to blockSize.
	firstBlockSize = 256
	// planBlockMin is the shortest block a plan is used for; shorter
	// ones, a body's first and last, use the static groups.
	planBlockMin = 1024
	// A block is handed to the automaton once its candidates cost more
	// than len/2^budgetShift + budgetMin units, a candidate costing one
	// unit plus one per keyword to verify. Measured on amd64, stopping on
	// a candidate costs about 25ns, as much as the automaton spends on
	// about 32 bytes (it scans about 1.5 GB/s); the pass itself costs a
	// tenth of that.
	budgetShift = 3
	budgetMin   = 16
	stopCost    = 1
	// maxBackoff caps the number of blocks, 2^maxBackoff-1, scanned by the
	// automaton before the prefilter is tried again.
	maxBackoff = 6
)

// prefilter searches the occurrences whose pair (see groupSet) starts in
// [bs, be) and which end no later than end, improving on kw and end. It
// finds the pairs in one pass and verifies each candidate. It gives
// up, returning done false, when the block holds too many candidates; the
// results found so far are still returned.
//
// Candidates come in the order of their positions, not of the
// occurrences' ends, so the pass goes on after a find, up to the end of
// the best occurrence so far: every occurrence ending before it has its
// pair start before it.
func (m *Matcher) prefilter(gs *groupSet, t []byte, bs, be, kw, end int) (int, int, bool) {
	budget := (be-bs)>>budgetShift + budgetMin
	for p, lim := bs, min(be, end); p < lim; p++ {
		var buckets uint8
		if p, buckets = gs.next(t, p, lim); p < 0 {
			break
		}
		for ; buckets != 0; buckets &= buckets - 1 {
			g := &gs.groups[bits.TrailingZeros8(buckets)]
			if budget -= stopCost + len(g.cands); budget < 0 {
				return kw, end, false
			}
			for i := range g.cands {
				c := &g.cands[i]
				s := p - int(c.off)
				// The check of b2 comes first: it rejects most.
				if q := s + int(c.off2); uint(q) >= uint(len(t)) || m.fold[t[q]] != c.b2 {
					continue
				}
				e := s + int(c.n)
				if s < 0 || e > len(t) || e > end || (e == end && int(c.kw) >= kw) {
					continue
				}
				if m.equal(int(c.kw), t[s:e]) {
					kw, end = int(c.kw), e
					lim = min(lim, end)
				}
			}
		}
	}
	return kw, end, true
}

// across searches the occurrences that hold t[bs-1] and t[bs], improving
// on kw and end. The automaton finds the first to end among the
// occurrences within the maxLen-1 bytes either side of bs, which include
// them.
func (m *Matcher) across(t []byte, bs, kw, end int) (int, int) {
	w := m.maxLen - 1
	lo, hi := max(0, bs-w), min(len(t), bs+w, end)
	if lo >= hi {
		return kw, end
	}
	n, _, found := m.ac.scan(0, t[lo:hi])
	if !found {
		return kw, end
	}
	e := lo + n
	if k := m.endingAt(t, e); e < end || k < kw {
		return k, e
	}
	return kw, end
}

// equal reports whether s is keyword k, folding case when the Matcher does.
func (m *Matcher) equal(k int, s []byte) bool {
	if !m.ignoreCase {
		return string(s) == m.keywords[k]
	}
	return equalFold(s, m.folded[k])
}

// endingAt returns the lowest index of a keyword that ends at t[e-1]. The
// automaton reported one there, so not finding any is a bug.
func (m *Matcher) endingAt(t []byte, e int) int {
	for k, kw := range m.keywords {
		if len(kw) <= e && m.equal(k, t[e-len(kw):e]) {
			return k
		}
	}
	panic("BUG: the automaton reported a keyword that does not occur")
}

// lowerASCII returns s with A-Z lowered and every other byte kept.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lower(c)
	}
	return string(b)
}

// lower lowers an ASCII capital letter and returns any other byte as is.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold reports whether s equals folded, an ASCII-lowered keyword, when
// A-Z in s are lowered.
func equalFold(s []byte, folded string) bool {
	if len(s) != len(folded) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c, f := s[i], folded[i]
		// c|0x20 maps A-Z onto a-z; a match through it counts only when
		// f is a letter, so that e.g. '@' (0x40) never equals '`' (0x60).
		if c != f && (c|0x20 != f || f < 'a' || f > 'z') {
			return false
		}
	}
	return true
}
