package gateway

import (
	"net/netip"
	"time"
)

// receivedAtLayout is RFC 3339 in UTC with milliseconds (SPEC §7).
const receivedAtLayout = "2006-01-02T15:04:05.000Z07:00"

// appendEvent appends the event envelope of SPEC §7 for an accepted
// request to dst:
//
//	{"event_id","table","automation","received_at","format","keyword",
//	 "client_token","source_ip","loop","params"[,"robot_msgtype"]}
//
// body must be valid JSON (validJSON). The envelope is one line: a json
// body is embedded as it came with its line breaks turned into spaces, a
// text body as one escaped string.
func (g *Gateway) appendEvent(dst []byte, st *reqState, r *route, now time.Time, kw int,
	clientToken []byte, client netip.Addr, loopIn, body []byte) []byte {
	dst = append(dst, `{"event_id":"`...)
	dst = append(dst, st.eventID...)
	dst = append(dst, r.head...)
	dst = now.UTC().AppendFormat(dst, receivedAtLayout)
	dst = append(dst, `","format":`...)
	dst = append(dst, r.formatJSON...)
	dst = append(dst, `,"keyword":`...)
	if kw >= 0 {
		dst = append(dst, r.keywordsJSON[kw]...)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"client_token":`...)
	if len(clientToken) > 0 {
		dst = appendJSONBytes(dst, clientToken)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"source_ip":"`...)
	dst = client.AppendTo(dst)
	dst = append(dst, `","loop":[`...)
	forEachID(loopIn, func(id []byte) {
		dst = appendJSONBytes(dst, id)
		dst = append(dst, ',')
	})
	dst = appendJSONBytes(dst, r.loopSelf)
	dst = append(dst, `],"params":`...)
	robot := ""
	switch r.format {
	case "json":
		dst = appendOneLine(dst, body)
	case "text":
		dst = appendJSONBytes(dst, body)
		robot = robotMsgType(body)
	default:
		dst = append(dst, "null"...)
	}
	if robot != "" {
		dst = append(dst, `,"robot_msgtype":`...)
		dst = appendJSONString(dst, robot)
	}
	return append(dst, '}')
}
