package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
	"go.uber.org/zap"
)

// Admin serves the admin listener (SPEC §10): /healthz, /readyz, /metrics
// and POST /reload, behind an optional Bearer token.
type Admin struct {
	g      *Gateway
	token  []byte
	reload func() (generation uint64, pending []string, err error)
	// ready reports whether the flow engine can take events.
	ready func(timeout time.Duration) error
	// stopping is set once the gateway stops accepting webhook requests.
	stopping atomic.Bool

	// mu guards lastReload, the outcome of the last reload attempt.
	mu         sync.Mutex
	lastReload string
	path       string
}

// readiness is implemented by forwarders that can tell whether the flow
// engine is reachable.
type readiness interface {
	Ready(timeout time.Duration) error
}

// NewAdmin returns the admin handler. reload re-reads the configuration
// file (the same as SIGHUP) and returns what ReloadFile does, whose
// generation POST /reload names even if another reload has followed; path is
// named in /readyz. token, when not empty, is the Bearer token every admin
// request must carry.
func (g *Gateway) NewAdmin(token, path string, reload func() (uint64, []string, error)) *Admin {
	a := &Admin{g: g, reload: reload, path: path, lastReload: "none"}
	if token != "" {
		a.token = []byte(token)
	}
	if r, ok := g.fwd.(readiness); ok {
		a.ready = r.Ready
	}
	return a
}

// NewServer returns the admin listener's fasthttp server.
func (a *Admin) NewServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:              a.Handle,
		Name:                 "hookgate-admin",
		ReadTimeout:          10 * time.Second,
		WriteTimeout:         10 * time.Second,
		IdleTimeout:          60 * time.Second,
		MaxRequestBodySize:   4 << 10,
		Concurrency:          256,
		NoDefaultContentType: true,
		CloseOnShutdown:      true,
		Logger:               fasthttpLogger{a.g.log},
	}
}

// SetReloadResult records the outcome of a reload however it was started
// (SIGHUP, file change, POST /reload), for /readyz: its error, or the
// settings it left waiting for a restart (ReloadFile).
func (a *Admin) SetReloadResult(pending []string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at := time.Now().UTC().Format(time.RFC3339)
	switch {
	case err != nil:
		a.lastReload = "failed at " + at + ": " + err.Error()
	case len(pending) > 0:
		a.lastReload = fmt.Sprintf("ok at %s; %d settings applied only at start wait for a restart", at, len(pending))
	default:
		a.lastReload = "ok at " + at
	}
}

// Stopping makes /readyz answer 503 from now on: the gateway has stopped
// accepting webhook connections and finishes those in flight, so a load
// balancer or orchestrator that still asks learns to send requests
// elsewhere. The admin listener itself serves until the drain is over.
func (a *Admin) Stopping() { a.stopping.Store(true) }

// Handle serves one admin request.
func (a *Admin) Handle(ctx *fasthttp.RequestCtx) {
	if a.token != nil {
		auth := ctx.Request.Header.PeekCanonical(strAuthorization)
		if !bytes.HasPrefix(auth, strBearerPrefix) || !constantTimeEqual(auth[len(strBearerPrefix):], a.token) {
			ctx.Response.Header.SetCanonical(strWWWAuthenticate, strBearerChallenge)
			ctx.Error("unauthorized\n", fasthttp.StatusUnauthorized)
			return
		}
	}
	if bytes.HasPrefix(ctx.Path(), []byte("/debug/pprof/")) {
		// Profiles for performance work; behind admin_token like the rest.
		pprofhandler.PprofHandler(ctx)
		return
	}
	switch string(ctx.Path()) {
	case "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case "/readyz":
		a.readyz(ctx)
	case "/metrics":
		a.metrics(ctx)
	case "/reload":
		if !ctx.IsPost() {
			ctx.Response.Header.Set("Allow", "POST")
			ctx.Error("use POST\n", fasthttp.StatusMethodNotAllowed)
			return
		}
		gen, pending, err := a.reload()
		if err != nil {
			ctx.SetStatusCode(fasthttp.StatusUnprocessableEntity)
			fmt.Fprintf(ctx, "reload refused; generation %d keeps serving:\n%v\n", gen, err)
			return
		}
		fmt.Fprintf(ctx, "reloaded: generation %d\n", gen)
		if len(pending) > 0 {
			fmt.Fprintf(ctx, "these keep their running values until hookgate restarts:\n")
			for _, p := range pending {
				fmt.Fprintf(ctx, "  %s\n", p)
			}
		}
	default:
		ctx.Error("not found: /healthz /readyz /metrics /reload /debug/pprof/\n", fasthttp.StatusNotFound)
	}
}

// readyz answers 200 when a configuration is loaded, the flow engine
// reachable and the gateway not stopping, 503 otherwise, with the live
// generation either way.
func (a *Admin) readyz(ctx *fasthttp.RequestCtx) {
	engine := "ok"
	status := fasthttp.StatusOK
	if a.ready != nil {
		if err := a.ready(time.Second); err != nil {
			engine = err.Error()
			status = fasthttp.StatusServiceUnavailable
		}
	}
	stopping := a.stopping.Load()
	if stopping {
		status = fasthttp.StatusServiceUnavailable
	}
	a.mu.Lock()
	last := a.lastReload
	a.mu.Unlock()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b := append([]byte(nil), `{"ready":`...)
	b = strconv.AppendBool(b, status == fasthttp.StatusOK)
	b = append(b, `,"stopping":`...)
	b = strconv.AppendBool(b, stopping)
	b = append(b, `,"config":`...)
	b = appendJSONString(b, a.path)
	b = append(b, `,"generation":`...)
	b = strconv.AppendUint(b, a.g.Generation(), 10)
	b = append(b, `,"last_reload":`...)
	b = appendJSONString(b, last)
	b = append(b, `,"flow_engine":`...)
	b = appendJSONString(b, engine)
	b = append(b, "}\n"...)
	ctx.SetBody(b)
}

func (a *Admin) metrics(ctx *fasthttp.RequestCtx) {
	mfs, err := a.g.m.reg.Gather()
	if err != nil {
		a.g.log.Error("gathering metrics", zap.Error(err))
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	ctx.SetContentType(string(format))
	enc := expfmt.NewEncoder(ctx, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			ctx.Error("cannot encode metrics\n", fasthttp.StatusInternalServerError)
			return
		}
	}
}

// ReloadFile loads path, compiles it and swaps it in. An invalid file is
// refused and the running configuration kept whole. The settings of a
// valid file that are applied only at start keep their running values and
// are returned as pending (see Reload). The outcome is logged once and
// counted. Calls must not overlap: one that read the file earlier could
// swap it in after one that read it later.
func (g *Gateway) ReloadFile(path string) (generation uint64, pending []string, err error) {
	cfg, err := LoadFile(path)
	if err == nil {
		pending, err = g.Reload(cfg)
	} else {
		g.m.reloads[1].Inc()
	}
	generation = g.Generation() // the one this reload made, or kept: reloads do not overlap
	var ce *ConfigError
	switch {
	case errors.As(err, &ce):
		g.log.Error("reload refused; the running configuration is kept",
			zap.String("config", path), zap.Uint64("generation", generation), zap.Strings("problems", ce.Problems))
	case err != nil:
		g.log.Error("reload refused; the running configuration is kept",
			zap.String("config", path), zap.Uint64("generation", generation), zap.Error(err))
	case len(pending) > 0:
		g.log.Warn("configuration reloaded; settings applied only at start keep their running values until hookgate restarts",
			zap.String("config", path), zap.Uint64("generation", generation), zap.Strings("pending", pending))
	default:
		g.log.Info("configuration reloaded", zap.String("config", path), zap.Uint64("generation", generation))
	}
	return generation, pending, err
}
