package matcher

// byteFreq ranks how often each byte value occurs in webhook bodies: JSON
// punctuation, English words, digits, and UTF-8 Chinese text. The numbers
// are rough relative frequencies; only their order matters. Until a body
// is sampled, the prefilter searches each keyword by the pair of adjacent
// bytes whose product of frequencies is lowest, so that it stops as seldom
// as possible.
var byteFreq = func() (f [256]uint8) {
	// Printable ASCII not listed below: rare punctuation.
	for c := 0x20; c < 0x7f; c++ {
		f[c] = 3
	}
	for _, e := range []struct {
		chars string
		freq  uint8
	}{
		{"e", 100}, {`"`, 90}, {"t", 75}, {"a", 72}, {" ", 70}, {"o", 68},
		{"i", 66}, {"n", 64}, {"s", 60}, {"r", 58}, {"01", 50}, {"2", 45},
		{":,", 40}, {"dl", 40}, {"h", 38}, {"c", 35}, {"3456789", 32},
		{"u", 30}, {"m", 28}, {"p", 24}, {"f", 22}, {"g", 20}, {".", 20},
		{"-_", 18}, {"y", 16}, {"w", 15}, {"b", 14}, {"{}/", 12},
		{"IST", 12}, {"ACDENOPR", 10}, {"v", 10}, {"k", 9},
		{"BFGHLMU", 6}, {"[]", 6}, {`\`, 6}, {"x", 5}, {"+=()'", 4},
		{"KVWY", 4}, {"jqz", 3}, {"JQXZ", 2},
	} {
		for i := 0; i < len(e.chars); i++ {
			f[e.chars[i]] = e.freq
		}
	}
	// Control bytes never occur raw in valid JSON; the ones that do occur
	// come from pretty-printing.
	f['\n'], f['\t'], f['\r'] = 12, 6, 4
	// UTF-8: continuation bytes spread over 64 values; the lead bytes of
	// CJK (E4-E9) and of CJK punctuation (E2, E3, EF) cluster on a few.
	for c := 0x80; c < 0xc0; c++ {
		f[c] = 10
	}
	for c := 0xc2; c < 0xe0; c++ {
		f[c] = 3
	}
	for c := 0xe0; c < 0xf5; c++ {
		f[c] = 2
	}
	for c := 0xe4; c <= 0xe9; c++ {
		f[c] = 40
	}
	f[0xe2], f[0xe3], f[0xef], f[0xf0] = 8, 8, 10, 3
	return f
}()

// cost is how often the prefilter expects to stop when it searches for c.
// Without case, both cases of a letter are searched.
func cost(c byte, ignoreCase bool) int {
	if ignoreCase && lower(c) != upper(c) {
		return int(byteFreq[lower(c)]) + int(byteFreq[upper(c)])
	}
	return int(byteFreq[c])
}

// upper raises an ASCII small letter and returns any other byte as is.
func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}
