package gateway

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hookgate/hookgate/cluster"
	"github.com/hookgate/hookgate/idempotency"
	"github.com/hookgate/hookgate/limiter"
	"github.com/hookgate/hookgate/matcher"
	"github.com/hookgate/hookgate/signature"
)

// Forwarder hands one accepted event to the flow engine. Forward returns
// nil only once the engine has acknowledged the event (SPEC §7); any error
// means the event was not accepted and may be retried by the caller.
// eventID, loop and event are valid only until Forward returns; start is
// when the hand-over began, from which a sink's timeout runs (the caller
// has read the clock for its own measure). It must be safe for concurrent
// use.
type Forwarder interface {
	Forward(eventID, loop, event []byte, start time.Time) error
}

// Gateway runs the check pipeline of SPEC §3 on webhook requests.
type Gateway struct {
	routes atomic.Pointer[routes]
	fwd    Forwarder
	// admit takes the rate decisions and the Client-Token claims;
	// tokens marks the claimed ones done or releases them. admitLate
	// takes the rate tokens only once the body is checked, for signed
	// automations and for looks before a body comes (takeAfterBody).
	admit     admission
	admitLate admission
	tokens    TokenStore
	log       *zap.Logger
	m         *metrics
	ids       eventIDs
	// generation counts successful (re)loads of the configuration.
	generation atomic.Uint64
	// bigBodies counts requests whose buffers outgrew maxPooledBody.
	bigBodies atomic.Uint64
	// big keeps the buffers of large bodies and events between requests.
	big         bigBuffers
	stopJanitor chan struct{}
	// level is log's level, which a reload sets from log.level; nil
	// when the logger was built without one (Options.Level).
	level  *zap.AtomicLevel
	states sync.Pool
	// lingerSlots bounds the connections being drained after an early
	// answer (see linger); past it such connections are simply closed.
	lingerSlots chan struct{}
	lingerFor   time.Duration
	lingerMax   int
}

// Options are the parts a Gateway is wired with.
type Options struct {
	// Forwarder receives accepted events (required).
	Forwarder Forwarder
	// Limits and Tokens default to the in-process implementations. When
	// Limits is a JointLimiter, its Admit claims the Client-Tokens, and
	// Tokens must be the store those tickets belong to.
	Limits RateLimiter
	Tokens TokenStore
	// Log receives one line per request (default: none).
	Log *zap.Logger
	// Level, when set, is Log's level, which a reload then sets from
	// log.level (NewLogger returns it); without it log.level is applied
	// only at start.
	Level *zap.AtomicLevel
	// ClusterStats, when the state is shared through Redis, exports its
	// counters as metrics.
	ClusterStats func() cluster.Stats
}

// New compiles cfg and returns a Gateway wired with opts.
func New(cfg *Config, opts Options) (*Gateway, error) {
	m := newMetrics()
	rs, err := compile(cfg, nil, m)
	if err != nil {
		return nil, err
	}
	if opts.Limits == nil {
		opts.Limits = LocalLimits{}
	}
	if opts.Tokens == nil {
		opts.Tokens = LocalTokens{Store: idempotency.New(cfg.IdempotencyCapacity, time.Duration(cfg.IdempotencyWindow))}
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	br := newBreaker(opts.Forwarder, cfg.Downstream.Breaker)
	g := &Gateway{
		fwd:    br,
		tokens: opts.Tokens,
		log:    opts.Log,
		level:  opts.Level,

		m: m,

		lingerSlots: make(chan struct{}, maxLingering),
		lingerFor:   time.Duration(cfg.Server.ReadTimeout),
		lingerMax:   int(cfg.MaxBodyBytes) + 64<<10,
	}
	if j, ok := opts.Limits.(JointLimiter); ok {
		g.admit, g.admitLate = j, j
	} else {
		g.admit = decideFirst{limits: opts.Limits, tokens: opts.Tokens}
		g.admitLate = takeAfterBody{decideFirst{limits: opts.Limits, tokens: opts.Tokens}}
	}
	g.routes.Store(rs)
	g.generation.Store(1)
	m.generation.Set(1)
	m.registerSink(opts.Forwarder)
	m.registerBreaker(br)
	if opts.ClusterStats != nil {
		m.registerCluster(opts.ClusterStats)
	}
	m.registerTokens(opts.Tokens)
	g.states.New = func() any { return new(reqState) }
	g.stopJanitor = make(chan struct{})
	go g.janitor(5 * time.Second)
	return g, nil
}

// reqState is the per-request scratch memory, pooled so the request path
// does not allocate. Everything in it is valid until the handler returns.
type reqState struct {
	body    []byte
	event   []byte
	resp    []byte
	eventID []byte
	loop    []byte
	loopIn  []byte // the Hookgate-Loop lines joined, when there are several
	scratch []byte
	fields  []zap.Field
	// sig is the signature check of an automation with verify; sigActive
	// is set between a successful Begin and Finish. input reads the
	// request for it.
	sig       signature.Check
	sigActive bool
	input     reqInput
	// scan searches the automation's keywords in the body as it is read,
	// when scanning is set (a body over streamScanMin or chunked).
	scan     matcher.Scanner
	scanning bool
	// claimed is the Client-Token held in flight by this request.
	claimed    idempotency.Ticket
	hasClaimed bool
	// pooledBody and pooledEvent hold the state's own buffers while body
	// or event is one borrowed from the gateway's bigBuffers.
	pooledBody, pooledEvent []byte
}

func (st *reqState) reset() {
	st.body = st.body[:0]
	st.event = st.event[:0]
	st.resp = st.resp[:0]
	st.eventID = st.eventID[:0]
	st.loop = st.loop[:0]
	st.loopIn = st.loopIn[:0]
	st.scratch = st.scratch[:0]
	clear(st.fields)
	st.fields = st.fields[:0]
	st.hasClaimed = false
	st.scanning = false
	if st.sigActive {
		st.sig.Abort()
		st.sigActive = false
	}
	st.input.ctx = nil
}

// reqInput lets a signature.Verifier read the request's headers and query.
type reqInput struct{ ctx *fasthttp.RequestCtx }

func (in *reqInput) Header(name string) []byte { return in.ctx.Request.Header.Peek(name) }
func (in *reqInput) Query(name string) []byte  { return in.ctx.QueryArgs().Peek(name) }

// streamScanMin is the declared body length above which the keywords are
// searched as the body streams in rather than once it is whole: at 1 KiB
// the Scanner cost more than Match (BenchmarkHandler, same run).
const streamScanMin = 64 << 10

// Header names in fasthttp's canonical form (each word capitalized, the
// rest in lower case), so that the request path can peek and set them
// without normalizing a copy first (PeekCanonical, SetCanonical); a test
// checks each against fasthttp's own normalization.
var (
	strApplicationJSON = []byte("application/json")
	strRetryAfter      = []byte("Retry-After")
	strWWWAuthenticate = []byte("Www-Authenticate")
	strBearerChallenge = []byte(`Bearer realm="hookgate"`)
	strAllow           = []byte("Allow")
	strPOST            = []byte("POST")
	strAuthorization   = []byte("Authorization")
	strBearerPrefix    = []byte("Bearer ")
	strClientToken     = []byte("Client-Token")
	strLoop            = []byte("Hookgate-Loop")
	strXFF             = []byte("X-Forwarded-For")
	strXRealIP         = []byte("X-Real-Ip")
	strWebhookPrefix   = []byte(webhookPrefix)
)

// outcome is what one request ended with, for the log line.
type outcome struct {
	// start is when the request came: fasthttp's time for it, read once.
	start time.Time
	// unread is how much body is left unread when the request was refused
	// before its end: the declared length, or unreadChunked; 0 when
	// there is nothing to drain.
	unread int
	r      *route
	// refusal is the answer of a refused request; nil for code 0.
	refusal *Refusal
	bodyLen int
	client  netip.Addr
	reason  string // why a request failed beyond its code, e.g. the engine's error
}

const (
	// fasthttpDrainLimit is how much unread body fasthttp discards itself
	// after a response before it closes the connection instead.
	fasthttpDrainLimit = 256 << 10
	// maxLingering bounds the connections drained at once by linger.
	maxLingering = 256
	// unreadChunked is outcome.unread for a chunked body left on the
	// wire, whose length is known only at its end.
	unreadChunked = -1
)

// linger answers a request whose body was not read and then drains it, so
// a caller that sends its whole body before reading the answer (as many
// HTTP clients do) reads the refusal instead of a connection reset. The
// connection is hijacked: the response is written first, with Connection:
// close, then the body is read and dropped — at most lingerMax bytes within
// lingerFor — on its own goroutine, and the connection closed. Only
// maxLingering connections drain at once: past that the answer is written
// and the connection closed without draining; for a body declared larger
// than lingerMax, the connection is simply closed.
//
// A chunked body says how long it is only at its end, and fasthttp,
// which drains one after the answer, closes the connection with the rest
// unread past 256 KiB — a reset that can destroy the answer. So up to
// that much is drained here, before the answer: a body that ends within
// it keeps the connection, as it did; a longer one lingers. The answer
// waits for up to 256 KiB of a body the caller is sending anyway.
//
// fasthttp skips the hijack handler of a response marked Connection:
// close, so the response is written here, not by fasthttp.
func (g *Gateway) linger(ctx *fasthttp.RequestCtx, unread int) {
	stream := ctx.RequestBodyStream()
	if stream == nil || unread > g.lingerMax {
		ctx.SetConnectionClose()
		return
	}
	limit := unread
	if unread == unreadChunked {
		ended, err := drain(stream, fasthttpDrainLimit)
		if ended {
			return
		}
		if err != nil {
			ctx.SetConnectionClose()
			return
		}
		limit = g.lingerMax
	}
	l := lingerers.Get().(*lingerer)
	ctx.Response.CopyTo(&l.resp)
	l.resp.SetConnectionClose()
	l.g, l.stream, l.limit = g, stream, limit
	l.deadline = time.Now().Add(g.lingerFor)
	ctx.HijackSetNoResponse(true)
	// The slot is taken in the hijack handler, which fasthttp skips when
	// the connection fails before it (writing the answers held back for
	// earlier pipelined requests): taken here, it would never come back.
	// That lingerer is then left to the collector.
	ctx.Hijack(l.hijack)
}

// lingerer is one connection's lingering answer and drain. Lingerers are
// pooled, each with its hijack handler bound once, so a refusal that
// lingers allocates nothing.
type lingerer struct {
	g        *Gateway
	resp     fasthttp.Response
	stream   io.Reader
	limit    int
	deadline time.Time
	hijack   fasthttp.HijackHandler // l.run, bound once
}

// lingerers' New is set in init: a lingerer's handler puts it back.
var lingerers sync.Pool

func init() {
	lingerers.New = func() any {
		l := &lingerer{}
		l.hijack = l.run
		return l
	}
}

// run writes the answer on the hijacked connection and drains the body,
// if a slot is free.
func (l *lingerer) run(c net.Conn) {
	defer l.release()
	_ = c.SetDeadline(l.deadline)
	if _, err := l.resp.WriteTo(c); err != nil {
		return
	}
	select {
	case l.g.lingerSlots <- struct{}{}:
		defer func() { <-l.g.lingerSlots }()
	default: // enough are draining: answered, the connection closes
		return
	}
	_, _ = drain(l.stream, l.limit)
}

func (l *lingerer) release() {
	l.resp.Reset()
	l.g, l.stream = nil, nil
	lingerers.Put(l)
}

var lingerBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// drain reads and drops up to limit bytes of stream (one more, to tell a
// body of exactly limit bytes that ended) and reports whether it ended
// within them, or the error that stopped the reading. Both the drain
// before an answer and the lingering one after it use it.
func drain(stream io.Reader, limit int) (ended bool, err error) {
	buf := lingerBufs.Get().(*[]byte)
	defer lingerBufs.Put(buf)
	for n := 0; n <= limit; {
		m, err := stream.Read((*buf)[:min(len(*buf), limit+1-n)])
		n += m
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// code is the request's answer code.
func (o *outcome) code() Code {
	if o.refusal == nil {
		return CodeOK
	}
	return o.refusal.Code
}

// status is the request's HTTP status.
func (o *outcome) status() int {
	if o.refusal == nil {
		return fasthttp.StatusOK
	}
	return o.refusal.Status
}

// Handle is the fasthttp handler of the webhook listener.
func (g *Gateway) Handle(ctx *fasthttp.RequestCtx) { g.run(ctx, false) }

// Expect is the listener's fasthttp ExpectHandler: fasthttp calls it with
// the headers of a request that sent Expect: 100-continue, and invites the
// body with 100 Continue only when it returns that. The checks that need no
// body run here (rows 1–8, the rate limits looked at, not taken), so a
// refused caller gets its answer before it uploads; fasthttp then closes
// the connection, since the body may be on its way. An admitted request
// is checked again, whole, by Handle once its body comes.
func (g *Gateway) Expect(ctx *fasthttp.RequestCtx) int {
	if out := g.run(ctx, true); out.refusal != nil {
		return out.status()
	}
	return fasthttp.StatusContinue
}

// run serves one request, or with headersOnly checks what needs no body
// and answers only a refusal, and returns how it ended.
func (g *Gateway) run(ctx *fasthttp.RequestCtx, headersOnly bool) (out outcome) {
	st := g.states.Get().(*reqState)
	out.start = ctx.Time()
	if headersOnly { // fasthttp sets the request's time after its ExpectHandler
		out.start = time.Now()
	}
	defer func() {
		if p := recover(); p != nil {
			// One bad request must not take the process down. The
			// token, if any, is released so the caller's retry works.
			if st.hasClaimed {
				g.tokens.Release(st.claimed)
			}
			g.refuse(ctx, st, &out, ErrUnavailable, 1)
			out.reason = "panic"
			g.log.Error("request handler panic", zap.Any("panic", p), zap.Stack("stack"))
		}
		if out.unread != 0 && !headersOnly { // fasthttp closes after a refused Expect
			g.linger(ctx, out.unread)
		}
		if !headersOnly || out.refusal != nil { // a request that passes is counted by Handle
			g.account(ctx, st, &out)
		}
		st.reset()
		if cap(st.body) > maxPooledBody || cap(st.event) > maxPooledBody {
			g.bigBodies.Add(1) // the janitor's sign that big buffers are in use
		}
		if cap(st.body) > maxPooledBody {
			g.big.put(st.body)
			st.body = st.pooledBody
		}
		if cap(st.event) > maxPooledBody {
			g.big.put(st.event)
			st.event = st.pooledEvent
		}
		st.pooledBody, st.pooledEvent = nil, nil
		g.states.Put(st)
	}()
	g.serve(ctx, st, &out, headersOnly)
	return out
}

// serve runs the checks of SPEC §3 in order; the first failing check
// answers. With headersOnly it stops before the body, at row 8, having
// only looked at the rate limits.
func (g *Gateway) serve(ctx *fasthttp.RequestCtx, st *reqState, out *outcome, headersOnly bool) {
	rs := g.routes.Load()
	fail := func(e *Refusal) { g.refuse(ctx, st, out, e, 0) }
	// A refusal before the body is read leaves it on the wire; fasthttp
	// drains a declared length up to 256 KiB itself and keeps the
	// connection, a larger one or a chunked body is drained by linger so
	// the caller can read the answer. checkBody clears this once it reads.
	switch cl := ctx.Request.Header.ContentLength(); {
	case cl > fasthttpDrainLimit:
		out.unread = cl
	case cl == -1:
		out.unread = unreadChunked
	}

	// 1. Method.
	if !ctx.IsPost() {
		ctx.Response.Header.SetCanonical(strAllow, strPOST)
		fail(ErrMethod)
		return
	}
	// 2. Token, from the request-target as sent: parsing and normalizing
	// the URI costs more than every other header check together, and a
	// webhook URL is matched exactly, not after percent-decoding or
	// resolving dot segments.
	path := targetPath(ctx.RequestURI())
	if !bytes.HasPrefix(path, strWebhookPrefix) {
		fail(ErrNotFound)
		return
	}
	r := rs.lookup(path[len(strWebhookPrefix):])
	if r == nil {
		fail(ErrNotFound)
		return
	}
	out.r = r
	// 3. Enabled.
	if !r.enabled {
		fail(ErrDisabled)
		return
	}
	// 4. IP allow-list. The client address is needed for the event too.
	hdr := &ctx.Request.Header
	client := peerAddr(ctx.RemoteIP())
	if rs.trusted.contains(client) {
		xff, realIP := forwardedFor(hdr)
		client = clientAddr(client, rs.trusted, xff, realIP)
	}
	out.client = client
	if len(r.allow) > 0 && !r.allow.contains(client) {
		fail(ErrIPNotAllow)
		return
	}
	// 5. Credential.
	if r.credential != nil {
		auth := hdr.PeekCanonical(strAuthorization)
		if !bytes.HasPrefix(auth, strBearerPrefix) || !constantTimeEqual(auth[len(strBearerPrefix):], r.credential) {
			ctx.Response.Header.SetCanonical(strWWWAuthenticate, strBearerChallenge)
			fail(ErrCredential)
			return
		}
	}
	// 5b. Signature: everything that needs no body is checked now; the
	// body-covering MAC is computed as the body streams in (step 9).
	now := out.start
	if r.verifier != nil {
		st.input.ctx = ctx
		if err := r.verifier.Begin(&st.sig, &st.input, now.UnixNano()); err != nil {
			out.reason = err.Error()
			ctx.Response.Header.SetCanonical(strWWWAuthenticate, strBearerChallenge)
			fail(ErrCredential)
			return
		}
		st.sigActive = true
	}
	// 6. Loop marker.
	loopIn := loopMarker(hdr, &st.loopIn)
	if loops(loopIn, r.loopSelf) {
		fail(ErrLoop)
		return
	}
	// 7. Declared size.
	cl := hdr.ContentLength()
	if cl > rs.maxBody {
		out.unread = cl
		fail(ErrTooLarge)
		return
	}
	// 8. Rate limits, at the request's start on the monotonic timeline
	// (monoNanos). A JointLimiter refuses
	// here only what it knows without a round trip; the rest of its
	// decision is taken with the Client-Token claim (row 12) once the
	// body is checked, and answers before any later row. A signature's
	// MAC is known only with the body, so a signed automation's tokens
	// are taken then too: forgeries must not spend its rate.
	admit := g.admit
	if r.verifier != nil || headersOnly {
		admit = g.admitLate
	}
	mono := monoNanos(now)
	if scope, wait := admit.Shed(r.table, r.id, r.tableLimit, r.bucket, mono); scope != limiter.None {
		g.rateLimited(ctx, st, out, scope, wait)
		return
	}
	if headersOnly {
		return
	}
	// 9–11. Body, JSON, keywords.
	e, kw, hit := g.checkBody(ctx, st, out, r, rs, cl)
	// The MAC: row 5's refusal takes no rate tokens. Nor does a signed
	// request whose body ended before its MAC could be checked (cut short,
	// or over the cap): nothing shows it is the sender's, and a forger
	// would spend the automation's rate with it.
	if e == ErrCredential || st.sigActive {
		fail(e)
		return
	}
	// 12. Client-Token, of a request that would trigger.
	var clientToken []byte
	if e == nil && hit {
		// A signed delivery id (standard-webhooks' webhook-id) is the
		// idempotency key. A Client-Token beside it is not used: the
		// signature does not cover it, so a captured delivery replayed
		// with a fresh one would trigger again.
		if r.verifier != nil {
			clientToken = st.sig.IdempotencyKey()
		}
		if len(clientToken) == 0 {
			clientToken = hdr.PeekCanonical(strClientToken)
		}
	}
	scope, wait, ticket, res := admit.Admit(r.table, r.id, r.tableLimit, r.bucket, mono, clientToken)
	if scope != limiter.None {
		g.rateLimited(ctx, st, out, scope, wait)
		return
	}
	if e != nil {
		fail(e)
		return
	}
	if !hit {
		g.answer(ctx, fasthttp.StatusOK, bodyKeywordMiss)
		out.reason = reasonKeywordMiss
		return
	}
	if len(clientToken) > 0 {
		g.m.tokens[res].Inc()
		switch res {
		case idempotency.Claimed:
			st.claimed, st.hasClaimed = ticket, true
		case idempotency.Duplicate:
			out.reason = reasonDuplicate
			g.answer(ctx, fasthttp.StatusOK, bodyDuplicate)
			return
		case idempotency.InFlight:
			fail(ErrInFlight)
			return
		case idempotency.Full: // refuse rather than forget a token
			out.reason = "client-token store full"
			g.refuse(ctx, st, out, ErrRateLimited, time.Second)
			return
		default: // Unavailable: fail closed, retryable
			out.reason = "client-token store unavailable"
			g.refuse(ctx, st, out, ErrUnavailable, time.Second)
			return
		}
	}
	// 13. Hand over to the flow engine.
	st.eventID = g.ids.next(st.eventID[:0], now.UnixMilli())
	st.loop = appendLoopHeader(st.loop[:0], loopIn, r.loopSelf)
	if need := len(st.body) + bigSlack; need > maxPooledBody {
		g.reserve(&st.event, &st.pooledEvent, need, rs.maxBody)
	}
	st.event = g.appendEvent(st.event[:0], st, r, now, kw, clientToken, client, loopIn, st.body)
	fwdStart := time.Now()
	err := g.fwd.Forward(st.eventID, st.loop, st.event, fwdStart)
	g.m.fwdDuration.observe(time.Since(fwdStart))
	if err != nil {
		g.m.forwardFailure(err)
		if st.hasClaimed {
			g.tokens.Release(st.claimed)
			st.hasClaimed = false
		}
		out.reason = err.Error()
		g.refuse(ctx, st, out, ErrUnavailable, time.Second)
		return
	}
	if st.hasClaimed {
		g.tokens.Done(st.claimed, mono)
		st.hasClaimed = false
	}
	st.resp = appendAccepted(st.resp[:0], st.eventID)
	g.answer(ctx, fasthttp.StatusOK, st.resp)
}

// rateLimited answers 429 for scope's bucket.
func (g *Gateway) rateLimited(ctx *fasthttp.RequestCtx, st *reqState, out *outcome, scope limiter.Scope, wait time.Duration) {
	g.m.limited[scope].Inc()
	g.refuse(ctx, st, out, ErrRateLimited, wait)
}

// checkBody runs rows 9 to 11 of SPEC §3: the body read under the cap
// (and the signature's MAC over it), valid JSON, and the keywords. It
// returns the refusal of the first row that fails, or the index of the
// keyword found and whether one was (hit false: a keyword miss).
//
// The keywords of a large or chunked body are searched in each piece as
// it is read, so it is scanned while in the cache rather than in a second
// pass; a small body arrives in one read, and one Match over it costs less
// than the Scanner's bookkeeping.
func (g *Gateway) checkBody(ctx *fasthttp.RequestCtx, st *reqState, out *outcome, r *route, rs *routes, cl int) (e *Refusal, kw int, hit bool) {
	st.scanning = cl < 0 || cl > streamScanMin
	if st.scanning {
		st.scan.Reset(r.match)
	}
	// A body read to its end, or cut short (the connection then closes),
	// leaves nothing to drain; one over the cap is chunked and drained.
	out.unread = 0
	if e := g.readBody(ctx, st, cl, rs.maxBody); e != nil {
		if e == ErrTooLarge {
			out.unread = unreadChunked
		}
		out.bodyLen = len(st.body)
		return e, 0, false
	}
	out.bodyLen = len(st.body)
	if st.sigActive {
		st.sigActive = false
		if err := st.sig.Finish(); err != nil {
			out.reason = err.Error()
			ctx.Response.Header.SetCanonical(strWWWAuthenticate, strBearerChallenge)
			return ErrCredential, 0, false
		}
	}
	if !validJSON(st.body) {
		return ErrInvalidJSON, 0, false
	}
	if st.scanning {
		kw, hit = st.scan.Result()
	} else {
		kw, hit = r.match.Match(st.body)
	}
	return nil, kw, hit
}

// targetPath returns the path of an HTTP request-target: origin form
// ("/p?q") up to its query, or the path of an absolute form
// ("http://host/p?q"); empty when there is none.
func targetPath(uri []byte) []byte {
	if len(uri) > 0 && uri[0] != '/' {
		// Absolute form: the path starts at the first '/' after "//".
		i := bytes.Index(uri, strSchemeSep)
		if i < 0 {
			return nil
		}
		uri = uri[i+len(strSchemeSep):]
		j := bytes.IndexByte(uri, '/')
		if j < 0 {
			return nil
		}
		uri = uri[j:]
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	if i := bytes.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i]
	}
	return uri
}

var strSchemeSep = []byte("://")

// readBody reads the request body into st.body through a limit of max+1
// bytes, so a body without Content-Length can't exceed the cap either.
// Each chunk read is fed to the signature check as it arrives.
func (g *Gateway) readBody(ctx *fasthttp.RequestCtx, st *reqState, cl, max int) *Refusal {
	stream := ctx.RequestBodyStream()
	if stream == nil {
		g.reserve(&st.body, &st.pooledBody, len(ctx.Request.Body()), max)
		st.body = append(st.body[:0], ctx.Request.Body()...)
		st.feed(st.body)
		return nil
	}
	if cl >= 0 {
		g.reserve(&st.body, &st.pooledBody, cl, max)
		st.body = st.body[:cl]
		for off := 0; off < cl; {
			n, err := stream.Read(st.body[off:])
			st.feed(st.body[off : off+n])
			off += n
			if off == cl {
				break
			}
			if err != nil || n == 0 && off < cl {
				if err == nil {
					continue
				}
				ctx.SetConnectionClose()
				return ErrInvalidJSON // truncated: the body can't be valid
			}
		}
		return nil
	}
	// Chunked: read until EOF, refusing the byte past the cap.
	b := st.body[:0]
	for {
		if len(b) == cap(b) {
			if len(b) > max {
				st.body = b
				return ErrTooLarge
			}
			st.body = b
			g.reserve(&st.body, &st.pooledBody, len(b)+1, max)
			b = st.body
		}
		limit := min(cap(b), max+1)
		n, err := stream.Read(b[len(b):limit])
		st.feed(b[len(b) : len(b)+n])
		b = b[:len(b)+n]
		if len(b) > max {
			st.body = b
			return ErrTooLarge
		}
		if err == io.EOF {
			st.body = b
			return nil
		}
		if err != nil {
			st.body = b
			ctx.SetConnectionClose()
			return ErrInvalidJSON
		}
	}
}

// reserve makes room in *buf for need bytes in all, keeping what it
// holds. Up to maxPooledBody the state's own buffer grows, at least
// doubling; past it a buffer is borrowed from the gateway's bigBuffers and
// the state's own set aside in *keep until the request ends. So a buffer
// is over maxPooledBody exactly when it is borrowed. A new big buffer is
// sized by need, bounded by maxBody (bigBufferFor).
func (g *Gateway) reserve(buf, keep *[]byte, need, maxBody int) {
	if cap(*buf) < need { // inlined: most requests stop here
		g.grow(buf, keep, need, maxBody)
	}
}

// grow is reserve's work when *buf lacks the room.
func (g *Gateway) grow(buf, keep *[]byte, need, maxBody int) {
	old := *buf
	var nb []byte
	if need <= maxPooledBody {
		nb = make([]byte, len(old), min(max(need, 2*cap(old), minBodyBuffer), maxPooledBody))
	} else {
		nb = g.big.get(need, bigBufferFor(need, maxBody))[:len(old)]
	}
	copy(nb, old)
	switch {
	case cap(old) > maxPooledBody:
		g.big.put(old) // only once copied: another request may take it
	case cap(nb) > maxPooledBody:
		*keep = old[:0]
	}
	*buf = nb
}

// minBodyBuffer is the least a chunked body's buffer grows to.
const minBodyBuffer = 4 << 10

// feed passes body bytes, as they are read, to the keyword scan and to
// the signature check when one is running.
func (st *reqState) feed(p []byte) {
	if st.scanning {
		st.scan.Write(p)
	}
	if st.sigActive && len(p) > 0 {
		st.sig.Write(p)
	}
}

// refuse answers with a refusal and records it as the request's outcome.
// wait, when positive, becomes Retry-After in whole seconds (at least 1);
// 429 and 503 always carry it.
func (g *Gateway) refuse(ctx *fasthttp.RequestCtx, st *reqState, out *outcome, e *Refusal, wait time.Duration) {
	out.refusal = e
	if e.Status == fasthttp.StatusTooManyRequests || e.Status == fasthttp.StatusServiceUnavailable {
		secs := int64((wait + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		st.scratch = strconv.AppendInt(st.scratch[:0], secs, 10)
		ctx.Response.Header.SetCanonical(strRetryAfter, st.scratch)
	}
	g.answer(ctx, e.Status, e.body)
}

func (g *Gateway) answer(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(strApplicationJSON)
	ctx.Response.SetBody(body)
}

func constantTimeEqual(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// slotOf maps a request's outcome to its counter slot.
func slotOf(out *outcome) int {
	if out.refusal != nil {
		return out.refusal.slot
	}
	switch out.reason {
	case reasonKeywordMiss:
		return slotKeywordMiss
	case reasonDuplicate:
		return slotDuplicate
	}
	return slotTriggered
}

const (
	reasonKeywordMiss = "keyword miss"
	reasonDuplicate   = "duplicate"
)

// account counts the request and writes its log line.
func (g *Gateway) account(ctx *fasthttp.RequestCtx, st *reqState, out *outcome) {
	slot := slotOf(out)
	stats := g.m.unknown
	if out.r != nil {
		stats = out.r.stats
	}
	stats.inc(slot)
	// One monotonic clock read: time.Now would read the wall clock too,
	// which costs as much again on some virtual machines.
	start := out.start
	latency := time.Since(start)
	g.m.duration.observe(latency)
	if out.bodyLen > 0 {
		g.m.bodyBytes.Add(float64(out.bodyLen))
	}
	g.logRequest(st, out, stats, slot, start.Add(latency), latency)
}

// logLevel is the level of a request's log line: info for code 0
// (accepted, keyword miss, duplicate), error for failures, debug for
// every other refusal, the loop guard's 508 among them.
func logLevel(out *outcome) zapcore.Level {
	switch {
	case out.refusal == nil:
		return zapcore.InfoLevel
	case failure(out.refusal.Code):
		return zapcore.ErrorLevel
	}
	return zapcore.DebugLevel
}

// logRequest writes the request's one log line: accepted events, keyword
// misses and duplicates at info, refusals at debug, failures (5xx) at
// error; sampled per (automation, outcome); never a token, credential or
// body.
func (g *Gateway) logRequest(st *reqState, out *outcome, stats *routeStats, slot int, now time.Time, latency time.Duration) {
	lvl := logLevel(out)
	if !g.log.Core().Enabled(lvl) {
		return
	}
	// Sampled as the live configuration says: a reload may change it.
	l := &g.routes.Load().cfg.Log
	if !stats.sampler[slot].allow(now.Unix(), int64(l.SampleFirst), int64(l.SampleThereafter)) {
		g.m.logSampled.Inc()
		return
	}
	ce := g.log.Check(lvl, "request")
	if ce == nil {
		return
	}
	f := st.fields[:0]
	if out.r != nil {
		f = append(f, zap.String("automation", out.r.id), zap.String("table", out.r.table))
	}
	f = append(f,
		zap.Int("code", int(out.code())),
		zap.Int("status", out.status()),
		zap.Duration("latency_ms", latency),
		zap.Int("body_bytes", out.bodyLen),
	)
	if len(st.eventID) > 0 {
		f = append(f, zap.String("event_id", b2s(st.eventID)))
	}
	if out.client.IsValid() {
		st.scratch = out.client.AppendTo(st.scratch[:0])
		f = append(f, zap.String("client_ip", b2s(st.scratch)))
	}
	if out.reason != "" {
		f = append(f, zap.String("reason", out.reason))
	}
	st.fields = f
	ce.Write(f...)
}

// Reload swaps in a new configuration. Requests in flight finish on the
// routes they started with; rate-limit buckets of automations and tables
// that still exist keep their state; a removed automation answers 404 and
// a rotated token stops working from the next request on. Settings
// applied only at start keep their running values, cfg's are returned as
// pending (RestartOnlyChanges) and take effect when the process restarts.
// An invalid cfg is refused whole.
func (g *Gateway) Reload(cfg *Config) (pending []string, err error) {
	prev := g.routes.Load()
	next := keepStartOnly(prev.cfg, cfg)
	pending = RestartOnlyChanges(prev.cfg, cfg)
	level, err := zapcore.ParseLevel(next.Log.Level)
	if err != nil { // validated by Load; a Config built by hand may not be
		g.m.reloads[1].Inc()
		return nil, &ConfigError{Problems: []string{fmt.Sprintf("log.level: %q is not debug, info, warn or error", next.Log.Level)}}
	}
	if g.level == nil && next.Log.Level != prev.cfg.Log.Level {
		pending = append(pending, fmt.Sprintf("log.level: %q (running: %q); %s", next.Log.Level, prev.cfg.Log.Level, appliedAtStart))
		next.Log.Level = prev.cfg.Log.Level
	}
	rs, err := compile(next, prev, g.m)
	if err != nil {
		g.m.reloads[1].Inc()
		return nil, err
	}
	if g.level != nil {
		g.level.SetLevel(level)
	}
	g.routes.Store(rs)
	keep := make(map[string]bool, len(rs.list))
	for _, r := range rs.list {
		keep[r.id] = true
	}
	g.m.prune(keep)
	g.m.reloads[0].Inc()
	g.m.generation.Set(float64(g.generation.Add(1)))
	g.m.restartPending.Set(float64(len(pending)))
	return pending, nil
}

// Generation returns the generation of the configuration being served: 1
// at start, one more per successful reload.
func (g *Gateway) Generation() uint64 { return g.generation.Load() }

// janitor returns the memory of big bodies to the operating system: after
// each interval with big bodies it lets go of the kept buffers that went
// unused all through it, and after an interval without any it lets go of
// them all. A mostly allocation-free request path would otherwise leave
// that garbage uncollected for minutes.
func (g *Gateway) janitor(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var seen uint64
	busy := false
	for {
		select {
		case <-g.stopJanitor:
			return
		case <-t.C:
			n := g.bigBodies.Load()
			switch {
			case n != seen:
				seen, busy = n, true
				if g.big.trim() > 0 {
					debug.FreeOSMemory()
				}
			case busy:
				busy = false
				g.big.drain()
				debug.FreeOSMemory()
			}
		}
	}
}

// Close stops the Gateway's background work. Serving must have stopped.
func (g *Gateway) Close() {
	close(g.stopJanitor)
}

// forwardedFor returns the X-Forwarded-For lines and, when there are none,
// the last X-Real-IP line, for clientAddr. They are the header's own
// bytes; the lines' slice is reused by the header's next PeekAll.
func forwardedFor(hdr *fasthttp.RequestHeader) (xff [][]byte, realIP []byte) {
	if xff = hdr.PeekAll(b2s(strXFF)); len(xff) > 0 {
		return xff, nil
	}
	if ips := hdr.PeekAll(b2s(strXRealIP)); len(ips) > 0 {
		return nil, ips[len(ips)-1]
	}
	return nil, nil
}

// loopMarker returns the request's Hookgate-Loop value. Its lines form one
// list (RFC 9110 §5.3), so an id in a line a step added of its own still
// counts: several lines are joined with ',' into *joined. Most requests
// carry no marker, and PeekAll costs them 9 % of a keyword miss's handler
// time (BenchmarkHandler), so it is asked only when there is a first
// line. An empty first line is there (not nil: fasthttp keeps an empty
// value as an empty slice), so the lines after it still count.
func loopMarker(hdr *fasthttp.RequestHeader, joined *[]byte) []byte {
	if hdr.PeekCanonical(strLoop) == nil {
		return nil
	}
	lines := hdr.PeekAll(b2s(strLoop))
	if len(lines) == 1 {
		return lines[0]
	}
	b := (*joined)[:0]
	for i, l := range lines {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l...)
	}
	*joined = b
	return b
}
