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
package matcher

import (
	"bytes"
	"fmt"
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

	// groups drive the prefilter: each lists the keywords that are
	// searched for by one rare byte.
	groups []group
	// ac is the exact automaton that takes over where the prefilter
	// would see too many candidates.
	ac dfa
}

// group is one byte the prefilter looks for with bytes.IndexByte, and the
// keywords that hold it at a known offset.
type group struct {
	b     byte
	cands []cand
}

// cand is a keyword in a group: kw is its index, off the offset of the
// group's byte within it and n its length.
type cand struct {
	kw, off, n int32
}

// Compile builds a Matcher for keywords, compared case-insensitively for
// ASCII letters when ignoreCase is set. There may be at most MaxKeywords
// keywords, each non-empty and at most MaxKeywordLen bytes; errors name the
// offending keyword by its 0-based index. No keywords make a Matcher that
// every body triggers. The Matcher keeps its own copy of keywords.
func Compile(keywords []string, ignoreCase bool) (*Matcher, error) {
	if len(keywords) > MaxKeywords {
		return nil, fmt.Errorf("%d keywords, at most %d", len(keywords), MaxKeywords)
	}
	for i, kw := range keywords {
		if kw == "" {
			return nil, fmt.Errorf("keyword %d is empty", i)
		}
		if len(kw) > MaxKeywordLen {
			return nil, fmt.Errorf("keyword %d is %d bytes, at most %d", i, len(kw), MaxKeywordLen)
		}
	}
	m := &Matcher{
		keywords:   append([]string(nil), keywords...),
		ignoreCase: ignoreCase,
	}
	if len(keywords) == 0 {
		return m, nil
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
	m.groups = buildGroups(keywords, ignoreCase)
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
//
// t is cut into blocks that stay in the L1 cache. In each block the
// prefilter runs bytes.IndexByte for every group's rare byte and verifies
// each hit; when a block yields more hits than the prefilter can verify
// faster than the automaton would scan, the automaton scans that block
// instead, and the next few blocks too, backing off exponentially while the
// text stays dense in candidates.
func (m *Matcher) find(t []byte) (kw, end int) {
	const noEnd = int(^uint(0) >> 1)
	kw, end = -1, noEnd
	w := m.maxLen - 1
	fails, skip := 0, 0
	// The automaton resumes where it stopped when consecutive blocks use
	// it, instead of rescanning the w bytes before each block.
	acPos, acState := -1, uint32(0)
	for bs := 0; bs < min(len(t), end); bs += blockSize {
		be := min(bs+blockSize, len(t), end)
		if skip == 0 {
			var done bool
			if kw, end, done = m.prefilter(t, bs, be, kw, end); done {
				fails = 0
				continue
			}
			fails++
			skip = 1<<min(fails, maxBackoff) - 1
		} else {
			skip--
		}
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
		n, s, found := m.ac.scan(s, t[lo:hi])
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
	// blockSize is the span the prefilter's passes share, small enough to
	// stay in the L1 cache across them.
	blockSize = 16 << 10
	// A block is handed to the automaton once its candidates exceed
	// len/2^budgetShift + budgetMin: verifying a candidate costs about as
	// much as the automaton spends on 2^budgetShift bytes.
	budgetShift = 4
	budgetMin   = 16
	// maxBackoff caps the number of blocks, 2^maxBackoff-1, scanned by the
	// automaton before the prefilter is tried again.
	maxBackoff = 6
)

// prefilter searches the occurrences whose group byte lies in [bs, be) and
// which end no later than end, improving on kw and end. It gives up,
// returning done false, when the block holds too many candidates; the
// results found so far are still returned.
func (m *Matcher) prefilter(t []byte, bs, be, kw, end int) (int, int, bool) {
	budget := (be-bs)>>budgetShift + budgetMin
	for gi := range m.groups {
		g := &m.groups[gi]
		for p := bs; ; p++ {
			hi := min(be, end)
			if p >= hi {
				break
			}
			j := bytes.IndexByte(t[p:hi], g.b)
			if j < 0 {
				break
			}
			p += j
			if budget--; budget < 0 {
				return kw, end, false
			}
			for _, c := range g.cands {
				s := p - int(c.off)
				e := s + int(c.n)
				if s < 0 || e > len(t) || e > end || (e == end && int(c.kw) >= kw) {
					continue
				}
				if m.equal(int(c.kw), t[s:e]) {
					kw, end = int(c.kw), e
				}
			}
		}
	}
	return kw, end, true
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
