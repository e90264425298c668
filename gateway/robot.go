package gateway

import (
	"github.com/valyala/fastjson"
)

// robotParsers parse text-format bodies to recognise DingTalk robot
// messages; a Parser reuses its memory, so steady-state parsing does not
// allocate.
var robotParsers fastjson.ParserPool

// robotMsgType returns the DingTalk custom-robot message type body has
// (SPEC §4: text, markdown, link, actionCard, feedCard, each with its
// required fields present as non-empty strings), or "" when body is not
// such a message. body must be valid JSON.
func robotMsgType(body []byte) string {
	p := robotParsers.Get()
	defer robotParsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil || v.Type() != fastjson.TypeObject {
		return ""
	}
	switch b2s(v.GetStringBytes("msgtype")) {
	case "text":
		if hasStrings(v.Get("text"), "content") {
			return "text"
		}
	case "markdown":
		if hasStrings(v.Get("markdown"), "title", "text") {
			return "markdown"
		}
	case "link":
		if hasStrings(v.Get("link"), "title", "text", "messageUrl") {
			return "link"
		}
	case "actionCard":
		c := v.Get("actionCard")
		if !hasStrings(c, "title", "text") {
			return ""
		}
		if hasStrings(c, "singleTitle", "singleURL") || allHave(c.GetArray("btns"), "title", "actionURL") {
			return "actionCard"
		}
	case "feedCard":
		if allHave(v.GetArray("feedCard", "links"), "title", "messageURL", "picURL") {
			return "feedCard"
		}
	}
	return ""
}

// hasStrings reports whether o is an object whose keys are all non-empty
// strings.
func hasStrings(o *fastjson.Value, keys ...string) bool {
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

// allHave reports whether items is non-empty and each item has the keys.
func allHave(items []*fastjson.Value, keys ...string) bool {
	if len(items) == 0 {
		return false
	}
	for _, it := range items {
		if !hasStrings(it, keys...) {
			return false
		}
	}
	return true
}
