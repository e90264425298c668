package gateway

import (
	"encoding/binary"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of a body, as encoding/json does.
const maxJSONDepth = 10000

// strPlain[c] is true for bytes a JSON string holds as they are: anything
// but the quote, the backslash and control characters.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// validJSON reports whether b is exactly one JSON value (RFC 8259) with
// optional surrounding whitespace, in valid UTF-8, nested at most
// maxJSONDepth deep. Unlike fastjson.Validate it rejects raw control
// characters in strings (so an event stays one line) and it never
// allocates, on valid and invalid input alike, which keeps a flood of bad
// bodies cheap.
func validJSON(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	// Bodies nested deeper than 64 are rare: they are validated again
	// with a stack for maxJSONDepth, so the common case does not clear
	// 1.2 KB of stack on every request.
	var shallow [1]uint64
	if ok, deeper := validJSONValue(b, shallow[:]); !deeper {
		return ok
	}
	var deep [maxJSONDepth/64 + 1]uint64
	ok, _ := validJSONValue(b, deep[:])
	return ok
}

// validJSONValue validates b, which is valid UTF-8, tracking open
// containers in stack, one bit each: 1 for an object, 0 for an array.
// It reports deeper when b nests deeper than stack holds (and no deeper
// than maxJSONDepth, which is invalid).
func validJSONValue(b []byte, stack []uint64) (ok, deeper bool) {
	depth := 0
	i := skipJSONSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return false, false
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth == maxJSONDepth {
				return false, false
			}
			if depth == len(stack)*64 {
				return false, true
			}
			if c == '{' {
				stack[depth>>6] |= 1 << (depth & 63)
			} else {
				stack[depth>>6] &^= 1 << (depth & 63)
			}
			depth++
			i = skipJSONSpace(b, i+1)
			if i < len(b) && (c == '{' && b[i] == '}' || c == '[' && b[i] == ']') {
				depth--
				i++
				break
			}
			if c == '{' {
				if i = skipJSONKey(b, i); i < 0 {
					return false, false
				}
			}
			continue
		case '"':
			if i = skipJSONString(b, i+1); i < 0 {
				return false, false
			}
		case 't':
			if i = skipLiteral(b, i, "true"); i < 0 {
				return false, false
			}
		case 'f':
			if i = skipLiteral(b, i, "false"); i < 0 {
				return false, false
			}
		case 'n':
			if i = skipLiteral(b, i, "null"); i < 0 {
				return false, false
			}
		default:
			if i = skipJSONNumber(b, i); i < 0 {
				return false, false
			}
		}
		// A value ended at i: close containers, or go on to the next value.
		for {
			i = skipJSONSpace(b, i)
			if depth == 0 {
				return i == len(b), false
			}
			if i >= len(b) {
				return false, false
			}
			inObject := stack[(depth-1)>>6]&(1<<((depth-1)&63)) != 0
			c := b[i]
			if c == ',' {
				i = skipJSONSpace(b, i+1)
				if inObject {
					if i = skipJSONKey(b, i); i < 0 {
						return false, false
					}
				}
				break
			}
			if inObject && c == '}' || !inObject && c == ']' {
				depth--
				i++
				continue
			}
			return false, false
		}
	}
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipJSONKey skips `"key" :` and the space after it, or returns -1.
func skipJSONKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = skipJSONString(b, i+1); i < 0 {
		return -1
	}
	i = skipJSONSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipJSONSpace(b, i+1)
}

// skipJSONString returns the index after the string whose body starts at
// i (after the opening quote), or -1.
func skipJSONString(b []byte, i int) int {
	for {
		// Eight bytes at a time while none of them is special: most of a
		// body is string content, and this is where validation spends
		// its time. Past eight plain bytes a long run is likely, and with
		// AVX2 it goes 32 at a time; a string dense in escapes never gets
		// that far and pays nothing for the call.
		if i+8 <= len(b) && !hasStringSpecial(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
			if hasAVX2 && len(b)-i >= 32 {
				i += skipPlainAVX2(b[i:])
			}
			for i+8 <= len(b) && !hasStringSpecial(binary.LittleEndian.Uint64(b[i:])) {
				i += 8
			}
		}
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return -1
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return -1
					}
				}
				i += 6
			default:
				return -1
			}
		default:
			return -1 // a raw control character
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// skipJSONNumber skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func skipJSONNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasStringSpecial reports whether any byte of w is a quote, a backslash
// or a control character (< 0x20): the bytes that end a run of plain
// string content. The tests are the classic SWAR ones: exact as a yes/no
// answer, which is all the caller needs before it looks byte by byte.
func hasStringSpecial(w uint64) bool {
	q := w ^ (ones * '"')
	bs := w ^ (ones * '\\')
	return ((q-ones)&^q|(bs-ones)&^bs|(w-ones*0x20)&^w)&highs != 0
}
