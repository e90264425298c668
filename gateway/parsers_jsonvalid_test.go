package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestValidJSONAgainstEncodingJSON: spellings at the edges of RFC 8259
// are judged as encoding/json judges them (and invalid UTF-8 refused).
func TestValidJSONAgainstEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"\ufeff{}", "{}\ufeff", "\xef\xbb", // a byte order mark is not whitespace
		"\f[]", "\v[]", "[]\x00", "\u00a0[]", "[\u2028]", "[1,\u00a02]", // nor are these
		" \t\r\n[ \t\r\n1 \t\r\n] \t\r\n",
		`"\ud800"`, `"\udc00\ud800"`, `"\ud83d\ude00"`, `"\uD800x"`, // lone surrogates are JSON
		"\"\xed\xa0\x80\"", "\"\xc0\xaf\"", "\"\xf4\x90\x80\x80\"", // not UTF-8
		`01`, `-01`, `00`, `1.`, `-`, `-.5`, `1e`, `1e+`, `1E-0`, `1.5E+10`, `-0`, `0e0`, `1.0e`, `+1`, `1_0`, `0x10`, `Infinity`,
		`[01]`, `{"a":01}`, `[1.]`, `[-]`, `[1e]`, `[1 2]`, `[1]]`, `[[1]`, `{"a":1}}`, `{"a" 1}`, `{"a"::1}`, `{,}`, `[,]`,
		`truex`, `true false`, `nulll`, `[true,false,null]`, `"\u00"`, `"\`, `"\"`, `"\'"`, `"\U0041"`,
	} {
		want := json.Valid([]byte(s)) && utf8.ValidString(s)
		if got := validJSON([]byte(s)); got != want {
			t.Errorf("validJSON(%q) = %v, encoding/json says %v", s, got, want)
		}
	}
}

// TestValidJSONDeepFlood: 4 MiB of openers, of every kind, is refused
// without running out of stack and in time linear in its size.
func TestValidJSONDeepFlood(t *testing.T) {
	const size = 4 << 20
	for unit, closer := range map[string]string{"[": "]", `{"a":`: "}", `[{"":`: "}]", " [ ": " ] "} {
		body := bytes.Repeat([]byte(unit), size/len(unit))
		start := time.Now()
		if validJSON(body) {
			t.Errorf("4 MiB of %q is valid", unit)
		}
		// Closed, it is valid up to maxJSONDepth levels deep.
		levels := maxJSONDepth / len(strings.Trim(closer, " "))
		for n, want := range map[int]bool{levels: true, levels + 1: false} {
			closed := strings.Repeat(unit, n) + "1" + strings.Repeat(closer, n)
			if validJSON([]byte(closed)) != want {
				t.Errorf("%d of %q closed: valid %v, want %v", n, unit, !want, want)
			}
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("4 MiB of %q took %v", unit, d)
		}
	}
}
