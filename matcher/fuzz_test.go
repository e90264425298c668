package matcher

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// fuzzKeywords turns fuzz input into at most MaxKeywords valid keywords:
// the NUL-separated parts of blob, then, picked by pick, substrings of the
// body and of its decoded text, so that keywords often occur.
func fuzzKeywords(body, blob []byte, pick uint64) []string {
	var keywords []string
	for _, p := range bytes.Split(blob, []byte{0}) {
		if len(p) > 0 && len(keywords) < MaxKeywords {
			keywords = append(keywords, string(p[:min(len(p), MaxKeywordLen)]))
		}
	}
	texts := [][]byte{body, oracleUnescape(body)}
	for i := 0; pick != 0 && len(keywords) < MaxKeywords; i++ {
		text := texts[i%2]
		if len(text) > 0 {
			start := int(pick % uint64(len(text)))
			n := 1 + int(pick>>8%16)
			keywords = append(keywords, string(text[start:min(len(text), start+n)]))
		}
		pick >>= 13
	}
	return keywords
}

// fuzzSeeds adds the testdata payloads, with keywords that occur in them
// (raw, escaped or across both) and keywords that do not.
func fuzzSeeds(f *testing.F, add func(body, blob []byte, ignoreCase bool, pick uint64)) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no testdata: %v", err)
	}
	blobs := []string{
		"新品\x00PAID\x00急用",
		"发布通知\x00prod\x00@150",
		"支付网关\x00🚨\x00https://wiki\x00say \"hi\"",
		"refund\x00退款\x00P0",
		"\"\x00e\x00:",
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for i, blob := range blobs {
			add(body, []byte(blob), i%2 == 0, uint64(i)*0x9e3779b97f4a7c15)
		}
	}
	add([]byte(`{"a":"\ud83d\udea8\ud800\u0041\\\"\/"}`), []byte("A\x00\\"), true, 0)
	add([]byte(`\u65b0\u54c`), []byte("新\x00\\u54c"), false, 0)
	// Malformed \u escapes, kept as they are: the decoded text holds none
	// of these keywords.
	add([]byte(`{"a":"x\uZ041 \n\uu9b0 \u00G9"}`), []byte("xA\x00\n\u09b0\x00\u00e9"), false, 0)
}

func FuzzMatch(f *testing.F) {
	fuzzSeeds(f, func(body, blob []byte, ignoreCase bool, pick uint64) {
		f.Add(body, blob, ignoreCase, pick)
	})
	f.Fuzz(func(t *testing.T, body, blob []byte, ignoreCase bool, pick uint64) {
		keywords := fuzzKeywords(body, blob, pick)
		m, err := Compile(keywords, ignoreCase)
		if err != nil {
			t.Fatalf("Compile(%q): %v", keywords, err)
		}
		wantKW, wantOK := oracleMatch(keywords, ignoreCase, body)
		if kw, ok := m.Match(body); kw != wantKW || ok != wantOK {
			t.Fatalf("Match(%q) with %q, ignoreCase %v = %d, %v; oracle %d, %v",
				body, keywords, ignoreCase, kw, ok, wantKW, wantOK)
		}
	})
}

// FuzzScanner writes the body in random pieces and compares the Scanner's
// result with Match's.
func FuzzScanner(f *testing.F) {
	fuzzSeeds(f, func(body, blob []byte, ignoreCase bool, pick uint64) {
		f.Add(body, blob, ignoreCase, pick, pick^0xff)
	})
	f.Fuzz(func(t *testing.T, body, blob []byte, ignoreCase bool, pick, cuts uint64) {
		keywords := fuzzKeywords(body, blob, pick)
		m, err := Compile(keywords, ignoreCase)
		if err != nil {
			t.Fatalf("Compile(%q): %v", keywords, err)
		}
		wantKW, wantOK := m.Match(body)
		rng := rand.New(rand.NewPCG(cuts, 0))
		var s Scanner
		s.Reset(m)
		var pieces []int
		for rest := body; len(rest) > 0; {
			n := min(len(rest), rng.IntN(1+rng.IntN(16+len(body))))
			pieces = append(pieces, n)
			s.Write(rest[:n])
			rest = rest[n:]
		}
		if kw, ok := s.Result(); kw != wantKW || ok != wantOK {
			t.Fatalf("Scanner(%q in pieces %v) with %q, ignoreCase %v = %d, %v; Match %d, %v",
				body, pieces, keywords, ignoreCase, kw, ok, wantKW, wantOK)
		}
	})
}
