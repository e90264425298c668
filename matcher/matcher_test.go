package matcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

func TestMatch(t *testing.T) {
	long := strings.Repeat("k", MaxKeywordLen-1) + "!"
	tests := []struct {
		name       string
		keywords   []string
		ignoreCase bool
		body       string
		wantKW     int
		wantOK     bool
	}{
		{"raw hit", []string{"paid"}, false, `{"status":"paid"}`, 0, true},
		{"raw chinese", []string{"退款", "新品"}, false, `{"title":"新品 耳机"}`, 1, true},
		{"miss", []string{"refund", "退款"}, false, `{"status":"paid"}`, -1, false},
		{"empty body", []string{"a"}, false, ``, -1, false},
		{"no keywords", nil, false, `{"status":"paid"}`, -1, true},
		{"no keywords empty body", []string{}, false, ``, -1, true},
		{"at start", []string{`{"st`}, false, `{"status":"paid"}`, 0, true},
		{"at end", []string{`paid"}`}, false, `{"status":"paid"}`, 0, true},
		{"whole body", []string{`{"a":1}`}, false, `{"a":1}`, 0, true},
		{"longer than body", []string{`{"a":1}!`}, false, `{"a":1}`, -1, false},
		{"256 bytes at end", []string{long}, false, `{"k":"` + long, 0, true},

		{"escaped chinese", []string{"新品"}, false, `{"name":"\u65b0\u54c1"}`, 0, true},
		{"escaped upper hex", []string{"新品"}, false, `{"name":"\u65B0\u54C1"}`, 0, true},
		{"escaped half raw", []string{"新品"}, false, `{"name":"新\u54c1"}`, 0, true},
		{"surrogate pair", []string{"🚨"}, false, `{"a":"alert \ud83d\udea8"}`, 0, true},
		{"surrogate pair upper", []string{"x🚨y"}, false, `{"a":"x\uD83D\uDEA8y"}`, 0, true},
		{"escaped quote", []string{`say "hi"`}, false, `{"a":"say \"hi\""}`, 0, true},
		{"escaped slash", []string{"https://x.io/a"}, false, `{"u":"https:\/\/x.io\/a"}`, 0, true},
		{"escaped backslash", []string{`C:\dir`}, false, `{"p":"C:\\dir"}`, 0, true},
		{"escaped controls", []string{"a\b\f\n\r\tb"}, false, `{"t":"a\b\f\n\r\tb"}`, 0, true},
		{"escaped nul", []string{"a\x00b"}, false, `{"t":"a\u0000b"}`, 0, true},
		{"lone high surrogate", []string{"a\uFFFDb"}, false, `{"t":"a\ud800b"}`, 0, true},
		{"lone low surrogate", []string{"a\uFFFDb"}, false, `{"t":"a\udc00b"}`, 0, true},
		{"high then non-low", []string{"\uFFFDA"}, false, `{"t":"\ud800\u0041"}`, 0, true},
		{"high then high", []string{"\uFFFD🚨"}, false, `{"t":"\ud800\ud83d\udea8"}`, 0, true},
		{"high at end", []string{"a\uFFFD"}, false, `a\ud83d`, 0, true},
		{"malformed kept", []string{`\q"`}, false, `{"t":"\q\""}`, 0, true},
		{"malformed hex kept", []string{`\u12G4"`}, false, `{"t":"\u12G4\""}`, 0, true},
		{"short hex at end", []string{`A\u12`}, false, `\u0041\u12`, 0, true},
		{"non-hex first digit kept", []string{"xA"}, false, `{"t":"x\uZ041"}`, -1, false},
		{"non-hex first digit in a run", []string{"\n\u09b0"}, false, `{"t":"\n\uu9b0"}`, -1, false},
		{"non-hex first digit literal", []string{`x\uZ041`}, false, `{"t":"\u0078\uZ041"}`, 0, true},
		{"trailing backslash", []string{`""\`}, false, `\"\"\`, 0, true},
		{"escaped miss", []string{"新品"}, false, `{"name":"\u65b0\u54c2"}`, -1, false},
		{"escape not decoded twice", []string{`\`}, false, `\\`, 0, true},
		{"escape decoded once", []string{`"`}, false, `\\u0022`, -1, false},

		{"case-sensitive", []string{"ERROR"}, false, `{"level":"error"}`, -1, false},
		{"ignore case", []string{"ERROR"}, true, `{"level":"error"}`, 0, true},
		{"ignore case mixed", []string{"eRrOr"}, true, `{"level":"ErRoR"}`, 0, true},
		{"ignore case escaped", []string{"Hi"}, true, `{"a":"\u0068\u0049"}`, 0, true},
		{"ignore case non-ASCII", []string{"É"}, true, `{"a":"é"}`, -1, false},
		{"ignore case non-ASCII lower", []string{"ä"}, true, `{"a":"Ä"}`, -1, false},
		{"ignore case symbols", []string{"@[\\]^_"}, true, "`{|}~\x7f", -1, false},
		{"ignore case symbols exact", []string{"@[]"}, true, `x@[]x`, 0, true},

		{"ends earliest", []string{"bcd", "abcde", "c"}, false, `abcdef`, 2, true},
		{"tie to lower index", []string{"abcd", "bcd"}, false, `abcdef`, 0, true},
		{"tie to lower index reversed", []string{"bcd", "abcd"}, false, `abcdef`, 0, true},
		{"later keyword earlier in body", []string{"later", "early"}, false, `early, later`, 1, true},
		{"first occurrence counts", []string{"ab", "xyz"}, false, `xyz ab ab`, 1, true},
		{"overlapping prefixes", []string{"order_status_x", "order_st", "order"}, false, `{"order_status_x":1}`, 2, true},
		{"duplicates", []string{"a", "a"}, false, `xa`, 0, true},
		{"ignore case tie", []string{"AB", "b"}, true, `xab`, 0, true},
		{"raw before decoded", []string{"新品", "x"}, false, `{"a":"\u65b0\u54c1","b":"x"}`, 1, true},
		{"decoded ends earliest", []string{"é", "\n"}, false, `{"a":"\n","b":"\u00e9"}`, 1, true},
		{"decoded tie", []string{"品", "新品"}, false, `"\u65b0\u54c1"`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Compile(tt.keywords, tt.ignoreCase)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			kw, ok := m.Match([]byte(tt.body))
			if kw != tt.wantKW || ok != tt.wantOK {
				t.Fatalf("Match(%q) = %d, %v; want %d, %v", tt.body, kw, ok, tt.wantKW, tt.wantOK)
			}
			if okw, ook := oracleMatch(tt.keywords, tt.ignoreCase, []byte(tt.body)); okw != kw || ook != ok {
				t.Fatalf("oracle says %d, %v", okw, ook)
			}
			var s Scanner
			s.Reset(m)
			for i := range len(tt.body) {
				s.Write([]byte(tt.body[i : i+1]))
			}
			if kw, ok := s.Result(); kw != tt.wantKW || ok != tt.wantOK {
				t.Fatalf("Scanner byte by byte = %d, %v; want %d, %v", kw, ok, tt.wantKW, tt.wantOK)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	f := func(keywords []string, want string) {
		t.Helper()
		// Check refuses what Compile refuses, with the same words.
		if err := Check(keywords); (err == nil) != (want == "") || err != nil && err.Error() != want {
			t.Fatalf("Check(%d keywords) error = %v; want %q", len(keywords), err, want)
		}
		m, err := Compile(keywords, false)
		if want == "" {
			if err != nil {
				t.Fatalf("Compile(%d keywords): unexpected error %v", len(keywords), err)
			}
			if m.Len() != len(keywords) {
				t.Fatalf("Len() = %d; want %d", m.Len(), len(keywords))
			}
			return
		}
		if err == nil || err.Error() != want {
			t.Fatalf("Compile(%d keywords) error = %v; want %q", len(keywords), err, want)
		}
	}
	ten := make([]string, 10)
	for i := range ten {
		ten[i] = "k" + strconv.Itoa(i)
	}
	f(nil, "")
	f(ten, "")
	f(append(ten, "k10"), "11 keywords, at most 10")
	f([]string{"a", "b", "c", ""}, "keyword 3 is empty")
	f([]string{strings.Repeat("x", 256)}, "")
	f([]string{"a", "b", strings.Repeat("x", 257)}, "keyword 2 is 257 bytes, at most 256")
	f([]string{"a", "b", strings.Repeat("x", 300)}, "keyword 2 is 300 bytes, at most 256")
}

func TestKeywords(t *testing.T) {
	in := []string{"Paid", "新品"}
	m, err := Compile(in, true)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = "changed"
	if m.Len() != 2 || m.Keyword(0) != "Paid" || m.Keyword(1) != "新品" || !m.IgnoreCase() {
		t.Fatalf("got %d keywords %q %q, ignoreCase %v", m.Len(), m.Keyword(0), m.Keyword(1), m.IgnoreCase())
	}
}

func TestTestdata(t *testing.T) {
	f := func(file string, keywords []string, want int) {
		t.Helper()
		body, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		m, err := Compile(keywords, false)
		if err != nil {
			t.Fatal(err)
		}
		if kw, ok := m.Match(body); kw != want || ok != (want >= 0) {
			t.Fatalf("%s: Match = %d, %v; want %d", file, kw, ok, want)
		}
		if kw, _ := oracleMatch(keywords, false, body); kw != want {
			t.Fatalf("%s: oracle says %d; want %d", file, kw, want)
		}
	}
	f("erp_order.json", []string{"退款", "新品", "PAID"}, 1)
	f("erp_order.json", []string{"退款", "PAID", "急用"}, 1)
	f("erp_order.json", []string{"退款", "refund"}, -1)
	f("dingtalk_markdown.json", []string{"prod", "发布通知"}, 1)
	f("alert_escaped.json", []string{"值班", "支付网关"}, 1)
	f("alert_escaped.json", []string{"🚨", "https://wiki.example.com"}, 0)
	f("alert_escaped.json", []string{"https://wiki.example.com", "P0"}, 0)
	f("alert_escaped.json", []string{`code=~"5..`, "P0"}, 0)
	f("alert_escaped.json", []string{"P0", "恢复"}, -1)
}

// TestOracleUnescape checks the test's own decoder against encoding/json
// on JSON strings, so that the oracle itself is right.
func TestOracleUnescape(t *testing.T) {
	f := func(lit string) {
		t.Helper()
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		if got := oracleUnescape([]byte(lit[1 : len(lit)-1])); string(got) != want {
			t.Fatalf("%s: got %q, want %q", lit, got, want)
		}
	}
	f(`"\u65b0\u54c1"`)
	f(`"\ud83d\udea8 \uD83D\uDEA8"`)
	f(`"\ud800 \udc00 \ud800\u0041 \ud800\ud83d\udea8 \ud800"`)
	f(`"\"\\\/\b\f\n\r\t \u0000 \u00e9"`)
	f(`"plain 新品"`)
}

// TestLarge compares Match and Scanner with the oracle on bodies larger
// than the blocks and stretches the matcher works in, drawn from small
// alphabets so that the prefilter meets dense candidates and hands blocks
// to the automaton, and keywords land on block edges.
func TestLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := []string{`"e`, `ab`, `"ea:\`, `"\u0065`, "ab\\n", "x\\u65b0\\u54c1\\/"}
	for iter := range 200 {
		alpha := alphabets[iter%len(alphabets)]
		n := 1 + rng.IntN(3*blockSize)
		body := make([]byte, n)
		for i := range body {
			body[i] = alpha[rng.IntN(len(alpha))]
		}
		// Half the bodies alternate dense stretches with stretches of
		// bytes no keyword holds, so that the search switches between
		// the prefilter and the automaton.
		if iter%2 == 1 {
			for i := rng.IntN(blockSize); i < n; i += rng.IntN(2 * blockSize) {
				for j := i; j < min(n, i+rng.IntN(blockSize)); j++ {
					body[j] = "QWRTYZ"[rng.IntN(6)]
				}
			}
		}
		var keywords []string
		for range 1 + rng.IntN(MaxKeywords) {
			l := 3 + rng.IntN(12)
			if rng.IntN(4) == 0 {
				l += rng.IntN(MaxKeywordLen - l)
			}
			kw := make([]byte, l)
			for i := range kw {
				kw[i] = alpha[rng.IntN(len(alpha))]
			}
			keywords = append(keywords, string(kw))
		}
		// Plant a keyword late in the body, sometimes across a block edge.
		if k := rng.IntN(len(keywords) + 1); k < len(keywords) && len(keywords[k]) < n {
			at := n - len(keywords[k]) - rng.IntN(min(n-len(keywords[k]), 64))
			if e := blockSize + rng.IntN(8) - 4; rng.IntN(2) == 0 && e > len(keywords[k]) && e <= n {
				at = e - len(keywords[k])
			}
			copy(body[at:], keywords[k])
		}
		ignoreCase := iter%3 == 0
		checkOracle(t, iter, keywords, ignoreCase, body, rng, 2*blockSize)
	}
}

// TestScannerSplits writes bodies cut at every position, in two pieces and
// byte by byte, and compares with Match.
func TestScannerSplits(t *testing.T) {
	cases := []struct {
		keywords []string
		body     string
	}{
		{[]string{"新品"}, `{"name":"\u65b0\u54c1"}`},
		{[]string{"🚨", "x"}, `{"a":"\ud83d\udea8","b":"\ud83d\u0041"}`},
		{[]string{"\uFFFDA"}, `{"a":"\ud83d\u0041"}`},
		{[]string{"\uFFFD\\u12"}, `{"a":"\ud83d\u12"}`},
		{[]string{`say "hi"`, "paid"}, `{"a":"say \"hi\"","s":"paid"}`},
		{[]string{"paid", `say "hi"`}, `{"a":"say \"hi\"","s":"paid"}`},
		{[]string{"ab", "bc"}, `xxabcxx`},
	}
	for _, c := range cases {
		m, err := Compile(c.keywords, false)
		if err != nil {
			t.Fatal(err)
		}
		body := []byte(c.body)
		wantKW, wantOK := m.Match(body)
		if okw, ook := oracleMatch(c.keywords, false, body); okw != wantKW || ook != wantOK {
			t.Fatalf("%q: Match = %d, %v; oracle %d, %v", body, wantKW, wantOK, okw, ook)
		}
		var s Scanner
		for i := 0; i <= len(body); i++ {
			s.Reset(m)
			s.Write(body[:i])
			s.Write(body[i:])
			if kw, ok := s.Result(); kw != wantKW || ok != wantOK {
				t.Fatalf("%q cut at %d: %d, %v; want %d, %v", body, i, kw, ok, wantKW, wantOK)
			}
		}
	}
}

func TestScannerZero(t *testing.T) {
	var s Scanner
	s.Write([]byte("x"))
	if kw, ok := s.Result(); kw != -1 || ok {
		t.Fatalf("zero Scanner: %d, %v", kw, ok)
	}
	m, _ := Compile(nil, false)
	s.Reset(m)
	if kw, ok := s.Result(); kw != -1 || !ok {
		t.Fatalf("no keywords: %d, %v", kw, ok)
	}
	m, _ = Compile([]string{"新品"}, false)
	s.Reset(m)
	s.Write([]byte(`"\u65b0`))
	s.Write([]byte(`\u54c1"`))
	if kw, ok := s.Result(); kw != 0 || !ok {
		t.Fatalf("escaped: %d, %v", kw, ok)
	}
	s.Write([]byte("ignored"))
	if kw, ok := s.Result(); kw != 0 || !ok {
		t.Fatalf("second Result: %d, %v", kw, ok)
	}
	s.Reset(m)
	if kw, ok := s.Result(); kw != -1 || ok {
		t.Fatalf("after Reset: %d, %v", kw, ok)
	}
}

// oracleMatch is Match written the slow, obvious way.
func oracleMatch(keywords []string, ignoreCase bool, body []byte) (int, bool) {
	if len(keywords) == 0 {
		return -1, true
	}
	if kw := oracleFind(keywords, ignoreCase, body); kw >= 0 {
		return kw, true
	}
	kw := oracleFind(keywords, ignoreCase, oracleUnescape(body))
	return kw, kw >= 0
}

// oracleFind returns the keyword whose first occurrence in text ends
// earliest, the lower index on ties, or -1.
func oracleFind(keywords []string, ignoreCase bool, text []byte) int {
	if ignoreCase {
		text = oracleLower(text)
	}
	best, bestEnd := -1, 0
	for k, kw := range keywords {
		p := []byte(kw)
		if ignoreCase {
			p = oracleLower(p)
		}
		i := bytes.Index(text, p)
		if i < 0 {
			continue
		}
		if end := i + len(p); best < 0 || end < bestEnd {
			best, bestEnd = k, end
		}
	}
	return best
}

func oracleLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 32
		}
		out[i] = c
	}
	return out
}

// oracleUnescape decodes the JSON escapes of b as encoding/json does,
// keeping malformed ones as they are.
func oracleUnescape(b []byte) []byte {
	var out []byte
	u4 := func(i int) (rune, bool) {
		if i+4 > len(b) {
			return 0, false
		}
		for _, c := range b[i : i+4] {
			if !strings.ContainsRune("0123456789abcdefABCDEF", rune(c)) {
				return 0, false
			}
		}
		v, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
		return rune(v), err == nil
	}
	for i := 0; i < len(b); {
		if b[i] != '\\' || i+1 == len(b) {
			out = append(out, b[i])
			i++
			continue
		}
		if j := strings.IndexByte(`"\/bfnrt`, b[i+1]); j >= 0 {
			out = append(out, "\"\\/\b\f\n\r\t"[j])
			i += 2
			continue
		}
		r, ok := u4(i + 2)
		if b[i+1] != 'u' || !ok {
			out = append(out, '\\')
			i++
			continue
		}
		i += 6
		if utf16.IsSurrogate(r) {
			r2, ok := u4(i + 2)
			if ok && b[i] == '\\' && b[i+1] == 'u' {
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					out = utf8.AppendRune(out, d)
					i += 6
					continue
				}
			}
			r = utf8.RuneError
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}

// TestLargeOrders plants keywords at random places of large realistic
// bodies, raw and escaped, where the prefilter keeps to its passes.
func TestLargeOrders(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	bodies := [][]byte{orderBody(200<<10, false), orderBody(200<<10, true)}
	for iter := range 40 {
		body := bytes.Clone(bodies[iter%2])
		keywords := absentKeywords[:1+rng.IntN(len(absentKeywords))]
		for range rng.IntN(3) {
			kw := keywords[rng.IntN(len(keywords))]
			if rng.IntN(2) == 0 {
				kw = string(bytes.ToUpper([]byte(kw)))
			}
			at := rng.IntN(len(body) - len(kw))
			copy(body[at:], kw)
		}
		ignoreCase := iter%3 == 0
		checkOracle(t, iter, keywords, ignoreCase, body, rng, 64<<10)
	}
}

// checkOracle compiles keywords and checks that Match, and a Scanner fed
// body in random pieces of up to maxPiece bytes, agree with the oracle.
func checkOracle(t *testing.T, iter int, keywords []string, ignoreCase bool, body []byte, rng *rand.Rand, maxPiece int) {
	t.Helper()
	m, err := Compile(keywords, ignoreCase)
	if err != nil {
		t.Fatal(err)
	}
	wantKW, wantOK := oracleMatch(keywords, ignoreCase, body)
	if kw, ok := m.Match(body); kw != wantKW || ok != wantOK {
		t.Fatalf("iter %d: Match = %d, %v; oracle %d, %v", iter, kw, ok, wantKW, wantOK)
	}
	var s Scanner
	s.Reset(m)
	for rest := body; len(rest) > 0; {
		c := min(len(rest), 1+rng.IntN(maxPiece))
		s.Write(rest[:c])
		rest = rest[c:]
	}
	if kw, ok := s.Result(); kw != wantKW || ok != wantOK {
		t.Fatalf("iter %d: Scanner = %d, %v; oracle %d, %v", iter, kw, ok, wantKW, wantOK)
	}
}

// TestConcurrent shares one Matcher among goroutines that each match
// bodies with Match and with a Scanner of their own, large ones included so
// that pooled plans and decoders are taken and returned concurrently; run
// with -race.
func TestConcurrent(t *testing.T) {
	keywords := append([]string{"Refund", "退货", "🚨"}, absentKeywords[:7]...)
	m, err := Compile(keywords, true)
	if err != nil {
		t.Fatal(err)
	}
	raw, escaped := orderBody(100<<10, false), orderBody(100<<10, true)
	bodies := [][]byte{
		[]byte(`{"a":"refund"}`),
		[]byte(`{"a":"\u9000\u8d27"}`),
		[]byte(`{"a":"\ud83d\udea8"}`),
		[]byte(`{"a":"none"}`),
		raw,
		escaped,
		append(bytes.Clone(raw[:len(raw)-2]), `"REFUND"]`...),
		append(bytes.Clone(escaped[:len(escaped)-2]), `"\ud83d\udea8"]`...),
	}
	want := make([]int, len(bodies))
	for i, body := range bodies {
		want[i], _ = oracleMatch(keywords, true, body)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			var s Scanner
			for round := range 4 {
				for i := range bodies {
					i := (i + g + round) % len(bodies)
					body := bodies[i]
					if kw, _ := m.Match(body); kw != want[i] {
						errs <- fmt.Sprintf("goroutine %d body %d: Match = %d, want %d", g, i, kw, want[i])
						return
					}
					s.Reset(m)
					piece := 1 + (g*977+round*31)%(8<<10)
					for rest := body; len(rest) > 0; rest = rest[min(piece, len(rest)):] {
						s.Write(rest[:min(piece, len(rest))])
					}
					if kw, _ := s.Result(); kw != want[i] {
						errs <- fmt.Sprintf("goroutine %d body %d: Scanner = %d, want %d", g, i, kw, want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestEscapeSplits checks Match against the oracle, and the Scanner fed in
// three pieces cut at every pair of places, on short bodies made of
// escapes valid and malformed (surrogate pairs, lone and cut ones, bad
// hex digits, a trailing backslash) among bytes that look like their
// parts, with keywords drawn from the body and its decoded text: they
// overlap, share prefixes, hold quotes, backslashes, controls and UTF-8,
// and are cut inside escapes such as \u00e9 after "\u0".
func TestEscapeSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	tokens := []string{
		`\u00e9`, `\u00C9`, `\ud83d\udea8`, `\uD83D\uDEA8`, `\ud83d`, `\udea8`, `\ud83d\u0041`,
		`\u0`, `\uZ041`, `\u00G9`, `\"`, `\\`, `\/`, `\n`, `\u0000`, `\q`, `\`,
		"a", "A", "é", "É", `"`, "u", "0", "d", "\n", "🚨",
	}
	iters := 6000
	if testing.Short() {
		iters = 600
	}
	for iter := range iters {
		var body []byte
		for range rng.IntN(8) {
			body = append(body, tokens[rng.IntN(len(tokens))]...)
		}
		texts := [][]byte{body, oracleUnescape(body)}
		var keywords []string
		for range 1 + rng.IntN(4) {
			text := texts[rng.IntN(2)]
			if len(text) == 0 {
				keywords = append(keywords, tokens[rng.IntN(len(tokens))])
				continue
			}
			s := rng.IntN(len(text))
			keywords = append(keywords, string(text[s:s+1+rng.IntN(min(12, len(text)-s))]))
		}
		ignoreCase := iter%3 == 0
		m, err := Compile(keywords, ignoreCase)
		if err != nil {
			t.Fatal(err)
		}
		wantKW, wantOK := oracleMatch(keywords, ignoreCase, body)
		if kw, ok := m.Match(body); kw != wantKW || ok != wantOK {
			t.Fatalf("Match(%q) with %q, ignoreCase %v = %d, %v; oracle %d, %v", body, keywords, ignoreCase, kw, ok, wantKW, wantOK)
		}
		var s Scanner
		for i := 0; i <= len(body); i++ {
			for j := i; j <= len(body); j++ {
				s.Reset(m)
				s.Write(body[:i])
				s.Write(body[i:j])
				s.Write(body[j:])
				if kw, ok := s.Result(); kw != wantKW || ok != wantOK {
					t.Fatalf("Scanner(%q cut at %d and %d) with %q, ignoreCase %v = %d, %v; oracle %d, %v",
						body, i, j, keywords, ignoreCase, kw, ok, wantKW, wantOK)
				}
			}
		}
	}
}
