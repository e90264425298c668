package gateway

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// NewServer returns the webhook listener's fasthttp server with the
// protective limits of cfg.Server.
//
// The body is streamed (StreamRequestBody) so that the header checks run
// before it is read. In streaming mode fasthttp does not enforce
// MaxRequestBodySize; instead it pre-reads min(MaxRequestBodySize,
// Content-Length, 8 KiB) body bytes before calling the handler. Setting it
// to 1 keeps that pre-read to a single byte; the handler enforces the real
// cap (max_body_bytes) itself, for Content-Length and chunked bodies alike.
//
// The read, idle and write timeouts are kept by the connections Serve
// accepts, not by fasthttp (see connDeadlines).
func (g *Gateway) NewServer(cfg *Config) *Server {
	s := cfg.Server
	read, idle, write := time.Duration(s.ReadTimeout), time.Duration(s.IdleTimeout), time.Duration(s.WriteTimeout)
	return &Server{timeouts: s, log: g.log, clock: newCoarseClock(clockTick(min(read, idle, write))), fs: &fasthttp.Server{
		Handler:                       g.Handle,
		ExpectHandler:                 g.Expect,
		ErrorHandler:                  g.handleError,
		Name:                          "hookgate",
		StreamRequestBody:             true,
		MaxRequestBodySize:            1,
		DisablePreParseMultipartForm:  true,
		ReadBufferSize:                s.MaxHeaderBytes,
		MaxConnsPerIP:                 s.MaxConnsPerIP,
		Concurrency:                   s.Concurrency,
		CloseOnShutdown:               true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fasthttpLogger{g.log},
	}}
}

// Server is the webhook listener: fasthttp's server, whose connections
// Serve gives their deadlines. Only the entry points that do are
// offered: fasthttp's others (ServeConn, the TLS ones) would serve
// without the timeouts.
type Server struct {
	fs       *fasthttp.Server
	timeouts ServerLimits
	log      *zap.Logger
	// clock times the connections' deadlines. It runs until Shutdown
	// has drained them: fasthttp closes the listeners first, and a clock
	// stopped then would measure the drain's deadlines from the stop.
	clock *coarseClock
}

// Serve serves ln until it is closed or the server shut down, its
// connections keeping server.read_timeout, idle_timeout and
// write_timeout as connDeadlines describes, and its accepts waiting out
// a shortage of file descriptors (RetryAccept).
func (s *Server) Serve(ln net.Listener) error {
	t := s.timeouts
	return s.fs.Serve(&connDeadlines{Listener: RetryAccept(ln, s.log), clock: s.clock,
		read: int64(t.ReadTimeout), idle: int64(t.IdleTimeout), write: int64(t.WriteTimeout)})
}

// ListenAndServe listens on TCP address addr and serves it as Serve does.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Shutdown stops accepting and waits for the open connections' requests
// to be answered, as fasthttp.Server.Shutdown.
func (s *Server) Shutdown() error {
	err := s.fs.Shutdown()
	s.clock.stop()
	return err
}

// handleError answers fasthttp's own errors (a malformed request line or
// header, headers over max_header_bytes, a read timeout) with a JSON body
// of SPEC §3: a request that can't be parsed names no webhook (404). The
// connection is closed afterwards by fasthttp.
func (g *Gateway) handleError(ctx *fasthttp.RequestCtx, err error) {
	e := ErrNotFound
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		e = ErrTooLarge
	}
	ctx.SetConnectionClose()
	ctx.SetStatusCode(e.Status)
	ctx.Response.Header.SetContentTypeBytes(strApplicationJSON)
	ctx.Response.SetBody(e.body)
	g.log.Debug("malformed request", zap.Int("code", int(e.Code)), zap.String("error", redactParseError(err)))
}

// redactParseError keeps only the kind of a fasthttp parse error: its text
// may quote the request line, which holds the webhook token.
func redactParseError(err error) string {
	var te interface{ Timeout() bool }
	switch {
	case errors.As(err, &te) && te.Timeout():
		return "timeout"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "body too large"
	default:
		return fmt.Sprintf("%T", err)
	}
}

// fasthttpLogger routes fasthttp's own messages to zap at warn level.
// Their text can quote request data, so it is not logged verbatim.
type fasthttpLogger struct{ log *zap.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Warn("http server", zap.String("format", format))
}

// RetryAccept wraps ln so that Accept waits out a shortage of resources
// (file descriptors, kernel memory) instead of failing: fasthttp ends
// Serve on any such error, which ended the process, so a flood of
// connections past the file limit stopped the gateway. As net/http does,
// it retries after 5 ms, doubling up to 1 s, and logs at most once a
// minute. Server.Serve uses it; the admin listener is given it too.
func RetryAccept(ln net.Listener, log *zap.Logger) net.Listener {
	return &retryAccept{Listener: ln, log: log}
}

// retryAccept is RetryAccept's listener. Accept is called by one
// goroutine at a time.
type retryAccept struct {
	net.Listener
	log    *zap.Logger
	logged time.Time
}

func (l *retryAccept) Accept() (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil || !(errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
			errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)) {
			return c, err
		}
		if wait == 0 {
			wait = 5 * time.Millisecond
		} else {
			wait = min(2*wait, time.Second)
		}
		if time.Since(l.logged) >= time.Minute {
			l.logged = time.Now()
			l.log.Warn("accepting connections; retrying", zap.String("listen", l.Addr().String()), zap.Error(err))
		}
		time.Sleep(wait)
	}
}
