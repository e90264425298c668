package cluster

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/hookgate/hookgate/idempotency"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// releaseScript deletes a token only while it is in flight for the claim
// releasing it (ARGV[1], the key's value as that claim set it): a token
// done must not trigger again, whoever asks, and a later claim is not the
// releaser's to free. So the script may run twice (rueidis sends it again
// when a connection fails before its answer) and a claim that lapsed may
// be released late, without freeing a claim made meanwhile.
const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

var errBadReply = errors.New("unexpected reply from redis")

// Tokens is the fleet-wide gateway.TokenStore: each (automation,
// Client-Token) pair is one Redis key, set in flight with SET NX, then done
// for the window or deleted. It is safe for concurrent use.
//
// A claimed token stays in flight for Config.InFlightTTL unless Done
// (which keeps it for the window) or Release (which deletes it) comes
// first, so a gateway that crashed holding a token blocks it for that
// long, not for the whole window.
//
// Tokens Redis reported done are also kept in an in-process cache, which
// answers a repeated Claim Duplicate without Redis. The cache may drop an
// entry at any time (a full or busy cache refuses writes); that costs one
// round trip, never a wrong answer, since entries never outlive the Redis
// key. A token is cached when a Claim of it finds it done, not when Done
// marks it: most tokens are never sent twice, and admitting each into
// ristretto cost a tenth of the gateway's time in cluster mode, while a
// repeated token costs one round trip before the cache answers for it.
type Tokens struct {
	c          *Client
	prefix     string
	window     time.Duration
	inFlightMS string
	release    *rueidis.Lua
	marks      doneMarks
	// cache maps Key.Hi to Key.Lo of tokens known done: ristretto keys
	// are one of its scalar types, so the second half of the key is the
	// value and checked on a hit. Nil when turned off.
	cache *ristretto.Cache[uint64, uint64]
}

func newTokens(c *Client, cfg Config) (*Tokens, error) {
	t := &Tokens{
		c:          c,
		prefix:     cfg.Prefix,
		window:     cfg.Window,
		inFlightMS: strconv.FormatInt(cfg.InFlightTTL.Milliseconds(), 10),
		release:    rueidis.NewLuaScriptRetryable(releaseScript),
	}
	t.marks.wake = make(chan struct{}, 1)
	t.marks.stop = make(chan struct{})
	t.marks.stopped = make(chan struct{})
	if cfg.CacheSize > 0 {
		var err error
		t.cache, err = ristretto.NewCache(&ristretto.Config[uint64, uint64]{
			// Ten counters per entry, as ristretto advises for its
			// admission policy: about 3 bytes each.
			NumCounters: 10 * int64(cfg.CacheSize),
			MaxCost:     int64(cfg.CacheSize),
			BufferItems: 64,
			// Cost counts entries, not bytes.
			IgnoreInternalCost: true,
		})
		if err != nil {
			return nil, fmt.Errorf("cluster.cache_size: %d: %w", cfg.CacheSize, err)
		}
	}
	go t.markWriter()
	return t, nil
}

// close sends the queued done marks, stops their writer and closes the
// cache.
func (t *Tokens) close() {
	close(t.marks.stop)
	<-t.marks.stopped
	if t.cache != nil {
		t.cache.Close()
	}
}

// TokenKey returns the key of token for automation: the first 128 bits of
// SHA-256 over the automation id's length (8 bytes, little-endian), the
// id and the token. Every replica computes the same key, which is what
// makes it usable across them; the length prefix keeps ("a", "bc") and
// ("ab", "c") apart. It does not retain token.
func TokenKey(automation string, token []byte) idempotency.Key {
	var stack [256]byte
	b := binary.LittleEndian.AppendUint64(stack[:0], uint64(len(automation)))
	b = append(b, automation...)
	b = append(b, token...)
	sum := sha256.Sum256(b)
	return idempotency.Key{
		Hi: binary.BigEndian.Uint64(sum[0:8]),
		Lo: binary.BigEndian.Uint64(sum[8:16]),
	}
}

// redisKey is the token's key in Redis: the table's id is the hash tag,
// as in its buckets' keys, so that one script may claim the token and
// check the buckets on Redis Cluster too; the 128-bit key, which covers
// the automation, follows in hex.
func (t *Tokens) redisKey(table string, k idempotency.Key) string {
	key, _ := t.claimKey(table, idempotency.Ticket{Key: k}, false)
	return key
}

// claimKey returns tk's key in Redis (see redisKey) and, with value, the
// value that marks it in flight for tk's claim: "i" and the claim in hex.
// Both are cut from one string, so a claim costs one allocation for them.
func (t *Tokens) claimKey(table string, tk idempotency.Ticket, value bool) (key, inFlight string) {
	var h [16]byte
	binary.BigEndian.PutUint64(h[0:8], tk.Key.Hi)
	binary.BigEndian.PutUint64(h[8:16], tk.Key.Lo)
	b := make([]byte, 0, len(t.prefix)+len("ct:{}:")+len(table)+32+1+16)
	b = append(b, t.prefix...)
	b = append(b, "ct:{"...)
	b = append(b, table...)
	b = append(b, "}:"...)
	b = hex.AppendEncode(b, h[:])
	n := len(b)
	if value {
		b = append(b, 'i')
		b = hex.AppendEncode(b, binary.BigEndian.AppendUint64(h[:0], tk.Claim))
	}
	s := string(b)
	return s[:n], s[n:]
}

// newClaim returns a claim id for a Ticket: random, so that claims made
// by different replicas differ too (two claims of one key have the same
// id with a chance of 2^-64), and not 0.
func newClaim() uint64 { return rand.Uint64() | 1 }

// Claim puts token in flight for automation, of table, unless it is in
// flight or done within the window anywhere in the fleet. Of any number
// of concurrent Claims of one pair on any replicas, one gets Claimed. When
// Redis cannot answer within Timeout it returns Unavailable: the caller
// must not trigger. now is unused: Redis keeps the time. Limiter.Admit
// does the same together with a rate check.
func (t *Tokens) Claim(table, automation string, token []byte, now int64) (idempotency.Ticket, idempotency.Result) {
	_, _, tk, res := t.c.limiter.Admit(table, automation, nil, nil, now, token)
	return tk, res
}

// cached says whether the cache knows k done, counting the hit.
func (t *Tokens) cached(k idempotency.Key) bool {
	if t.cache == nil {
		return false
	}
	if lo, ok := t.cache.Get(k.Hi); ok && lo == k.Lo {
		t.c.cacheHits.Add(1)
		return true
	}
	return false
}

// Done marks a claimed token as triggered: Claims of it answer Duplicate
// for the window. It queues the mark and returns; one writer sends the
// marks queued meanwhile to Redis together, so the requests do not each
// wait for a round trip after their hand-over (see doneMarks). Until the
// mark is in Redis — about a round trip — the token is still in flight
// there: a Claim of it anywhere answers InFlight (409, retry), never
// Claimed. When Redis cannot be told, the failure is logged and counted,
// the token is put in this replica's cache, which then answers Duplicate
// while it keeps the token, and the mark is sent again every
// RetryInterval until Redis takes it (see doneMarks). now is unused.
func (t *Tokens) Done(tk idempotency.Ticket, now int64) {
	m := &t.marks
	m.mu.Lock()
	if len(m.queue) >= maxQueuedMarks {
		m.mu.Unlock()
		// Redis is behind: wait for it.
		if failed := t.markDone([]idempotency.Ticket{tk}, nil); len(failed) > 0 {
			m.mu.Lock()
			m.retry = append(m.retry, failed...)
			m.mu.Unlock()
			m.wakeWriter()
		}
		return
	}
	m.queue = append(m.queue, tk)
	first := len(m.queue) == 1
	m.mu.Unlock()
	if first {
		m.wakeWriter()
	}
}

// maxQueuedMarks bounds the done marks waiting for the writer; past it a
// Done sends its own and waits, so a slow Redis slows the requests rather
// than grow the queue.
const maxQueuedMarks = 1 << 14

// maxRetriedMarks bounds the marks kept to be sent again. Claims are
// refused while Redis is unavailable, so only the requests in flight when
// it went away add to them; past the bound the oldest are given up
// (logged), as every mark was before it was retried.
const maxRetriedMarks = 4 * maxQueuedMarks

// doneMarks is the queue of done marks and its writer's signals. Each
// mark is a command of its own (a SET, routed to the token's slot); the
// writer sends all those queued while it was busy in one pipelined batch
// (DoMulti), one write and one wake-up for the lot. A busy gateway so
// batches as many marks as arrive within a round trip, and a quiet one
// sends each at once.
//
// A mark Redis did not take (it was down, or did not answer in time) is
// sent again with the next batch, or after RetryInterval when none
// comes, until Redis takes it or its window has passed: the event was
// delivered, and until the mark lands the token is only in flight in
// Redis, claimable anew once InFlightTTL has passed. A retried mark keeps
// the window counted from its first attempt. A gateway stopped while
// Redis is away sends them once more and gives up on those still
// refused (logged).
type doneMarks struct {
	mu      sync.Mutex // guards queue and retry
	queue   []idempotency.Ticket
	retry   []failedMark  // failed in a Done that sent its own, for the writer
	wake    chan struct{} // a mark was queued into an empty queue
	stop    chan struct{} // closed by close
	stopped chan struct{} // closed by the writer once the queue is sent
}

// failedMark is a done mark Redis did not take, to be sent again.
type failedMark struct {
	tk    idempotency.Ticket
	until time.Time // the end of its window, from its first attempt
}

func (m *doneMarks) wakeWriter() {
	select {
	case m.wake <- struct{}{}:
	default: // the writer is already woken
	}
}

// markWriter sends the queued marks, and again those Redis did not take,
// until close, then those left.
func (t *Tokens) markWriter() {
	m := &t.marks
	defer close(m.stopped)
	var batch []idempotency.Ticket
	var retry []failedMark
	for {
		stopping := false
		var again <-chan time.Time
		if len(retry) > 0 {
			again = time.After(t.c.retryInterval)
		}
		select {
		case <-m.wake:
		case <-again:
		case <-m.stop:
			stopping = true
		}
		m.mu.Lock()
		batch, m.queue = m.queue, batch[:0]
		retry = append(retry, m.retry...)
		clear(m.retry)
		m.retry = m.retry[:0]
		m.mu.Unlock()
		if len(batch) > 0 || len(retry) > 0 {
			retry = t.markDone(batch, retry)
			clear(batch) // drop the ids
		}
		if n := len(retry) - maxRetriedMarks; n > 0 || stopping && len(retry) > 0 {
			if stopping {
				n = len(retry)
			}
			t.c.log.Error("gave up marking client-tokens done in redis; they stay in flight until in_flight_ttl, then could trigger again",
				zap.Int("tokens", n), zap.String("automation", retry[0].tk.Automation))
			retry = slices.Delete(retry, 0, n)
		}
		if stopping {
			return
		}
	}
}

// markDone sets the tokens done in Redis in one pipelined batch: those of
// fresh for the window, those of retry for what is left of theirs. SET is
// idempotent, so rueidis may resend it after a network error within the
// deadline. It returns the marks Redis did not take: each is counted and
// its token cached here as done, and the failures of fresh marks are
// logged (once per batch). A retried mark whose window has passed is
// dropped.
func (t *Tokens) markDone(fresh []idempotency.Ticket, retry []failedMark) []failedMark {
	now := time.Now()
	cmds := make(rueidis.Commands, 0, len(fresh)+len(retry))
	for _, tk := range fresh {
		cmds = append(cmds, t.markCmd(tk, t.window))
	}
	live := retry[:0]
	for _, f := range retry {
		if left := f.until.Sub(now); left >= time.Millisecond {
			cmds = append(cmds, t.markCmd(f.tk, left))
			live = append(live, f)
		}
	}
	retry = live
	ctx := t.c.ctx()
	res := t.c.rdb.DoMulti(ctx, cmds...)
	t.c.roundTrips.Add(uint64(len(cmds)))
	t.c.doneMarks.Add(uint64(len(cmds)))
	t.c.markBatches.Add(1)
	var failed []failedMark
	first := -1
	var firstErr error
	for i, r := range res {
		err := r.Error()
		if err == nil {
			continue
		}
		f := failedMark{until: now.Add(t.window)}
		if i < len(fresh) {
			f.tk = fresh[i]
			if first < 0 {
				first = i
			}
		} else {
			f = retry[i-len(fresh)]
		}
		// The event was delivered: keep the token here at least.
		t.remember(f.tk.Key, time.Until(f.until))
		if len(failed) == 0 {
			firstErr = err
			t.c.failed(err)
		} else {
			t.c.errors.Add(1)
		}
		failed = append(failed, f)
	}
	if len(failed) == 0 {
		t.c.answered()
	}
	if first >= 0 {
		t.c.log.Error("cannot mark client-tokens done in redis; sending them again until it takes them",
			zap.Int("tokens", len(failed)), zap.String("automation", fresh[first].Automation), zap.Error(firstErr))
	}
	return failed
}

// markCmd is the SET that marks tk done for ttl.
func (t *Tokens) markCmd(tk idempotency.Ticket, ttl time.Duration) rueidis.Completed {
	return t.c.rdb.B().Set().Key(t.redisKey(tk.Table, tk.Key)).Value("d").PxMilliseconds(ttl.Milliseconds()).Build().ToRetryable()
}

// Release forgets a claimed token that did not trigger, so the caller's
// retry can: it deletes the key only while it is in flight for tk's own
// claim, never a done one, nor one claimed again after tk's claim expired
// (the request outlived InFlightTTL) or was released. When Redis cannot
// be told, the failure is logged and counted and the token stays in
// flight until InFlightTTL.
func (t *Tokens) Release(tk idempotency.Ticket) {
	ctx := t.c.ctx()
	key, inFlight := t.claimKey(tk.Table, tk, true)
	err := t.release.Exec(ctx, t.c.rdb, []string{key}, []string{inFlight}).Error()
	t.c.roundTrips.Add(1)
	if err != nil {
		t.c.failed(err)
		t.c.log.Error("cannot release client-token in redis; it stays in flight until in_flight_ttl",
			zap.String("automation", tk.Automation), zap.Error(err))
		return
	}
	t.c.answered()
}

// remember caches k as done for ttl. A dropped write only costs a round
// trip later.
func (t *Tokens) remember(k idempotency.Key, ttl time.Duration) {
	if t.cache == nil || ttl <= 0 {
		return
	}
	t.cache.SetWithTTL(k.Hi, k.Lo, 1, ttl)
}
