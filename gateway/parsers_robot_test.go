package gateway

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

// TestRobotMsgTypeLargeBodyMemory: reading the message type of a text
// body as large as max_body_bytes (4 MiB) takes memory independent of
// its size. A parse tree of 4 MiB of small values ("[0,0,…]") takes
// hundreds of times the body; kept in a pool, it stays after the event.
func TestRobotMsgTypeLargeBodyMemory(t *testing.T) {
	const size = 4 << 20
	head := `{"msgtype":"text","text":{"content":"hi"},"x":[`
	body := append([]byte(head), bytes.Repeat([]byte("0,"), (size-len(head)-3)/2)...)
	body = append(body, "0]}"...)
	if !validJSON(body) {
		t.Fatal("the test body is not valid JSON")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC() // twice: pools drop what they held
	runtime.ReadMemStats(&before)
	got := robotMsgType(body)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got != "text" {
		t.Fatalf("robotMsgType = %q, want text", got)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("reading a %d-byte body allocated %d MiB", len(body), n>>20)
	}
	if after.HeapAlloc > before.HeapAlloc && after.HeapAlloc-before.HeapAlloc > 1<<20 {
		t.Errorf("reading a %d-byte body left %d MiB on the heap", len(body), (after.HeapAlloc-before.HeapAlloc)>>20)
	}
}

// robotMsgTypeTree is robotMsgType by a parse tree (fastjson's), as the
// oracle: slow and memory-hungry, but obviously what SPEC §4 says.
func robotMsgTypeTree(body []byte) (string, bool) {
	var p fastjson.Parser
	v, err := p.ParseBytes(body)
	if err != nil {
		return "", false // nested deeper than fastjson goes
	}
	if v.Type() != fastjson.TypeObject {
		return "", true
	}
	has := func(o *fastjson.Value, keys ...string) bool {
		if o == nil || o.Type() != fastjson.TypeObject {
			return false
		}
		for _, k := range keys {
			f := o.Get(k)
			if f == nil || f.Type() != fastjson.TypeString || len(f.GetStringBytes()) == 0 {
				return false
			}
		}
		return true
	}
	all := func(items []*fastjson.Value, keys ...string) bool {
		if len(items) == 0 {
			return false
		}
		for _, it := range items {
			if !has(it, keys...) {
				return false
			}
		}
		return true
	}
	switch mt := string(v.GetStringBytes("msgtype")); mt {
	case "text":
		if has(v.Get("text"), "content") {
			return mt, true
		}
	case "markdown":
		if has(v.Get("markdown"), "title", "text") {
			return mt, true
		}
	case "link":
		if has(v.Get("link"), "title", "text", "messageUrl") {
			return mt, true
		}
	case "actionCard":
		c := v.Get("actionCard")
		if has(c, "title", "text") && (has(c, "singleTitle", "singleURL") || all(c.GetArray("btns"), "title", "actionURL")) {
			return mt, true
		}
	case "feedCard":
		if all(v.GetArray("feedCard", "links"), "title", "messageURL", "picURL") {
			return mt, true
		}
	}
	return "", true
}

// TestRobotMsgTypeSpellings: keys and values spelled with escapes, in
// any order, with space around every token, repeated (the first counts),
// beside values of every kind, and under deep nesting.
func TestRobotMsgTypeSpellings(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		if !validJSON([]byte(body)) {
			t.Fatalf("not valid JSON: %s", body)
		}
		if got := robotMsgType([]byte(body)); got != want {
			t.Errorf("robotMsgType(%s) = %q, want %q", body, got, want)
		}
		if tree, ok := robotMsgTypeTree([]byte(body)); ok && tree != want {
			t.Errorf("the parse tree of %s says %q, the test %q", body, tree, want)
		}
	}
	f(` { "msgtype" : "text" , "text" : { "content" : "hi" } } `, "text")
	f("\t\r\n{\"msgtype\":\"text\",\n\"text\":{\"content\":\"hi\"}}\n", "text")
	f(`{"text":{"content":"hi"},"msgtype":"text"}`, "text")
	f(`{"\u006dsgtype":"\u0074ext","te\u0078t":{"co\u006Etent":"hi"}}`, "text")
	f(`{"msgtype":"t\u0065xt","text":{"content":"\u00e9"}}`, "text")
	f(`{"msgtype":"text","text":{"content":"\u0000"}}`, "text")
	f(`{"msgtype":"te\/xt","text":{"content":"hi"}}`, "")
	f(`{"msgtype":"text\u0000","text":{"content":"hi"}}`, "")
	f(`{"msgtype":"\u0174ext","text":{"content":"hi"}}`, "")
	f(`{"msgtype":"tex","text":{"content":"hi"}}`, "")
	f(`{"msgtype":"texts","text":{"content":"hi"}}`, "")
	f(`{"msgtype":"TEXT","text":{"content":"hi"}}`, "")
	f(`{"msgtype":"text","msgtype":"link","text":{"content":"hi"}}`, "text")
	f(`{"msgtype":"text","text":{"content":""},"text":{"content":"hi"}}`, "")
	f(`{"msgtype":"text","text":{"content":["hi"]}}`, "")
	f(`{"msgtype":"text","text":{"content":1}}`, "")
	f(`{"msgtype":"text","text":"content"}`, "")
	f(`{"a":{"msgtype":"x"},"b":[1,"]",{"c":"}"}],"d":-1.5e3,"e":null,"f":true,"msgtype":"text","text":{"x":{"content":""},"content":"a\"b"}}`, "text")
	f(`{"msgtype":"feedCard","feedCard":{"links":[ {"title":"a","messageURL":"u","picURL":"p"} , {"title":"b","messageURL":"u","picURL":"p"} ]}}`, "feedCard")
	f(`{"msgtype":"feedCard","feedCard":{"links":[{"title":"a","messageURL":"u","picURL":"p"},{}]}}`, "")
	f(`{"msgtype":"feedCard","feedCard":{"links":[{"title":"a","messageURL":"u","picURL":"p"},1]}}`, "")
	f(`{"msgtype":"feedCard","feedCard":{"links":{"title":"a","messageURL":"u","picURL":"p"}}}`, "")
	f(`{"msgtype":"actionCard","actionCard":{"title":"t","text":"x","btns":[{"title":"a","actionURL":"u"}],"singleTitle":""}}`, "actionCard")
	f(`{"msgtype":"actionCard","actionCard":{"title":"t","text":"x","btns":"no"}}`, "")
	f(`"msgtype"`, "")
	f(`[]`, "")
	f(`{}`, "")
	f(`1`, "")
	// Nested deeper than a parse tree goes, beside a whole message.
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	f(`{"x":`+deep+`,"msgtype":"markdown","markdown":{"title":"t","text":"x"}}`, "markdown")
}

// FuzzRobotMsgTypeTree checks robotMsgType against the parse tree on
// any valid body.
func FuzzRobotMsgTypeTree(f *testing.F) {
	for _, b := range seedBodies(f) {
		f.Add(b)
	}
	for _, s := range []string{
		`{"msgtype":"text","text":{"content":"hi"}}`,
		`{"\u006dsgtype":"link","link":{"title":"t","text":"x","messageUrl":"u"}}`,
		`{"msgtype":"actionCard","actionCard":{"title":"t","text":"x","btns":[{"title":"a","actionURL":"u"}]}}`,
		`{"msgtype":"feedCard","feedCard":{"links":[{"title":"a","messageURL":"u","picURL":"p"}]}}`,
		`{"msgtype":"markdown","markdown":{"title":"t","text":"x"},"a":[1,{"b":"]}"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !validJSON(body) {
			return
		}
		want, ok := robotMsgTypeTree(body)
		if got := robotMsgType(body); ok && got != want {
			t.Fatalf("robotMsgType(%q) = %q, the parse tree says %q", body, got, want)
		}
	})
}

// TestRobotMsgTypeAllocs: no allocation, for a small message or a large
// body.
func TestRobotMsgTypeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	small := []byte(`{"msgtype":"feedCard","feedCard":{"links":[{"title":"a","messageURL":"u","picURL":"p"}]}}`)
	large := append([]byte(`{"x":[`), bytes.Repeat([]byte(`{"a":"b\"c"},`), 1<<14)...)
	large = append(large, `1],"msgtype":"text","text":{"content":"hi"}}`...)
	for _, b := range [][]byte{small, large} {
		if allocs := testing.AllocsPerRun(20, func() { robotMsgType(b) }); allocs != 0 {
			t.Errorf("%.0f allocations for a %d-byte body", allocs, len(b))
		}
	}
}
