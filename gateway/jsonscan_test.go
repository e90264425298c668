package gateway

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// skipPlainOracle is skipPlainAVX2 by its definition.
func skipPlainOracle(b []byte) int {
	n := len(b) &^ 31
	for i, c := range b[:n] {
		if c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return n
}

// TestSkipPlain puts every kind of special byte, and its neighbours that
// are plain, at every position of texts up to 200 bytes long.
func TestSkipPlain(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no AVX2 on this machine")
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for n := 0; n <= 200; n++ {
		buf := make([]byte, n+32)
		text := buf[rng.IntN(32):][:n] // unaligned as well
		for i := range text {
			// Plain bytes, UTF-8 and the neighbours of the specials.
			text[i] = "a !#[]\x7f\x80\xe6\xff\x20\x21\x5b\x5d"[rng.IntN(14)]
		}
		if got, want := skipPlainAVX2(text), skipPlainOracle(text); got != want {
			t.Fatalf("plain text of %d: %d, want %d", n, got, want)
		}
		for pos := range n {
			for _, c := range []byte{'"', '\\', 0x00, 0x0a, 0x1f} {
				old := text[pos]
				text[pos] = c
				if got, want := skipPlainAVX2(text), skipPlainOracle(text); got != want {
					t.Fatalf("%#x at %d of %d: %d, want %d", c, pos, n, got, want)
				}
				text[pos] = old
			}
		}
	}
}

// TestValidJSONScans runs the validator with and without the vectorized
// scan on strings around its thresholds and checks both against
// encoding/json, which lets invalid UTF-8 through where the validator
// refuses it.
func TestValidJSONScans(t *testing.T) {
	var docs []string
	for _, n := range []int{0, 7, 8, 9, 39, 40, 41, 72, 100, 1000} {
		for _, inner := range []string{"", `\"`, `\\`, `\u00e9`, "\x01", "\n", `\x`, "é", "\xff"} {
			plain := strings.Repeat("a", n)
			docs = append(docs,
				`{"k":"`+plain+inner+plain+`"}`,
				`["`+plain+inner+`"]`,
				`"`+inner+plain,
			)
		}
	}
	old := hasAVX2
	defer func() { hasAVX2 = old }()
	for _, simd := range []bool{false, old} {
		hasAVX2 = simd
		for _, d := range docs {
			if got, want := validJSON([]byte(d)), json.Valid([]byte(d)) && utf8.Valid([]byte(d)); got != want {
				t.Errorf("avx2 %v: validJSON(%q) = %v, encoding/json %v", simd, d, got, want)
			}
		}
	}
}
