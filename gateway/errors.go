package gateway

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

// Code is a result code of the contract (SPEC §3). Codes 800004404,
// 800004405, 800005653 and 800005660 are hookgate's own; the rest are the
// seed's.
type Code int

// The codes of SPEC §3, in check order.
const (
	CodeOK               Code = 0
	CodeMethodNotAllowed Code = 800004405
	CodeNotFound         Code = 800004404
	CodeDisabled         Code = 800004509
	CodeIPNotAllowed     Code = 800005650
	CodeCredential       Code = 800005649
	CodeLoop             Code = 800005646
	CodeTooLarge         Code = 800005647
	CodeRateLimited      Code = 800005652
	CodeInvalidJSON      Code = 800006003
	CodeInFlight         Code = 800005653
	CodeUnavailable      Code = 800005660
)

// Refusal is the answer to a request that failed a check: the code, the
// HTTP status and the exact message of SPEC §3, and the response body
// rendered once. It is the only place that spells a code, status or
// message; everything else refers to a Refusal by name.
type Refusal struct {
	Code   Code
	Status int
	Msg    string
	// body is the whole response body, {"msg":…,"data":{},"code":…}.
	body []byte
	// slot is the refusal's outcome counter (see the refusals table).
	slot int
}

// Error returns the refusal's message, so a Refusal can travel as an error.
func (r *Refusal) Error() string { return r.Msg }

// Body returns the rendered response body. The slice is shared and must not
// be modified.
func (r *Refusal) Body() []byte { return r.body }

func newRefusal(code Code, status int, msg string) *Refusal {
	r := &Refusal{Code: code, Status: status, Msg: msg}
	b := append([]byte(nil), `{"msg":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"data":{},"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	r.body = append(b, '}')
	return r
}

// The refusals of SPEC §3. Rows 11 and 12 answer code 0 and are rendered by
// the accept path.
var (
	ErrMethod      = newRefusal(CodeMethodNotAllowed, fasthttp.StatusMethodNotAllowed, "method not allowed")
	ErrNotFound    = newRefusal(CodeNotFound, fasthttp.StatusNotFound, "webhook not found")
	ErrDisabled    = newRefusal(CodeDisabled, fasthttp.StatusForbidden, "webhook trigger workflow is disabled")
	ErrIPNotAllow  = newRefusal(CodeIPNotAllowed, fasthttp.StatusForbidden, "IP not in the allow-list — please check")
	ErrCredential  = newRefusal(CodeCredential, fasthttp.StatusUnauthorized, "Credential check failed")
	ErrLoop        = newRefusal(CodeLoop, fasthttp.StatusLoopDetected, "HTTP node calls itself, causing a loop — change the HTTP node URL")
	ErrTooLarge    = newRefusal(CodeTooLarge, fasthttp.StatusRequestEntityTooLarge, "Request body too large — please reduce")
	ErrRateLimited = newRefusal(CodeRateLimited, fasthttp.StatusTooManyRequests, "Too many requests — try again later")
	ErrInvalidJSON = newRefusal(CodeInvalidJSON, fasthttp.StatusBadRequest, "Body doesn't match JSON spec — please fix and retry")
	ErrInFlight    = newRefusal(CodeInFlight, fasthttp.StatusConflict, "a request with this Client-Token is in progress — retry later")
	ErrUnavailable = newRefusal(CodeUnavailable, fasthttp.StatusServiceUnavailable, "flow engine unavailable — retry later")
)

// refusals lists every Refusal once, for metrics (a slot each, in this
// order), tests and documentation.
var refusals = [...]*Refusal{ErrMethod, ErrNotFound, ErrDisabled, ErrIPNotAllow, ErrCredential,
	ErrLoop, ErrTooLarge, ErrRateLimited, ErrInvalidJSON, ErrInFlight, ErrUnavailable}

func init() {
	for i, r := range refusals {
		r.slot = slotRefusals + i
	}
}

// failure reports whether a refusal's code says the gateway failed to do
// its part (the flow engine or the state store did not answer, or a
// panic) rather than refusing the request on its merits. The loop
// guard's 508 is a refusal, for all its 5xx status.
func failure(c Code) bool { return c == CodeUnavailable }

// Bodies of the code-0 answers that carry no event id.
var (
	bodyKeywordMiss = []byte(`{"msg":"","data":{"triggered":false},"code":0}`)
	bodyDuplicate   = []byte(`{"msg":"","data":{"triggered":false,"duplicate":true},"code":0}`)
)

// appendAccepted appends the body of a triggered answer.
func appendAccepted(dst, eventID []byte) []byte {
	dst = append(dst, `{"msg":"","data":{"triggered":true,"event_id":"`...)
	dst = append(dst, eventID...)
	return append(dst, `"},"code":0}`...)
}
