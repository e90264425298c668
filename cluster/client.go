package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// Defaults of Config's zero fields.
const (
	DefaultTimeout       = 200 * time.Millisecond
	DefaultPrefix        = "hookgate:"
	DefaultWindow        = 3 * time.Hour
	DefaultInFlightTTL   = time.Minute
	DefaultRetryInterval = 100 * time.Millisecond
	DefaultCacheSize     = 1 << 16
)

// Config says how to reach Redis and how to lay out and age the keys.
// Zero fields take the defaults above.
type Config struct {
	// URL is redis://[[user]:password@]host:port/db (rediss:// for TLS).
	// The password never appears in errors or logs.
	URL string
	// Timeout bounds every command, connecting included: no request
	// waits longer than this on Redis, plus at most an eighth (commands
	// starting close together share a deadline). Default 200ms.
	Timeout time.Duration
	// Prefix starts every key, so several deployments can share one
	// Redis. Default "hookgate:". It must not contain '{' or '}', which
	// would break the hash tags that keep a table's keys on one
	// Redis Cluster slot.
	Prefix string
	// Window is how long a Client-Token stays done: the same token for
	// the same automation triggers at most once within it. Default 3h.
	Window time.Duration
	// InFlightTTL is how long a claimed token stays in flight when
	// neither Done nor Release follows (the gateway holding it crashed,
	// or lost Redis at that moment). It must be longer than the longest
	// request — body read plus the flow engine's timeout — or a slow
	// request's token could be claimed a second time; twice the
	// downstream timeout is a good value. Default 1m.
	InFlightTTL time.Duration
	// RetryInterval is how long, after a failed command, requests do not
	// ask Redis (rate limits use the local buckets, claims answer
	// Unavailable) before one request probes it again. It keeps an
	// unreachable Redis from costing every request its Timeout.
	// Default 100ms.
	RetryInterval time.Duration
	// CacheSize is how many done tokens the in-process cache keeps in
	// front of Redis; negative turns the cache off. Default 65536.
	CacheSize int
	// Log receives one warning when Redis becomes unavailable and one
	// notice when it is back, and failures of Done and Release.
	// Nil logs nothing.
	Log *zap.Logger
}

// Stats are the Client's counters since Open, for metrics. All are
// monotonic except Down.
type Stats struct {
	// RoundTrips counts commands sent to Redis, each one request and
	// one reply; concurrent ones share network writes (pipelining). A
	// script Redis lost after a restart costs one more, not counted.
	RoundTrips uint64
	// Errors counts commands that failed or timed out.
	Errors uint64
	// Fallbacks counts rate-limit decisions taken on the local buckets
	// because Redis could not answer.
	Fallbacks uint64
	// LocalDenials counts requests refused by a local note of a bucket
	// Redis had refused, without asking Redis.
	LocalDenials uint64
	// CacheHits counts Claims answered Duplicate by the in-process cache
	// of done tokens, without asking Redis.
	CacheHits uint64
	// Unavailable counts Claims answered Unavailable.
	Unavailable uint64
	// DoneMarks counts the done marks sent (each also one of RoundTrips)
	// and MarkBatches the pipelined batches they went in, after the
	// answers (see Tokens.Done): RoundTrips - DoneMarks + MarkBatches is
	// the round trips taken.
	DoneMarks, MarkBatches uint64
	// Down is true while Redis is taken to be unavailable.
	Down bool
}

// Client is the connection to Redis shared by a Limiter and a Tokens.
// It is safe for concurrent use.
type Client struct {
	rdb           rueidis.Client
	timeout       time.Duration
	retryInterval time.Duration
	log           *zap.Logger
	epoch         time.Time // origin of the monotonic instants below
	deadlines     *deadlines

	// retryAt is the monotonic instant (ns since epoch) before which
	// Redis is not asked; 0 while Redis answers.
	retryAt atomic.Int64
	// down is whether an outage was logged and not yet its end.
	down      atomic.Bool
	downSince atomic.Int64 // monotonic ns since epoch

	roundTrips, errors, fallbacks, localDenials, cacheHits, unavailable atomic.Uint64
	doneMarks, markBatches                                              atomic.Uint64

	limiter *Limiter
	tokens  *Tokens

	closeOnce sync.Once
	closed    atomic.Bool // calls failing after Close are not an outage
}

// Open checks cfg and connects to Redis. A Redis that cannot be reached
// at once is not an error: the Client starts unavailable (limits local,
// claims refused) and connects when Redis comes up. An unparsable URL,
// a refused password or a bad field is. Errors name the field and show
// the URL with its password redacted.
func Open(cfg Config) (*Client, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.InFlightTTL == 0 {
		cfg.InFlightTTL = DefaultInFlightTTL
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("cluster.timeout: %s is negative", cfg.Timeout)
	case strings.ContainsAny(cfg.Prefix, "{}"):
		return nil, fmt.Errorf("cluster.prefix: %q has '{' or '}', which Redis Cluster reads as a hash tag", cfg.Prefix)
	case cfg.Window < time.Millisecond:
		return nil, fmt.Errorf("idempotency_window: %s is under 1ms", cfg.Window)
	case cfg.InFlightTTL < time.Millisecond:
		return nil, fmt.Errorf("cluster.in_flight_ttl: %s is under 1ms", cfg.InFlightTTL)
	case cfg.RetryInterval < 0:
		return nil, fmt.Errorf("cluster.retry_interval: %s is negative", cfg.RetryInterval)
	}
	shown, err := redactURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	opt, err := rueidis.ParseURL(cfg.URL)
	if err != nil { // rueidis' messages name the scheme, path or db, never the password
		return nil, fmt.Errorf("cluster.redis_url: %s: %w", shown, err)
	}
	// A connection attempt waits for the first caller's context while
	// concurrent callers wait for it, so it gets the same bound.
	if opt.Dialer.Timeout <= 0 || opt.Dialer.Timeout > cfg.Timeout {
		opt.Dialer.Timeout = cfg.Timeout
	}
	// Unanswered pipelined commands are given up by their contexts; this
	// also closes a connection to a Redis that stopped answering, so it
	// is redialled soon after Redis is back.
	if opt.ConnWriteTimeout <= 0 {
		opt.ConnWriteTimeout = max(10*cfg.Timeout, time.Second)
	}
	opt.DisableCache = true // no client-side caching: no CLIENT TRACKING
	// Pipeline every command on one connection and let it collect the
	// commands of concurrent requests for up to 50 µs before it writes
	// them, so a busy gateway sends many commands per write system call (a
	// profile under load had a fifth of the gateway's time in those
	// writes). rueidis' defaults — two connections on two cores, no delay
	// — spread the same commands over more, smaller writes. The delay only
	// applies while several commands wait, so a lone request is not held.
	// Measured on the cluster accept scenario, five runs each, median
	// gateway CPU per request: 60 µs with two connections and 20 µs, 60 µs
	// with one and 20 µs, 51 µs with one and 50 µs. The price is latency
	// at light load, where Go's timers wake up to a millisecond late once
	// the process idles: the scenario's open loop at 2,000 req/s had a p99
	// of 2.1 / 2.5 ms against 1.8 / 1.8 ms with 10 µs or no window.
	// Throughput under load did not differ between the three.
	if opt.PipelineMultiplex == 0 {
		opt.PipelineMultiplex = -1 // 2^0 connections; 0 means "by GOMAXPROCS"
	}
	if opt.MaxFlushDelay == 0 {
		opt.MaxFlushDelay = 50 * time.Microsecond
	}
	if opt.ClientName == "" {
		opt.ClientName = "hookgate"
	}

	rdb, err := rueidis.NewClient(opt)
	start := time.Now()
	unreachable := false
	if err != nil {
		if !isNetError(err) {
			return nil, fmt.Errorf("cluster.redis_url: %s: %w", shown, err)
		}
		// Redis is down at start. Only a single-node client can be made
		// without talking to it (Redis Cluster needs its topology): it
		// connects on first use.
		opt.ForceSingleClient = true
		rdb, err = rueidis.NewClient(opt)
		if rdb == nil {
			return nil, fmt.Errorf("cluster.redis_url: %s: %w", shown, err)
		}
		unreachable = err != nil
	}
	c := &Client{
		rdb:           rdb,
		timeout:       cfg.Timeout,
		retryInterval: cfg.RetryInterval,
		log:           cfg.Log,
		epoch:         start,
		deadlines:     newDeadlines(cfg.Timeout, start),
	}
	c.limiter = newLimiter(c, cfg.Prefix)
	c.tokens, err = newTokens(c, cfg)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	if unreachable {
		c.failed(err)
	}
	return c, nil
}

// redactURL returns the URL to show in errors and logs: with its password
// replaced by "xxxxx", or nothing of it when it cannot be parsed, since the
// parser's own message quotes it whole.
func redactURL(s string) (string, error) {
	if s == "" {
		return "", errors.New("cluster.redis_url: is empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("cluster.redis_url: cannot parse it as redis://[[user]:password@]host:port/db")
	}
	return u.Redacted(), nil
}

// CheckURL reports what Open's Redis client refuses in a URL that parses
// as redis://host: a path or db that is not a number, a bad timeout or
// skip_verify. Its messages quote those parts, never the password, so a
// configuration check can show them.
func CheckURL(s string) error {
	_, err := rueidis.ParseURL(s)
	return err
}

// isNetError tells a Redis that could not be reached from one that
// answered with an error (a wrong password, say).
func isNetError(err error) bool {
	if _, ok := rueidis.IsRedisErr(err); ok {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Limiter returns the fleet-wide rate limiter.
func (c *Client) Limiter() *Limiter { return c.limiter }

// Tokens returns the fleet-wide Client-Token store.
func (c *Client) Tokens() *Tokens { return c.tokens }

// Close sends the queued done marks (see Tokens.Done), then closes the
// connections and the token cache. Call it once the gateway has stopped
// serving: no call may be in progress or come after (the cache does not
// survive that). It is safe to call more than once.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		c.tokens.close() // sends the queued done marks first
		c.closed.Store(true)
		c.rdb.Close()
	})
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{
		RoundTrips:   c.roundTrips.Load(),
		Errors:       c.errors.Load(),
		Fallbacks:    c.fallbacks.Load(),
		LocalDenials: c.localDenials.Load(),
		CacheHits:    c.cacheHits.Load(),
		Unavailable:  c.unavailable.Load(),
		DoneMarks:    c.doneMarks.Load(),
		MarkBatches:  c.markBatches.Load(),
		Down:         c.down.Load(),
	}
}

// mono is the monotonic time since Open in nanoseconds, at least 1.
func (c *Client) mono() int64 { return max(int64(time.Since(c.epoch)), 1) }

// ask says whether to send a command to Redis now: always while Redis
// answers; during an outage, once per RetryInterval (the probe), so the
// other requests do not each wait for Timeout.
func (c *Client) ask() bool {
	r := c.retryAt.Load()
	if r == 0 {
		return true
	}
	now := c.mono()
	return now >= r && c.retryAt.CompareAndSwap(r, now+int64(c.retryInterval))
}

// ctx returns the context of one command: it ends between Timeout and
// an eighth more from now (see deadlines).
func (c *Client) ctx() *slotCtx { return c.deadlines.get() }

// failed records a failed command: Redis is not asked again before
// RetryInterval, and the first failure of an outage is logged.
func (c *Client) failed(err error) {
	c.errors.Add(1)
	now := c.mono()
	c.retryAt.Store(now + int64(c.retryInterval))
	if !c.closed.Load() && c.down.CompareAndSwap(false, true) {
		c.downSince.Store(now)
		c.log.Warn("redis unavailable: rate limits fall back to each gateway's own buckets, client-token claims are refused",
			zap.Error(err))
	}
}

// answered records a command Redis answered, ending an outage.
func (c *Client) answered() {
	if c.retryAt.Load() == 0 {
		return
	}
	c.retryAt.Store(0)
	if c.down.CompareAndSwap(true, false) {
		c.log.Info("redis available again",
			zap.Duration("outage", time.Duration(c.mono()-c.downSince.Load())),
			zap.Uint64("fallbacks", c.fallbacks.Load()),
			zap.Uint64("unavailable", c.unavailable.Load()))
	}
}
