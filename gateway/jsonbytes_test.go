package gateway

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestValidJSON(t *testing.T) {
	f := func(in string, want bool) {
		t.Helper()
		if got := validJSON([]byte(in)); got != want {
			t.Errorf("validJSON(%q) = %v, want %v", in, got, want)
		}
	}
	for _, s := range []string{
		`{}`, `[]`, ` {"a":1} `, `"x"`, `0`, `-0.5e+10`, `true`, `false`, `null`,
		`{"a":[1,{"b":null}],"c":"\u65b0\"\\\/\b\f\n\r\t"}`, "[1,\n2]", `{"":""}`, `"新品"`,
	} {
		f(s, true)
	}
	for _, s := range []string{
		``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[,1]`, `{"a":1 "b":2}`, `{a:1}`,
		`01`, `1.`, `.5`, `-`, `1e`, `+1`, `tru`, `nul`, `"abc`, `"a\x"`, `"\u12g4"`, "\"a\nb\"",
		"\"a\x01\"", `{} {}`, `[1] x`, "\"\xff\"", `{"a":1]`, `[1}`, `NaN`,
	} {
		f(s, false)
	}
	deep := bytes.Repeat([]byte("["), maxJSONDepth)
	deep = append(deep, bytes.Repeat([]byte("]"), maxJSONDepth)...)
	f(string(deep), true)
	f("["+string(deep)+"]", false)
	// Objects and arrays alternating around 64 levels, where the
	// validator switches to its deep stack: the closers must still match.
	for _, n := range []int{63, 64, 65, 66, 129, 1000} {
		var open, shut []byte
		for i := range n {
			if i%2 == 0 {
				open, shut = append(open, `{"k":`...), append([]byte("}"), shut...)
			} else {
				open, shut = append(open, '['), append([]byte("]"), shut...)
			}
		}
		body := string(open) + "1" + string(shut)
		f(body, true)
		swap := func(i int) string { // the closer at i of the other kind
			b := []byte(body)
			b[i] = map[byte]byte{'}': ']', ']': '}'}[b[i]]
			return string(b)
		}
		f(swap(len(open)+1), false)   // innermost
		f(swap(len(body)-1), false)   // outermost
		f(swap(len(body)-n/2), false) // somewhere between
		f(body[:len(body)-1], false)  // one closer short
	}
}

// FuzzValidJSON checks validJSON against encoding/json as the oracle, and
// that the one-line form of any valid body is the same document.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `[]`, `"\u00e9"`, `{"x":-1.5e3}`, "[1,\n 2]", `{"a":"b\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := validJSON(b)
		want := json.Valid(b) && utf8.Valid(b)
		if got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", b, got, want)
		}
		if !got {
			return
		}
		c := appendOneLine([]byte("x"), b)[1:]
		if bytes.ContainsAny(c, "\n\r") {
			t.Fatalf("one-line form of %q holds a line break: %q", b, c)
		}
		var want2, got2 bytes.Buffer
		if err := json.Compact(&want2, b); err != nil {
			t.Fatal(err)
		}
		if err := json.Compact(&got2, c); err != nil || !bytes.Equal(got2.Bytes(), want2.Bytes()) {
			t.Fatalf("one-line form of %q is %q: a different document (%v)", b, c, err)
		}
	})
}

// FuzzAppendJSONString: the escaped form always parses and round-trips
// (invalid UTF-8 becomes U+FFFD, as encoding/json decodes it too).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\`, "ctl\x00\x1f\n", "新品", "\xff\xfe", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q escaped to %q: %v", s, b, err)
		}
		if want := perByteValid(s); got != want {
			t.Fatalf("%q round-tripped to %q", s, got)
		}
		if bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("escaped string has a raw newline: %q", b)
		}
	})
}

// perByteValid replaces each byte of an invalid UTF-8 sequence with U+FFFD.
func perByteValid(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

// TestHasStringSpecial checks the word test against the byte table for
// every byte in every position.
func TestHasStringSpecial(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			var b [8]byte
			for i := range b {
				b[i] = 'a'
			}
			b[pos] = byte(c)
			w := uint64(0)
			for i := 7; i >= 0; i-- {
				w = w<<8 | uint64(b[i])
			}
			if got, want := hasStringSpecial(w), !strPlain[c]; got != want {
				t.Fatalf("byte %#x at %d: %v, want %v", c, pos, got, want)
			}
		}
	}
}

// TestAppendOneLinePieces: line breaks on either side of the boundaries
// of the pieces appendOneLine copies in, and at the very ends, all become
// spaces, and what dst held before is kept.
func TestAppendOneLinePieces(t *testing.T) {
	const piece = 8 << 10
	body := bytes.Repeat([]byte{' '}, 3*piece+5)
	body[0], body[len(body)-1] = '[', ']'
	for _, i := range []int{1, piece - 1, piece, piece + 1, 2*piece - 1, 2 * piece, 3 * piece, len(body) - 2} {
		body[i] = '\n'
		body[i+1] = '\r'
	}
	want := append([]byte("x"), bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, body)...)
	for _, dst := range [][]byte{[]byte("x"), append(make([]byte, 0, 4*piece), 'x')} {
		got := appendOneLine(dst, body)
		if !bytes.Equal(got, want) {
			t.Errorf("cap %d: the one-line form differs at %d", cap(dst), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
