package downstream

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// HTTP is a Sink that POSTs each event to the flow engine:
//
//	POST <url>
//	Content-Type: application/json
//	Idempotency-Key: <eventID>
//	Hookgate-Loop: <loop>          (omitted when loop is empty)
//	User-Agent: hookgate
//	Authorization: Basic …         (only when the URL has userinfo)
//
//	<event>
//
// Retry policy: a POST is re-sent only when it surely never reached the
// engine, that is when the connection could not be established (TCP dial or
// TLS handshake failed) or the kernel took none of its bytes, at most
// Config.DialAttempts times within Config.Timeout. Once a byte of the
// request may have been written it is never re-sent, because the engine
// might have run the automation; the caller gets an error and its own
// retry carries the same Idempotency-Key. A kept-alive connection the
// engine has closed, or sent bytes on, while it sat idle is seen before
// anything is written on it (see exchange) and the next one is taken,
// without counting an attempt.
//
// One exception, when pipelining (Config.Pipeline > 1): an event written
// behind the answer with which the engine ended the connection
// (Connection: close, or HTTP/1.0 without keep-alive) is sent again, within
// Config.Timeout and without counting an attempt, because RFC 9112 §9.6
// forbids the engine to process any request after that answer on that
// connection. Pipelining relies on the engine following HTTP/1.1 anyway
// (it must answer in order); one that broke this rule would receive the
// event twice, with the same Idempotency-Key.
type HTTP struct {
	client  *fasthttp.HostClient
	pipe    *pipeline // nil unless Config.Pipeline > 1
	dialer  fasthttp.TCPDialer
	socket  string      // Unix socket path, "" for TCP
	tls     *tls.Config // nil for http
	uri     string      // scheme://host/path?query, without userinfo
	auth    []byte      // Authorization value, nil when the URL has no userinfo
	timeout time.Duration

	dialAttempts   int
	dialRetryDelay time.Duration

	// Errors that do not depend on the call, built once.
	errTimeout     error
	errNoFreeConns error

	calls sync.Pool // *httpCall

	closed      atomic.Bool
	requests    atomic.Uint64
	failures    atomic.Uint64
	timeouts    atomic.Uint64
	dialRetries atomic.Uint64
	resent      atomic.Uint64
	stray       atomic.Uint64
	idleClosed  atomic.Uint64
}

var _ Sink = (*HTTP)(nil)

// newCall makes a pooled call whose request holds what every event's
// request shares, set once and the URL parsed once: only the key, the loop
// marker and the body change from one event to the next.
func (h *HTTP) newCall() any {
	c := new(httpCall)
	req := &c.req
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(h.uri)
	req.URI().DisablePathNormalizing = true
	req.Header.SetContentType(contentType)
	req.Header.SetUserAgent(userAgent)
	if h.auth != nil {
		req.Header.SetCanonical(headerAuthorization, h.auth)
	}
	return c
}

// httpCall is the request and response of one Forward, pooled together.
type httpCall struct {
	req  fasthttp.Request
	resp fasthttp.Response
	loop bool // req holds a Hookgate-Loop header
}

// dialError marks a failure to establish a connection: no byte of the
// request was written, so the event may be re-sent.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

var (
	errConnClosed = &kindError{kind: ErrUnreachable, msg: "flow engine closed the connection without answering"}
	// Without its cause, which would quote the answer.
	errMalformed = &kindError{kind: ErrUnreachable, msg: "flow engine sent a malformed answer"}

	headerIdempotencyKey = []byte("Idempotency-Key")
	headerLoop           = []byte("Hookgate-Loop")
	headerAuthorization  = []byte("Authorization")
)

const (
	userAgent   = "hookgate"
	contentType = "application/json"
)

func newHTTP(u *url.URL, cfg Config) (*HTTP, error) {
	if u.Host == "" {
		return nil, errors.New("downstream.url: missing host")
	}
	if u.Fragment != "" {
		return nil, errors.New("downstream.url: must not have a #fragment")
	}
	isTLS := u.Scheme == "https"
	if cfg.Socket != "" && isTLS {
		// The socket is local; TLS over it would only cost a handshake.
		return nil, fmt.Errorf("downstream.socket: %q needs an http:// url, not https://", cfg.Socket)
	}
	addr := fasthttp.AddMissingPort(u.Host, isTLS)
	h := &HTTP{
		// A DNS answer is reused for a minute, so a flood does not
		// resolve the engine's name for every new connection.
		dialer:         fasthttp.TCPDialer{DNSCacheDuration: time.Minute},
		socket:         cfg.Socket,
		timeout:        cfg.Timeout,
		dialAttempts:   cfg.DialAttempts,
		dialRetryDelay: cfg.DialRetryDelay,
		errTimeout:     &kindError{kind: ErrTimeout, msg: "flow engine timeout after " + cfg.Timeout.String()},
		errNoFreeConns: &kindError{kind: ErrUnreachable, msg: "no free connection to flow engine within " + cfg.MaxConnWaitTimeout.String()},
	}
	if isTLS {
		h.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		cred := u.User.Username() + ":" + pass
		h.auth = []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(cred)))
	}
	clean := *u
	clean.User = nil
	h.uri = clean.String()
	h.calls.New = h.newCall
	// The client is used for its pool of connections only: exchange
	// writes and reads on them itself.
	h.client = &fasthttp.HostClient{
		Addr: addr,
		// The sink dials (and shakes hands) itself, so that every failure
		// to connect is marked as such and only those are retried, and
		// wraps each connection so exchange can look at its socket.
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			var sock *tlsSocket
			if h.tls != nil {
				sock = new(tlsSocket)
			}
			c, err := h.dialOver(addr, timeout, sock)
			if err != nil {
				return nil, err
			}
			return newEngineConn(c, sock), nil
		},
		MaxConns:            cfg.MaxConns,
		MaxConnWaitTimeout:  cfg.MaxConnWaitTimeout,
		MaxIdleConnDuration: cfg.MaxIdleConnDuration,
		MaxResponseBodySize: cfg.MaxResponseBodySize,
	}
	if cfg.Pipeline > 1 {
		h.pipe = newPipeline(h, u.RequestURI(), u.Host, cfg)
	}
	return h, nil
}

// dial establishes a connection, including the TLS handshake, and marks
// every failure as a dialError.
func (h *HTTP) dial(addr string, timeout time.Duration) (net.Conn, error) {
	return h.dialOver(addr, timeout, nil)
}

// dialOver is dial, with the TLS layer, if any, reading and writing the
// socket through sock when sock is not nil (see engineConn.look).
func (h *HTTP) dialOver(addr string, timeout time.Duration, sock *tlsSocket) (net.Conn, error) {
	switch {
	case timeout < 0:
		// A deadline already past: no time to dial in.
		return nil, &dialError{err: fasthttp.ErrDialTimeout}
	case timeout == 0:
		// fasthttp passes 0 when it dials for a Forward queued for a
		// free connection; that Forward's own wait is bounded anyway.
		timeout = h.timeout
	}
	deadline := time.Now().Add(timeout)
	var conn net.Conn
	var err error
	if h.socket != "" {
		conn, err = net.DialTimeout("unix", h.socket, timeout)
	} else {
		// Dual stack, so an engine on an IPv6 address is reachable too.
		conn, err = h.dialer.DialDualStackTimeout(addr, timeout)
	}
	if err != nil {
		// fasthttp's wrapper repeats the address the net error already names.
		if up, ok := err.(*fasthttp.ErrDialWithUpstream); ok && up.Unwrap() != nil {
			err = up.Unwrap()
		}
		return nil, &dialError{err: err}
	}
	if h.tls == nil {
		return conn, nil
	}
	under := conn
	if sock != nil {
		sock.Conn = conn
		under = sock
	}
	tc := tls.Client(under, h.tls)
	if err := tc.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, &dialError{err: err}
	}
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, &dialError{err: err}
	}
	if err := tc.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, &dialError{err: err}
	}
	// fasthttp sees Handshake on the returned conn and does not wrap it again.
	return tc, nil
}

// Forward POSTs event to the engine and returns nil only for a 2xx answer.
// The whole call, retries included, ends within Config.Timeout of start.
func (h *HTTP) Forward(eventID, loop, event []byte, start time.Time) error {
	if h.closed.Load() {
		return ErrClosed
	}
	h.requests.Add(1)
	deadline := start.Add(h.timeout)
	var status int
	var err error
	for attempt := 1; ; {
		if h.pipe != nil {
			status, err = h.pipe.forward(eventID, loop, event, deadline)
		} else {
			status, err = h.roundTrip(eventID, loop, event, deadline)
		}
		if err == errUnprocessed {
			// Not a failure: the engine ended a pipelined connection
			// with an earlier event's answer and processed nothing
			// after it (see HTTP). No attempt is counted, since an
			// engine that serves a few requests per connection may
			// end several before this event's turn; the deadline
			// bounds the rounds.
			if time.Until(deadline) > 0 {
				h.resent.Add(1)
				continue
			}
			break
		}
		// Otherwise only an event none of whose bytes was written is
		// sent again.
		_, dialFailed := err.(*dialError)
		if !dialFailed && err != errNotWritten || attempt >= h.dialAttempts || time.Until(deadline) <= h.dialRetryDelay {
			break
		}
		attempt++
		h.dialRetries.Add(1)
		if dialFailed {
			time.Sleep(h.dialRetryDelay)
		}
	}
	switch {
	case err == nil && status >= 200 && status < 300:
		return nil
	case err == ErrClosed:
		return err
	}
	h.failures.Add(1)
	if err == nil {
		return &StatusError{Status: status}
	}
	return h.classify(err)
}

// roundTrip sends one event on a connection of its own and returns the
// engine's status, or why there is none.
func (h *HTTP) roundTrip(eventID, loop, event []byte, deadline time.Time) (int, error) {
	c := h.calls.Get().(*httpCall)
	req := &c.req
	// Copied into the request's own buffers.
	req.Header.SetCanonical(headerIdempotencyKey, eventID)
	switch {
	case len(loop) > 0:
		req.Header.SetCanonical(headerLoop, loop)
		c.loop = true
	case c.loop:
		req.Header.DelBytes(headerLoop)
		c.loop = false
	}
	// Not copied: the request is done with event before Forward returns.
	req.SetBodyRaw(event)
	// The deadline becomes the connection's read/write deadline, so no
	// timer or goroutine is made per call.
	status, err := answered(&c.resp, h.exchange(req, &c.resp, deadline))
	// Drops the reference to the caller's event before pooling.
	req.ResetBody()
	c.resp.Reset()
	h.calls.Put(c)
	return status, err
}

// answered tells, after a response read that returned err, whether the
// engine answered: it returns the status and nil if so, else 0 and err.
// When the body read fails after the status line, the answer was given: a
// 2xx then means the engine has the event, and calling it a failure would
// make the caller's retry trigger the automation twice. The response is
// reset before each read, and a parsed header of a body that can still
// fail has a non-zero content length (its length, -1 chunked or -2
// read-to-close), so this tells a status line that arrived from one that
// never did. A body longer than we care to read is an answer too.
func answered(resp *fasthttp.Response, err error) (int, error) {
	if err == nil || resp.Header.ContentLength() != 0 || err == fasthttp.ErrBodyTooLarge {
		return resp.StatusCode(), nil
	}
	return 0, err
}

// classify turns a fasthttp error into one that says what happened and
// never quotes the event, the URL's secrets or the engine's answer.
func (h *HTTP) classify(err error) error {
	if ke, ok := err.(*kindError); ok { // classified already
		return ke
	}
	if de, ok := err.(*dialError); ok {
		if errors.Is(de.err, fasthttp.ErrDialTimeout) || isTimeout(de.err) {
			h.timeouts.Add(1)
			return h.errTimeout
		}
		return &kindError{kind: ErrUnreachable, msg: "cannot connect to flow engine", cause: de.err}
	}
	switch err {
	case fasthttp.ErrTimeout:
		h.timeouts.Add(1)
		return h.errTimeout
	case fasthttp.ErrNoFreeConns:
		return h.errNoFreeConns
	case fasthttp.ErrConnectionClosed:
		return errConnClosed
	}
	if isTimeout(err) {
		h.timeouts.Add(1)
		return h.errTimeout
	}
	// fasthttp's parse errors quote the engine's answer, even with
	// SecureErrorLogMessage (the HTTP version), and the pipeline's bare
	// Response quotes up to 400 bytes of it; an engine that echoes the
	// request would put the Authorization header, the URL's query and the
	// event into our logs. Only a net error, which names the connection's
	// addresses, is kept as the cause, and not the wrappers around it,
	// which may quote what was read before it.
	var ne net.Error
	switch {
	case errors.As(err, &ne):
		return &kindError{kind: ErrUnreachable, msg: "flow engine request failed", cause: ne}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return errConnClosed
	}
	return errMalformed
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// Close stops accepting events and closes idle connections; Forwards in
// flight finish, and their connections are closed once idle.
func (h *HTTP) Close() error {
	h.closed.Store(true)
	h.client.CloseIdleConnections()
	if h.pipe != nil {
		h.pipe.close()
	}
	return nil
}

// HTTPStats are the HTTP sink's counters since Open.
type HTTPStats struct {
	// Requests is the number of Forward calls made while open.
	Requests uint64
	// Failures is the number of those that returned an error.
	Failures uint64
	// Timeouts is the number of failures that were timeouts.
	Timeouts uint64
	// DialRetries is the number of connection attempts re-made after a
	// failed one, and of events sent again because none of their bytes
	// was written.
	DialRetries uint64
	// Resent is the number of events sent again because the engine ended
	// their pipelined connection with an earlier event's answer (see
	// HTTP).
	Resent uint64
	// Stray is the number of connections dropped, one event at a time,
	// because the engine had sent bytes on them nobody asked for: after an
	// answer, with it, or while they idled (see exchange). An engine or
	// proxy that answers twice makes it rise.
	Stray uint64
	// IdleClosed is the number of kept-alive connections found closed by
	// the engine before an event was written on them, and replaced: an
	// engine whose idle timeout is shorter than the sink's makes it rise,
	// harmlessly.
	IdleClosed uint64
	// Conns is the number of connections open now.
	Conns int
}

// Stats returns the counters. It is cheap enough for every metrics scrape.
func (h *HTTP) Stats() HTTPStats {
	return HTTPStats{
		Requests:    h.requests.Load(),
		Failures:    h.failures.Load(),
		Timeouts:    h.timeouts.Load(),
		DialRetries: h.dialRetries.Load(),
		Resent:      h.resent.Load(),
		Stray:       h.stray.Load(),
		IdleClosed:  h.idleClosed.Load(),
		Conns:       h.conns(),
	}
}

func (h *HTTP) conns() int {
	if h.pipe != nil {
		return h.pipe.count()
	}
	return h.client.ConnsCount()
}

// Ready reports whether the flow engine accepts connections: it opens one
// (with the TLS handshake for https) within timeout and closes it.
func (h *HTTP) Ready(timeout time.Duration) error {
	if h.closed.Load() {
		return ErrClosed
	}
	c, err := h.dial(h.client.Addr, timeout)
	if err != nil {
		return fmt.Errorf("cannot connect to flow engine: %w", err)
	}
	return c.Close()
}
