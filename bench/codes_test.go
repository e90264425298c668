package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestCode(t *testing.T) {
	f := func(body string, want int64, wantOK bool) {
		t.Helper()
		got, ok := Code([]byte(body))
		if got != want || ok != wantOK {
			t.Errorf("Code(%q) = %d, %v; want %d, %v", body, got, ok, want, wantOK)
		}
	}
	f(`{"msg":"","data":{"triggered":true,"event_id":"0190"},"code":0}`, 0, true)
	f(`{"msg":"webhook not found","data":{},"code":800004404}`, 800004404, true)
	f(`{"msg":"Too many requests — try again later","data":{},"code":800005652}`, 800005652, true)
	f(`{"code": 42}`, 42, true)
	f("{\"code\":\n\t7}", 7, true)
	f(`{"code":-1}`, -1, true)
	// The last "code": wins: a msg holding the text cannot mislead it.
	f(`{"msg":"\"code\":5","data":{},"code":800006003}`, 800006003, true)
	f(`{"code":"x"}`, 0, false)
	f(`{"code":}`, 0, false)
	f(`{"code":`, 0, false)
	f(`{"msg":""}`, 0, false)
	f(``, 0, false)
	f(`{"code":99999999999999999999}`, 999999999999999999, true) // 18 digits at most
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want ErrorKind
	}{
		{fasthttp.ErrTimeout, ErrTimeout},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, ErrRefused},
		{fasthttp.ErrConnectionClosed, ErrClosed},
		{io.EOF, ErrClosed},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, ErrClosed},
		{fmt.Errorf("write: %w", syscall.EPIPE), ErrClosed},
		{errors.New("something else"), ErrOther},
	}
	for _, tc := range tests {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func TestCounts(t *testing.T) {
	var a, b Counts
	a.Answer(200, []byte(`{"code":0}`))
	a.Answer(200, []byte(`{"code":0}`))
	a.Answer(404, []byte(`{"code":800004404}`))
	b.Answer(200, nil)
	b.Answer(429, []byte(`{"code":800005652}`))
	b.Error(fasthttp.ErrTimeout)
	b.Error(io.EOF)
	for i := range maxCodes + 2 { // past the tracked codes: "other"
		b.Answer(400, fmt.Appendf(nil, `{"code":%d}`, 1000+i))
	}
	a.Merge(&b)
	if a.Answers() != 5+maxCodes+2 {
		t.Fatalf("answers %d", a.Answers())
	}
	codes := a.Codes()
	if codes["0"] != 2 || codes["800004404"] != 1 || codes["800005652"] != 1 || codes["none"] != 1 {
		t.Fatalf("codes %v", codes)
	}
	// 3 codes came first, so 13 of the 18 new ones fit and 5 are "other".
	if codes["other"] != 5 {
		t.Fatalf("other %d, codes %v", codes["other"], codes)
	}
	st := a.Status()
	if st["200"] != 3 || st["404"] != 1 || st["429"] != 1 || st["400"] != maxCodes+2 {
		t.Fatalf("status %v", st)
	}
	errs, ex := a.ErrorKinds()
	if a.Errors() != 2 || errs["timeout"] != 1 || errs["closed"] != 1 || ex["timeout"] == "" {
		t.Fatalf("errors %v %v", errs, ex)
	}
}
