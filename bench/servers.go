package bench

import (
	"context"
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
)

func (s Server) String() string {
	if s == ServerBare {
		return "bare"
	}
	return "sink"
}

// maxServerBody lets the helper servers take the 4 MiB scenario's bodies
// and the events that wrap them.
const maxServerBody = 64 << 20

// Serve runs server s on listen (host:port; port 0 picks one) until ctx
// ends. Once listening it writes "listening <addr>\n" to ready, which is
// how the suite learns the address.
func Serve(ctx context.Context, s Server, listen, socket string, ready io.Writer) error {
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
