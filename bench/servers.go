package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Server is one of the suite's helper servers, run in a process of its own
// so the load generator's process only generates load.
type Server int

const (
	// ServerSink is a flow engine that answers 200 to every POST and
	// counts them; GET /stats answers {"events":N}.
	ServerSink Server = iota
	// ServerBare answers 200 with an empty body to everything and does
	// nothing else: the ceiling every scenario is compared with.
	ServerBare
	// ServerRelay POSTs each request's body to the flow-engine sink, one
	// at a time per connection as the gateway's default transport does,
	// and answers 200 once the sink has answered 2xx (502 otherwise). It
	// checks nothing and builds no envelope: the ceiling of the scenarios
	// that forward, on the same machine and in the same run.
	ServerRelay
)

func (s Server) String() string {
	switch s {
	case ServerBare:
		return "bare"
	case ServerRelay:
		return "relay"
	}
	return "sink"
}

// ParseServer returns the server a helper-mode name ("sink", "bare",
// "relay") stands for.
func ParseServer(name string) (Server, bool) {
	for _, s := range []Server{ServerSink, ServerBare, ServerRelay} {
		if s.String() == name {
			return s, true
		}
	}
	return 0, false
}

// maxServerBody lets the helper servers take the 4 MiB scenario's bodies
// and the events that wrap them.
const maxServerBody = 64 << 20

// Serve runs server s on listen (host:port; port 0 picks one) until ctx
// ends; a relay forwards to the sink at to (host:port). Once listening it
// writes "listening <addr>\n" to ready, which is how the suite learns the
// address.
func Serve(ctx context.Context, s Server, listen, socket, to string, ready io.Writer) error {
	if s == ServerRelay && to == "" {
		return errors.New("a relay needs the sink's address (-to)")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", listen, err)
	}
	var uln net.Listener
	if socket != "" {
		// A socket left by a killed run would refuse the bind.
		_ = os.Remove(socket)
		if uln, err = net.Listen("unix", socket); err != nil {
			ln.Close()
			return fmt.Errorf("cannot listen on %s: %w", socket, err)
		}
	}
	var events atomic.Uint64
	stats := []byte("/stats")
	handler := func(ctx *fasthttp.RequestCtx) {}
	if s == ServerSink {
		handler = func(ctx *fasthttp.RequestCtx) {
			if ctx.IsPost() {
				events.Add(1)
				return
			}
			if string(ctx.Path()) == string(stats) {
				ctx.SetContentType("application/json")
				ctx.SetBody(strconv.AppendUint(append([]byte(nil), `{"events":`...), events.Load(), 10))
				ctx.Response.AppendBodyString("}")
				return
			}
			ctx.SetStatusCode(fasthttp.StatusNotFound)
		}
	}
	if s == ServerRelay {
		handler = relay(to)
	}
	srv := &fasthttp.Server{
		Handler:               handler,
		Name:                  "hookbench-" + s.String(),
		MaxRequestBodySize:    maxServerBody,
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		ReadTimeout:           time.Minute,
		IdleTimeout:           time.Minute,
		CloseOnShutdown:       true,
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if uln != nil {
		go func() { errc <- srv.Serve(uln) }()
	}
	fmt.Fprintf(ready, "listening %s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.ShutdownWithContext(sctx)
	}
}

// relay returns the relay's handler: each request's body is POSTed to the
// sink at addr with fasthttp's own client as it comes (up to 512
// connections, as the gateway's default; a POST is never retried) and
// the request is answered when the sink has.
func relay(addr string) fasthttp.RequestHandler {
	client := &fasthttp.HostClient{Addr: addr, NoDefaultUserAgentHeader: true}
	uri := "http://" + addr + "/events"
	return func(ctx *fasthttp.RequestCtx) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer func() {
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
		}()
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(uri)
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(ctx.PostBody())
		if err := client.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode()/100 != 2 {
			ctx.SetStatusCode(fasthttp.StatusBadGateway)
		}
	}
}
