package bench

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/valyala/fasthttp"
)

var codeKey = []byte(`"code":`)

// Code returns the value of the "code" field of a gateway answer such as
// {"msg":"","data":{},"code":800004404}. It is a search, not a parse: the
// last `"code":` in body wins (the gateway writes code as the last key, so a
// msg that happened to hold the text cannot mislead it), whitespace after
// the colon is skipped and an optional '-' and digits are read. ok is false
// when there is no such field or no number after it.
func Code(body []byte) (code int64, ok bool) {
	i := bytes.LastIndex(body, codeKey)
	if i < 0 {
		return 0, false
	}
	b := body[i+len(codeKey):]
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	n := 0
	for n < len(b) && n < 18 && b[n] >= '0' && b[n] <= '9' {
		code = code*10 + int64(b[n]-'0')
		n++
	}
	if n == 0 {
		return 0, false
	}
	if neg {
		code = -code
	}
	return code, true
}

// ErrorKind classifies a failed request.
type ErrorKind int

// Error kinds, as the report names them.
const (
	ErrTimeout ErrorKind = iota // no answer within the timeout
	ErrRefused                  // connection refused
	ErrClosed                   // connection closed or reset mid-request
	ErrOther
	numErrorKinds
)

var errorKindNames = [numErrorKinds]string{"timeout", "refused", "closed", "other"}

func (k ErrorKind) String() string { return errorKindNames[k] }

// Classify names the kind of a request error.
func Classify(err error) ErrorKind {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, fasthttp.ErrDialTimeout), errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return ErrClosed
	}
	return ErrOther
}

// maxCodes is how many distinct answer codes a Counts tracks; more are
// summed under "other". A scenario sees one to five.
const maxCodes = 16

// Counts tallies answers by HTTP status and answer code, and errors by
// kind, in fixed memory: counting does not allocate. Not safe for
// concurrent use; Merge per-goroutine Counts afterwards.
type Counts struct {
	status [600]uint64
	codes  [maxCodes]struct {
		code int64
		n    uint64
	}
	nCodes     int
	otherCodes uint64
	noCode     uint64
	errs       [numErrorKinds]uint64
	// firstErr keeps one error message per kind for the report.
	firstErr [numErrorKinds]string
}

// Answer counts one answer with its status and body.
func (c *Counts) Answer(status int, body []byte) {
	if status >= 0 && status < len(c.status) {
		c.status[status]++
	} else {
		c.status[0]++
	}
	code, ok := Code(body)
	if !ok {
		c.noCode++
		return
	}
	c.addCode(code, 1)
}

func (c *Counts) addCode(code int64, n uint64) {
	for i := 0; i < c.nCodes; i++ {
		if c.codes[i].code == code {
			c.codes[i].n += n
			return
		}
	}
	if c.nCodes == maxCodes {
		c.otherCodes += n
		return
	}
	c.codes[c.nCodes].code, c.codes[c.nCodes].n = code, n
	c.nCodes++
}

// Error counts one failed request.
func (c *Counts) Error(err error) {
	k := Classify(err)
	c.errs[k]++
	if c.firstErr[k] == "" {
		c.firstErr[k] = err.Error()
	}
}

// Merge adds o's tallies to c.
func (c *Counts) Merge(o *Counts) {
	for i, n := range o.status {
		c.status[i] += n
	}
	for i := 0; i < o.nCodes; i++ {
		c.addCode(o.codes[i].code, o.codes[i].n)
	}
	c.otherCodes += o.otherCodes
	c.noCode += o.noCode
	for i, n := range o.errs {
		c.errs[i] += n
		if c.firstErr[i] == "" {
			c.firstErr[i] = o.firstErr[i]
		}
	}
}

// Answers is the number of answered requests.
func (c *Counts) Answers() uint64 {
	var n uint64
	for _, v := range c.status {
		n += v
	}
	return n
}

// Errors is the number of failed requests.
func (c *Counts) Errors() uint64 {
	var n uint64
	for _, v := range c.errs {
		n += v
	}
	return n
}

// Status returns the answers by HTTP status.
func (c *Counts) Status() map[string]uint64 {
	m := map[string]uint64{}
	for s, n := range c.status {
		if n > 0 {
			m[strconv.Itoa(s)] = n
		}
	}
	return m
}

// Codes returns the answers by answer code; "none" counts answers without
// one (the bare baseline's) and "other" the codes past the first 16.
func (c *Counts) Codes() map[string]uint64 {
	m := map[string]uint64{}
	for i := 0; i < c.nCodes; i++ {
		m[strconv.FormatInt(c.codes[i].code, 10)] = c.codes[i].n
	}
	if c.noCode > 0 {
		m["none"] = c.noCode
	}
	if c.otherCodes > 0 {
		m["other"] = c.otherCodes
	}
	return m
}

// ErrorKinds returns the failed requests by kind, and one message per kind.
func (c *Counts) ErrorKinds() (counts map[string]uint64, examples map[string]string) {
	counts, examples = map[string]uint64{}, map[string]string{}
	for k, n := range c.errs {
		if n > 0 {
			counts[ErrorKind(k).String()] = n
			examples[ErrorKind(k).String()] = c.firstErr[k]
		}
	}
	return counts, examples
}
