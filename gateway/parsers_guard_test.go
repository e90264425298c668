//go:build unix

package gateway

import (
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/sys/unix"
)

// guardedTail returns a function that copies its input into memory that
// ends exactly where an inaccessible page starts, so a read one byte past
// the input's end faults instead of reading a neighbour's bytes.
func guardedTail(t *testing.T) func(s string) []byte {
	t.Helper()
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	if err := unix.Mprotect(mem[page:], unix.PROT_NONE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	return func(s string) []byte {
		if len(s) > page {
			t.Fatalf("input of %d bytes is over a page", len(s))
		}
		b := mem[page-len(s) : page : page]
		copy(b, s)
		return b
	}
}

// guardInputs are documents of length n, valid and not, whose last byte
// is where a scan is most likely to look one further: inside a long
// string, an escape, a number, a literal, deep nesting or whitespace.
func guardInputs(n int) []string {
	rep := func(s string, k int) string {
		if k <= 0 {
			return ""
		}
		return strings.Repeat(s, k)
	}
	var out []string
	add := func(s string) {
		if len(s) >= n {
			out = append(out, s[len(s)-n:])
			out = append(out, s[:n])
		}
	}
	pad := rep("a", n+8)
	add(`"` + pad)                          // unterminated plain string
	add(`"` + pad + `"`)                    // plain string, closed at the end
	add(`{"k":"` + pad + `"}`)              //
	add(`["` + rep("é", n) + `"]`)          // multi-byte runs
	add(`"` + pad + `\`)                    // a backslash as the last byte
	add(`"` + pad + `\u12`)                 // a cut escape
	add(`"` + pad + "\x01")                 // a control character last
	add(rep("[", n+1))                      // nesting to the end
	add(rep("1", n+1))                      // a number to the end
	add("[" + rep("1,", n) + "1]")          //
	add(rep(" ", n) + "tru")                // a cut literal
	add(rep(" ", n) + "null")               //
	add(rep(" \t\r\n", n))                  // whitespace only
	add(`{"a":` + rep(`"\u00e9",`, n))      //
	add(`"` + rep(`a\"`, n) + `"`)          // escapes dense
	add(`"` + rep("a", n) + "\xe6\x96\xb0") // UTF-8 at the end
	add(`"` + rep("a", n) + "\xe6\x96")     // UTF-8 cut
	out = append(out, rep(`"`, min(n, 1))+rep("a", n-2)+rep(`"`, min(max(n-1, 0), 1)))
	return out
}

// TestParsersGuardPage runs the JSON validator (with and without the
// vectorized scan), the vectorized scan itself and the robot message
// reader on inputs of every length from 0 to 300 that end at an
// inaccessible page: none may read past its input's end.
func TestParsersGuardPage(t *testing.T) {
	place := guardedTail(t)
	old := hasAVX2
	defer func() { hasAVX2 = old }()
	for n := 0; n <= 300; n++ {
		for _, s := range guardInputs(n) {
			b := place(s)
			want := json.Valid([]byte(s)) && utf8.Valid([]byte(s))
			for _, simd := range []bool{false, old} {
				hasAVX2 = simd
				if got := validJSON(b); got != want {
					t.Fatalf("avx2 %v: validJSON(%q) = %v, want %v", simd, s, got, want)
				}
			}
			if want {
				robotMsgType(b)
			}
			if old {
				for k := 0; k <= len(b); k++ {
					if got, want := skipPlainAVX2(b[k:]), skipPlainOracle([]byte(s[k:])); got != want {
						t.Fatalf("skipPlainAVX2(%q) = %d, want %d", s[k:], got, want)
					}
				}
			}
		}
	}
	// A robot message ending at the page's end.
	msg := `{"msgtype":"text","text":{"content":"hi"}}`
	for n := 0; n <= 300; n++ {
		s := msg[:len(msg)-1] + "," + `"x":"` + strings.Repeat("a", n) + `"}`
		if got := robotMsgType(place(s)); got != "text" {
			t.Fatalf("robotMsgType(%q) = %q", s, got)
		}
	}
}

// TestGuardPageFaults shows the guard is real: a read one byte past an
// input placed by guardedTail faults.
func TestGuardPageFaults(t *testing.T) {
	place := guardedTail(t)
	b := place("x")
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() == nil {
			t.Fatal("reading past the input did not fault")
		}
	}()
	past := unsafe.Slice(unsafe.SliceData(b), 2)
	t.Fatalf("read %#x past the input", past[1])
}
