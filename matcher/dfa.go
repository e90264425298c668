package matcher

// dfa is an Aho-Corasick automaton compiled to a dense transition table
// over byte classes. It only has to find where the first keyword
// occurrence ends; Matcher.endingAt then tells which keyword it is, so
// states carry no output lists and states that complete a keyword have no
// row at all.
type dfa struct {
	// class maps a byte to its column. Bytes that occur in no keyword
	// share column 0; without case, both cases of a letter share one.
	class [256]uint32
	// trans[s+class[b]] is the state after reading b in state s. States
	// are stored premultiplied by the number of columns so that a step
	// is one add and one load; matchBit marks the transitions that
	// complete a keyword.
	trans []uint32
	// root is the root's row indexed by byte rather than class.
	root [256]uint32
}

// buildDFA compiles keywords, which must be non-empty, into a dfa.
func buildDFA(keywords []string, ignoreCase bool) dfa {
	var d dfa
	fold := func(c byte) byte {
		if ignoreCase {
			return lower(c)
		}
		return c
	}
	ncol := uint32(1)
	for _, kw := range keywords {
		for i := 0; i < len(kw); i++ {
			if c := fold(kw[i]); d.class[c] == 0 {
				d.class[c] = ncol
				ncol++
			}
		}
	}
	if ignoreCase {
		for c := 'A'; c <= 'Z'; c++ {
			d.class[c] = d.class[c+'a'-'A']
		}
	}

	// The trie, with -1 for a missing child, then completed into the
	// automaton's transition function in breadth-first order.
	nodes := 1
	for _, kw := range keywords {
		nodes += len(kw)
	}
	next := make([]int32, nodes*int(ncol))
	for i := range next {
		next[i] = -1
	}
	match := make([]bool, nodes)
	n := int32(1)
	for _, kw := range keywords {
		s := int32(0)
		for i := 0; i < len(kw); i++ {
			c := int32(d.class[fold(kw[i])])
			if next[s*int32(ncol)+c] < 0 {
				next[s*int32(ncol)+c] = n
				n++
			}
			s = next[s*int32(ncol)+c]
		}
		match[s] = true
	}
	fail := make([]int32, n)
	order := make([]int32, 0, n)
	for c := int32(0); c < int32(ncol); c++ {
		if t := next[c]; t < 0 {
			next[c] = 0
		} else {
			order = append(order, t)
		}
	}
	for q := 0; q < len(order); q++ {
		s := order[q]
		match[s] = match[s] || match[fail[s]]
		for c := int32(0); c < int32(ncol); c++ {
			i := s*int32(ncol) + c
			if t := next[i]; t < 0 {
				next[i] = next[fail[s]*int32(ncol)+c]
			} else {
				fail[t] = next[fail[s]*int32(ncol)+c]
				order = append(order, t)
			}
		}
	}

	// Number the states that complete no keyword, from the root; the
	// others need no row, as scanning stops on reaching one.
	id := make([]uint32, n)
	rows := uint32(0)
	for s := range n {
		if !match[s] {
			id[s] = rows
			rows++
		}
	}
	d.trans = make([]uint32, rows*ncol)
	for s := range n {
		if match[s] {
			continue
		}
		for c := uint32(0); c < ncol; c++ {
			t := next[uint32(s)*ncol+c]
			if match[t] {
				d.trans[id[s]*ncol+c] = matchBit
			} else {
				d.trans[id[s]*ncol+c] = id[t] * ncol
			}
		}
	}
	for b := range d.root {
		d.root[b] = d.trans[d.class[b]]
	}
	return d
}

// matchBit marks a transition into a state that completes a keyword.
const matchBit = 1 << 31

// scan feeds t to the automaton from state s. When a keyword is completed
// it returns the number of bytes read up to and including that one and
// found true; otherwise len(t) and the state reached.
func (d *dfa) scan(s uint32, t []byte) (n int, state uint32, found bool) {
	trans, class, root := d.trans, &d.class, &d.root
	for i, b := range t {
		// Most bytes leave the automaton in the root state. Reading the
		// root's row without going through s lets the CPU load ahead
		// instead of waiting for each step to complete.
		if s == 0 {
			s = root[b]
		} else {
			s = trans[s+class[b]]
		}
		if s&matchBit != 0 {
			return i + 1, s, true
		}
	}
	return len(t), s, false
}

// scan4 is scan for long texts. A step of the automaton is a load that
// depends on the previous one, so a single scan waits on memory latency;
// scan4 runs four scans in lockstep over the four quarters of t, which the
// CPU overlaps. The scan of a quarter starts w (maxLen-1) bytes early, in
// the root state: it has the exact state by the time it reaches its
// quarter, since a state never spans more than w bytes.
func (d *dfa) scan4(s uint32, t []byte, w int) (n int, state uint32, found bool) {
	q := len(t) / 4
	if q < 2*w+64 {
		return d.scan(s, t)
	}
	l := q + w
	t0 := t[:l]
	t1 := t[q-w:][:l]
	t2 := t[2*q-w:][:l]
	t3 := t[3*q-w:][:l]
	trans, class := d.trans, &d.class
	s0, s1, s2, s3 := s, uint32(0), uint32(0), uint32(0)
	for i := range t0 {
		s0 = trans[s0+class[t0[i]]]
		s1 = trans[s1+class[t1[i]]]
		s2 = trans[s2+class[t2[i]]]
		s3 = trans[s3+class[t3[i]]]
		if (s0|s1|s2|s3)&matchBit != 0 {
			// Which occurrence ends first is left to a plain scan: this
			// happens once per text at most.
			return d.scan(s, t)
		}
	}
	// Every occurrence ending before 4q has been searched; the last
	// scan goes on to the end.
	n, s3, found = d.scan(s3, t[4*q:])
	return 4*q + n, s3, found
}
