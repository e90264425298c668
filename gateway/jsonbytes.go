package gateway

import (
	"bytes"
	"slices"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// jsonSafe[c] is true for the ASCII bytes that need no escaping inside a
// JSON string.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string literal, quotes included.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONStringBody(dst, s)
	return append(dst, '"')
}

// appendJSONBytes appends b as a JSON string literal, quotes included.
func appendJSONBytes(dst, b []byte) []byte {
	return appendJSONString(dst, b2s(b))
}

// appendJSONStringBody escapes s into dst without the quotes. Control
// characters become \u00XX (or their short forms), invalid UTF-8 becomes
// U+FFFD, and U+2028/U+2029 are escaped so the output is also safe to embed
// in JavaScript. The output always parses with encoding/json and decodes
// back to s when s is valid UTF-8.
func appendJSONStringBody(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// appendOneLine appends the JSON document src with every CR and LF turned
// into a space, so an event stays one line. src must be valid JSON: its
// strings hold no raw CR or LF, so every one is whitespace between tokens
// and a space means the same. This costs a copy and a vectorised search
// for line breaks, where compacting the document would cost a pass byte
// by byte.
func appendOneLine(dst, src []byte) []byte {
	dst = slices.Grow(dst, len(src))
	// Copy and search in pieces that stay in the L1 cache, so the body
	// is read from memory once rather than three times.
	const piece = 8 << 10
	for len(src) > 0 {
		n := min(len(src), piece)
		start := len(dst)
		dst = append(dst, src[:n]...)
		src = src[n:]
		out := dst[start:]
		for _, nl := range [2]byte{'\n', '\r'} {
			for i := 0; ; {
				j := bytes.IndexByte(out[i:], nl)
				if j < 0 {
					break
				}
				out[i+j] = ' '
				i += j + 1
			}
		}
	}
	return dst
}
