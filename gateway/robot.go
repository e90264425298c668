package gateway

import "github.com/hookgate/hookgate/matcher"

// robotMsgType returns the DingTalk custom-robot message type body has
// (SPEC §4: text, markdown, link, actionCard, feedCard, each with its
// required fields present as non-empty strings), or "" when body is not
// such a message. body must be valid JSON (validJSON).
//
// It reads the body where it lies and allocates nothing: a body may be
// as large as max_body_bytes, and a parse tree of 4 MiB of small values
// took a thousand times that, kept by the parser for the next one.
func robotMsgType(body []byte) string {
	v := body[skipJSONSpace(body, 0):]
	if len(v) == 0 || v[0] != '{' {
		return ""
	}
	mt := jsonGet(v, "msgtype")
	switch {
	case jsonStringIs(mt, "text"):
		if hasStrings(jsonGet(v, "text"), "content") {
			return "text"
		}
	case jsonStringIs(mt, "markdown"):
		if hasStrings(jsonGet(v, "markdown"), "title", "text") {
			return "markdown"
		}
	case jsonStringIs(mt, "link"):
		if hasStrings(jsonGet(v, "link"), "title", "text", "messageUrl") {
			return "link"
		}
	case jsonStringIs(mt, "actionCard"):
		c := jsonGet(v, "actionCard")
		if !hasStrings(c, "title", "text") {
			return ""
		}
		if hasStrings(c, "singleTitle", "singleURL") || allHave(jsonGet(c, "btns"), "title", "actionURL") {
			return "actionCard"
		}
	case jsonStringIs(mt, "feedCard"):
		if allHave(jsonGet(jsonGet(v, "feedCard"), "links"), "title", "messageURL", "picURL") {
			return "feedCard"
		}
	}
	return ""
}

// hasStrings reports whether o is an object whose keys are all non-empty
// strings.
func hasStrings(o []byte, keys ...string) bool {
	if len(o) == 0 || o[0] != '{' {
		return false
	}
	for _, k := range keys {
		// A string is empty when nothing is between its quotes: an
		// escape always stands for at least one byte.
		if f := jsonGet(o, k); len(f) <= 2 || f[0] != '"' {
			return false
		}
	}
	return true
}

// allHave reports whether items is a non-empty array and each item has
// the keys.
func allHave(items []byte, keys ...string) bool {
	if len(items) == 0 || items[0] != '[' {
		return false
	}
	i := skipJSONSpace(items, 1)
	if i >= len(items) || items[i] == ']' {
		return false
	}
	for {
		end := jsonValueEnd(items, i)
		if end < 0 || !hasStrings(items[i:end], keys...) {
			return false
		}
		i = skipJSONSpace(items, end)
		if i >= len(items) || items[i] != ',' {
			return true
		}
		i = skipJSONSpace(items, i+1)
	}
}

// jsonGet returns the value of the first member of the object o whose
// key, unescaped, is key; nil when o is not an object or has no such
// member. o is one valid JSON value, and so is what it returns.
func jsonGet(o []byte, key string) []byte {
	if len(o) == 0 || o[0] != '{' {
		return nil
	}
	i := skipJSONSpace(o, 1)
	for i < len(o) && o[i] == '"' {
		kEnd := skipJSONString(o, i+1)
		if kEnd < 0 {
			return nil
		}
		k := o[i:kEnd]
		i = skipJSONSpace(o, kEnd)
		if i >= len(o) || o[i] != ':' {
			return nil
		}
		i = skipJSONSpace(o, i+1)
		end := jsonValueEnd(o, i)
		if end < 0 {
			return nil
		}
		if jsonStringIs(k, key) {
			return o[i:end]
		}
		i = skipJSONSpace(o, end)
		if i >= len(o) || o[i] != ',' {
			return nil
		}
		i = skipJSONSpace(o, i+1)
	}
	return nil
}

// jsonValueEnd returns the index after the valid JSON value that starts
// at b[i], or -1 when there is none.
func jsonValueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipJSONString(b, i+1)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = skipJSONString(b, i+1); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default: // a number or a literal
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// jsonStringIs reports whether v is a JSON string literal that stands
// for want, which is ASCII: its escapes are decoded, and one that stands
// for a character outside ASCII matches nothing.
func jsonStringIs(v []byte, want string) bool {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false
	}
	s := v[1 : len(v)-1]
	for len(s) > 0 {
		c := s[0]
		s = s[1:]
		if c == '\\' {
			if len(s) == 0 {
				return false
			}
			c, s = s[0], s[1:]
			if c == 'u' {
				if len(s) < 4 || s[0] != '0' || s[1] != '0' || !isHex(s[2]) || !isHex(s[3]) || unhex(s[2]) > 7 {
					return false // outside ASCII, or not an escape
				}
				c, s = unhex(s[2])<<4|unhex(s[3]), s[4:]
			} else if c = matcher.ShortEscape(c); c == 0 {
				return false // not an escape
			}
		}
		if len(want) == 0 || want[0] != c {
			return false
		}
		want = want[1:]
	}
	return len(want) == 0
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
