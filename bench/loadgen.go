package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Header is one request header.
type Header struct {
	Key, Value []byte
}

// Request is one prepared request. Its slices are shared read-only by every
// connection for the whole run: don't change them while a run uses them.
type Request struct {
	// URI is the path (and query), e.g. /webhook/flow/{token}.
	URI    []byte
	Header []Header
	// Body is sent as application/json, without copying.
	Body []byte
	// UniqueClientToken adds a Client-Token header that no other request
	// of any run carries.
	UniqueClientToken bool
}

// Target is where and what a run sends.
type Target struct {
	// Addr is host:port, e.g. 127.0.0.1:8080.
	Addr string
	// Requests are cycled by every connection, each starting at its own
	// offset so the connections spread over them.
	Requests []Request
}

// Load is how a run sends.
type Load struct {
	// Conns is the number of keep-alive connections, each driven by its own
	// goroutine with one request outstanding (no pipelining).
	Conns int
	// Duration is the measured window.
	Duration time.Duration
	// Warmup is sent before the measured window and not recorded.
	Warmup time.Duration
	// Rate, when > 0, makes the run open loop: Rate requests per second
	// over all connections (see Schedule), latency measured from each
	// request's intended send time. 0 runs closed loop: each connection
	// sends its next request as soon as it has the previous answer.
	Rate float64
	// Timeout bounds one request's write and its answer's read. Default 10s.
	Timeout time.Duration
	// LateAfter is how far past its intended time an open-loop request may
	// be sent before it counts as late. Default 1ms.
	LateAfter time.Duration
	// AtWindow, when set, is called as the measured window opens, on a
	// goroutine of its own.
	AtWindow func()
}

// Result is one run's numbers.
type Result struct {
	// Mode is "closed" or "open".
	Mode  string `json:"mode"`
	Conns int    `json:"conns"`
	// Rate is the open-loop arrival rate asked for, requests/s.
	Rate float64 `json:"rate,omitempty"`
	// Elapsed runs from the start of the measured window to the last
	// answer of the run.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Answers are requests sent in the measured window and answered with
	// any HTTP status, whenever the answer came.
	Answers uint64 `json:"answers"`
	// RPS is Answers per second of the measured window (Load.Duration),
	// not of Elapsed: the answers that come after the window are those of
	// requests it sent, while the requests still in flight as it opened,
	// sent in the warm-up, are not counted, so in a steady run the two
	// ends cancel out, and one late answer cannot dilute a whole window.
	RPS float64 `json:"rps"`
	// Latency is from send (closed loop) or from the intended send time
	// (open loop) to the whole answer read; failed requests are not in it.
	// In the open loop so are the Unsent requests, each with how long it
	// had waited when the run ended, a lower bound of its latency.
	Latency Percentiles `json:"latency_ns"`
	// Status counts answers by HTTP status, Codes by the answer's "code".
	Status map[string]uint64 `json:"status"`
	Codes  map[string]uint64 `json:"codes"`
	// Errors counts requests that got no answer, by kind; ErrorExamples
	// holds one message per kind.
	Errors        map[string]uint64 `json:"errors,omitempty"`
	ErrorExamples map[string]string `json:"error_examples,omitempty"`
	// Open loop only: requests sent in the measured window, those sent
	// later than LateAfter past their intended time, and those due in the
	// window but never sent because the run ended first.
	Sent   uint64 `json:"sent,omitempty"`
	Late   uint64 `json:"late,omitempty"`
	Unsent uint64 `json:"unsent,omitempty"`
	// Warmup is the requests sent before the measured window, which are
	// in no other count: with Answers and the errors, every request the
	// run sent.
	Warmup uint64 `json:"warmup_sent,omitempty"`

	// Hist holds the latencies (ns) behind Latency.
	Hist *Histogram `json:"-"`
}

// ErrorCount is the number of requests that got no answer.
func (r *Result) ErrorCount() uint64 {
	var n uint64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

var (
	methodPost     = []byte(fasthttp.MethodPost)
	contentJSON    = []byte("application/json")
	clientTokenKey = []byte("Client-Token")
)

// worker drives one connection. Everything it touches per request is its
// own and reused, so the steady state allocates nothing.
type worker struct {
	hc   *fasthttp.HostClient
	req  *fasthttp.Request
	resp *fasthttp.Response
	host []byte

	reqs []Request
	next int

	ctPrefix []byte // Client-Token prefix unique to this run and connection
	ct       []byte
	seq      uint64

	hist   *Histogram
	counts Counts
	sent   uint64
	warm   uint64 // requests sent in the warm-up
	late   uint64
	unsent uint64
}

func newWorker(t *Target, l *Load, conn int, nonce string) *worker {
	w := &worker{
		hc: &fasthttp.HostClient{
			Addr:                     t.Addr,
			MaxConns:                 1,
			NoDefaultUserAgentHeader: true,
			DisablePathNormalizing:   true,
			ReadTimeout:              l.Timeout,
			WriteTimeout:             l.Timeout,
			MaxResponseBodySize:      1 << 20,
			MaxIdleConnDuration:      time.Minute,
		},
		req:      &fasthttp.Request{},
		resp:     &fasthttp.Response{},
		host:     []byte(t.Addr),
		reqs:     t.Requests,
		next:     conn * len(t.Requests) / l.Conns,
		ctPrefix: fmt.Appendf(nil, "hb-%s-%d-", nonce, conn),
		hist:     NewHistogram(),
	}
	return w
}

// prepare fills w.req with the next request of the cycle.
func (w *worker) prepare() {
	r := &w.reqs[w.next]
	w.next++
	if w.next == len(w.reqs) {
		w.next = 0
	}
	req := w.req
	req.Reset()
	req.Header.SetHostBytes(w.host)
	req.Header.SetMethodBytes(methodPost)
	req.Header.SetContentTypeBytes(contentJSON)
	req.SetRequestURIBytes(r.URI)
	for i := range r.Header {
		req.Header.SetBytesKV(r.Header[i].Key, r.Header[i].Value)
	}
	if r.UniqueClientToken {
		w.seq++
		w.ct = strconv.AppendUint(append(w.ct[:0], w.ctPrefix...), w.seq, 36)
		req.Header.SetBytesKV(clientTokenKey, w.ct)
	}
	req.SetBodyRaw(r.Body)
}

// do sends the prepared request and returns its error.
func (w *worker) do() error {
	return w.hc.Do(w.req, w.resp)
}

// record counts one finished request.
func (w *worker) record(lat time.Duration, err error) {
	if err != nil {
		w.counts.Error(err)
		return
	}
	w.hist.Record(int64(lat))
	w.counts.Answer(w.resp.StatusCode(), w.resp.Body())
}

// backoff keeps a worker from spinning on a refused connection.
func backoff(err error) {
	if err != nil && Classify(err) == ErrRefused {
		time.Sleep(10 * time.Millisecond)
	}
}

// closedLoop sends back to back until end (an offset from t0); requests
// started before warm are not recorded.
func (w *worker) closedLoop(ctx context.Context, t0 time.Time, warm, end time.Duration) {
	done := ctx.Done()
	for {
		select {
		case <-done:
			return
		default:
		}
		start := time.Since(t0)
		if start >= end {
			return
		}
		w.prepare()
		err := w.do()
		lat := time.Since(t0) - start
		if start >= warm {
			w.record(lat, err)
		} else {
			w.warm++
		}
		backoff(err)
	}
}

// openLoop sends connection conn's share of sched until end (an offset from
// t0). A request is sent when the pacer releases it at its intended time,
// or at once when the connection is behind; its latency runs from the intended time, so a stall
// shows in every request it delayed. Requests due before warm are not
// recorded; those due in [warm, end) but not sent by end count as unsent
// (see giveUp).
func (w *worker) openLoop(ctx context.Context, t0 time.Time, p *pacer, conn int, warm, end, lateAfter time.Duration) {
	done := ctx.Done()
	sched := p.sched
	firstMeasured := sched.Due(conn, warm)
	for k := 0; ; k++ {
		due := sched.Offset(conn, k)
		if due >= end {
			return
		}
		now := end
		if p.wait(done, conn, k) {
			select {
			case <-done:
			default:
				now = time.Since(t0)
			}
		}
		if now >= end {
			w.giveUp(t0, sched, conn, max(k, firstMeasured), sched.Due(conn, end))
			return
		}
		measured := k >= firstMeasured
		if measured {
			w.sent++
			if Late(due, now, lateAfter) {
				w.late++
			}
		} else {
			w.warm++
		}
		w.prepare()
		err := w.do()
		if measured {
			w.record(time.Since(t0)-due, err)
		}
		backoff(err)
	}
}

// giveUp counts connection conn's requests from, from+1, …, to-1 as
// unsent: due in the measured window, not sent by its end. Each that was
// due by now goes into the histogram with how long it had waited, a lower
// bound of its latency: left out, the stall that kept them from being sent
// at the end of a run would hide as it does in a closed loop. (Those not
// yet due are possible only when the run was cancelled.)
func (w *worker) giveUp(t0 time.Time, sched Schedule, conn, from, to int) {
	now := time.Since(t0)
	for k := from; k < to; k++ {
		w.unsent++
		if due := sched.Offset(conn, k); due <= now {
			w.hist.Record(int64(now - due))
		}
	}
}

// Run sends t's requests as l says and returns the numbers. It stops by
// itself after l.Warmup+l.Duration plus at most one request's l.Timeout,
// or sooner when ctx ends (then it returns what it measured and ctx's
// error).
func (l Load) Run(ctx context.Context, t Target) (*Result, error) {
	if l.Conns <= 0 {
		return nil, fmt.Errorf("conns must be positive, not %d", l.Conns)
	}
	if l.Duration <= 0 {
		return nil, fmt.Errorf("duration must be positive, not %s", l.Duration)
	}
	if len(t.Requests) == 0 {
		return nil, errors.New("no requests to send")
	}
	if l.Rate < 0 {
		return nil, fmt.Errorf("rate must not be negative, not %g", l.Rate)
	}
	if l.Timeout <= 0 {
		l.Timeout = 10 * time.Second
	}
	if l.LateAfter <= 0 {
		l.LateAfter = time.Millisecond
	}
	var nb [6]byte
	_, _ = rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])

	workers := make([]*worker, l.Conns)
	for i := range workers {
		workers[i] = newWorker(&t, &l, i, nonce)
	}
	warm, end := l.Warmup, l.Warmup+l.Duration
	sched := Schedule{Rate: l.Rate, Conns: l.Conns}
	var wg sync.WaitGroup
	t0 := time.Now()
	if l.AtWindow != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(warm):
			case <-ctx.Done():
			}
			l.AtWindow()
		}()
	}
	var p *pacer
	if l.Rate > 0 {
		p = newPacer(sched)
		wg.Go(func() { p.run(ctx, t0, end) })
	}
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p != nil {
				w.openLoop(ctx, t0, p, i, warm, end, l.LateAfter)
			} else {
				w.closedLoop(ctx, t0, warm, end)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0) - warm

	res := &Result{Mode: "closed", Conns: l.Conns, Elapsed: elapsed, Hist: NewHistogram()}
	if l.Rate > 0 {
		res.Mode, res.Rate = "open", l.Rate
	}
	var c Counts
	for _, w := range workers {
		res.Hist.Merge(w.hist)
		c.Merge(&w.counts)
		res.Sent += w.sent
		res.Late += w.late
		res.Unsent += w.unsent
		res.Warmup += w.warm
		w.hc.CloseIdleConnections()
	}
	res.Answers = c.Answers()
	res.RPS = float64(res.Answers) / l.Duration.Seconds()
	res.Latency = res.Hist.Percentiles()
	res.Status, res.Codes = c.Status(), c.Codes()
	if c.Errors() > 0 {
		res.Errors, res.ErrorExamples = c.ErrorKinds()
	}
	return res, ctx.Err()
}
