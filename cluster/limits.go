package cluster

import (
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/idempotency"
	"github.com/hookgate/hookgate/limiter"
	"github.com/redis/rueidis"
)

// admitScript is limiter.Allow on Redis, and with it the Client-Token
// claim, in one round trip.
//
// The rate check is GCRA over two buckets, the automation's (KEYS[1]) and
// its table's (KEYS[2]), with the emission intervals in microseconds in
// ARGV[1] and ARGV[2] (0: no limit; both 0: no bucket keys are passed).
// Each key holds the bucket's theoretical arrival time in microseconds of
// the server's clock, so the replicas' own clocks do not matter; a missing
// key is a full bucket. The automation is checked first; the keys are
// written only when both admit, so a refused request takes from neither.
// A refusal answers {1 (automation) or 2 (table), microseconds until that
// bucket has a token, 0, 0}.
//
// When ARGV[3] is given (the in-flight TTL, ms), the last key is a
// Client-Token, claimed once the request is admitted: SET NX to ARGV[4],
// the in-flight value naming this claim ("i" and the claim id in hex, see
// Tokens.Release), and when the key was there, its state: "d" is done,
// anything else in flight. The answer is then {0, 0, 0, 0}
// claimed, {0, 0, 1, 0} in flight or {0, 0, 2, remaining ms} done; an
// admitted request takes its rate tokens whatever the claim says, as the
// gateway's in-process check does.
//
// Times are about 1.7e15 µs, exact in Lua's doubles (up to 2^53); they are
// written with %d because Lua's own number format keeps 14 digits. Each
// bucket key expires one second after its bucket is full again, when a
// missing key means the same.
const admitScript = `
local aiv, tiv = tonumber(ARGV[1]), tonumber(ARGV[2])
if aiv > 0 or tiv > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local anext, tnext
  if aiv > 0 then
    anext = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now) + aiv
    local over = anext - now - math.max(aiv, 1000000)
    if over > 0 then return {1, over, 0, 0} end
  end
  if tiv > 0 then
    tnext = math.max(tonumber(redis.call('GET', KEYS[2]) or 0), now) + tiv
    local over = tnext - now - math.max(tiv, 1000000)
    if over > 0 then return {2, over, 0, 0} end
  end
  if aiv > 0 then
    redis.call('SET', KEYS[1], string.format('%d', anext), 'PX', string.format('%d', math.ceil((anext - now) / 1000) + 1000))
  end
  if tiv > 0 then
    redis.call('SET', KEYS[2], string.format('%d', tnext), 'PX', string.format('%d', math.ceil((tnext - now) / 1000) + 1000))
  end
end
if ARGV[3] then
  local k = KEYS[#KEYS]
  if redis.call('SET', k, ARGV[4], 'NX', 'PX', ARGV[3]) then return {0, 0, 0, 0} end
  if redis.call('GET', k) == 'd' then return {0, 0, 2, redis.call('PTTL', k)} end
  return {0, 0, 1, 0}
end
return {0, 0, 0, 0}
`

// closedRetry is the wait reported for a closed bucket (rate 0), as
// limiter does: no token will come, but a reload may open it.
const closedRetry = time.Second

// Limits on the local notes: ids come from the configuration, so these are
// never reached in practice; past them a shard's notes are dropped, which
// loses nothing but a few round trips.
const (
	noteShards        = 16
	maxTablesPerShard = 4096
	maxAutosPerTable  = 4096
)

// Limiter is the fleet-wide gateway.RateLimiter: SPEC §5's buckets kept
// in Redis and checked there, both at once, in one round trip. It is safe
// for concurrent use.
//
// After Redis refuses a request, the Limiter notes the refusing bucket
// (the automation's or the table's) until its next token is due and
// refuses further requests for it without asking Redis, so a flood costs
// no round trips. Until then a request of another automation of a table
// noted full is refused with scope table even if its own bucket is empty
// too; Redis would have said automation, with its own Retry-After.
//
// When Redis cannot answer (see Config.RetryInterval) the decision is the
// process's own buckets' (limiter.Allow): each replica then admits up to
// the full rate by itself.
type Limiter struct {
	c      *Client
	prefix string
	seed   maphash.Seed
	script *rueidis.Lua
	shards [noteShards]noteShard
}

// noteShard holds the notes of the tables whose id hashes to it.
type noteShard struct {
	mu     sync.RWMutex // guards tables (the map, not the notes in it)
	tables map[string]*tableNote
}

// tableNote is one table's Redis key and local note, and those of its
// automations.
type tableNote struct {
	key   string                 // the table bucket's Redis key
	until atomic.Int64           // refuse without Redis before this instant (Unix ns, callers' clock)
	iv    atomic.Pointer[ivText] // the bucket's interval, as last sent
	mu    sync.RWMutex           // guards autos (the map, not the notes in it)
	autos map[string]*autoNote
}

// autoNote is one automation's Redis key and local note.
type autoNote struct {
	key   string
	until atomic.Int64
	iv    atomic.Pointer[ivText] // its bucket's interval, as last sent
}

// ivText is an emission interval and its decimal text, kept in a note so
// that a rate check does not format the same number again: an interval
// changes only when a reload changes the rate.
type ivText struct {
	iv   int64
	text string
}

// intervalText returns iv in decimal, from *last when that is iv's.
func intervalText(last *atomic.Pointer[ivText], iv int64) string {
	if t := last.Load(); t != nil && t.iv == iv {
		return t.text
	}
	t := &ivText{iv: iv, text: strconv.FormatInt(iv, 10)}
	last.Store(t)
	return t.text
}

func newLimiter(c *Client, prefix string) *Limiter {
	l := &Limiter{
		c:      c,
		prefix: prefix,
		seed:   maphash.MakeSeed(),
		script: rueidis.NewLuaScript(admitScript),
	}
	for i := range l.shards {
		l.shards[i].tables = make(map[string]*tableNote)
	}
	return l
}

// Allow admits or refuses one request like limiter.Allow, against the
// fleet's buckets in Redis at the rates of the given ones: None when both
// had a token and one was taken from each; else the refusing scope and
// how long until that bucket has a token, having taken from neither. now
// (Unix ns) dates the local notes and the fallback; Redis uses its own
// clock. A nil bucket is no limit; a closed one (rate 0) refuses.
func (l *Limiter) Allow(table, automation string, tableBucket, automationBucket *limiter.Bucket, now int64) (limiter.Scope, time.Duration) {
	scope, wait, _, _ := l.Admit(table, automation, tableBucket, automationBucket, now, nil)
	return scope, wait
}

// Shed refuses what can be refused without asking Redis: a closed
// bucket, or one Redis refused whose next token is not yet due. Otherwise
// it answers None and takes nothing: Admit decides.
func (l *Limiter) Shed(table, automation string, tableBucket, automationBucket *limiter.Bucket, now int64) (limiter.Scope, time.Duration) {
	var rc rateCheck
	return l.local(table, automation, tableBucket, automationBucket, now, &rc)
}

// Admit is Allow and, when token is not empty and the request is
// admitted, the Client-Token claim of Tokens.Claim, in one round trip.
// The Ticket and Result are the claim's, meaningful only when the scope
// is None and token is not empty. The rate tokens are taken whatever the
// claim's result. While Redis cannot answer, the rates are the local
// buckets' and the claim is Unavailable.
func (l *Limiter) Admit(table, automation string, tableBucket, automationBucket *limiter.Bucket, now int64, token []byte) (limiter.Scope, time.Duration, idempotency.Ticket, idempotency.Result) {
	var rc rateCheck
	if scope, wait := l.local(table, automation, tableBucket, automationBucket, now, &rc); scope != limiter.None {
		return scope, wait, idempotency.Ticket{}, idempotency.Unavailable
	}
	t := l.c.tokens
	var tk idempotency.Ticket
	res := idempotency.Unavailable
	claim := len(token) > 0
	if claim {
		tk = idempotency.Ticket{Table: table, Automation: automation, Key: TokenKey(automation, token)}
		if t.cached(tk.Key) {
			claim, res = false, idempotency.Duplicate
		}
	}
	limited := rc.an != nil
	if !limited && !claim {
		return limiter.None, 0, tk, res
	}
	if !l.c.ask() {
		return l.fallback(limited, claim, tableBucket, automationBucket, now, tk, res)
	}
	keys := make([]string, 0, 3)
	args := make([]string, 2, 4)
	args[0], args[1] = "0", "0"
	if limited {
		keys = append(keys, rc.an.key, rc.tn.key)
		args[0], args[1] = intervalText(&rc.an.iv, rc.aiv), intervalText(&rc.tn.iv, rc.tiv)
	}
	if claim {
		tk.Claim = newClaim()
		key, inFlight := t.claimKey(table, tk, true)
		keys = append(keys, key)
		args = append(args, t.inFlightMS, inFlight)
	}
	ctx := l.c.ctx()
	v, err := l.script.Exec(ctx, l.c.rdb, keys, args).AsIntSlice()
	l.c.roundTrips.Add(1)
	if err == nil && len(v) != 4 {
		err = errBadReply
	}
	if err != nil {
		l.c.failed(err)
		return l.fallback(limited, claim, tableBucket, automationBucket, now, tk, res)
	}
	l.c.answered()
	wait := time.Duration(v[1]) * time.Microsecond
	switch v[0] {
	case 1:
		rc.an.until.Store(now + int64(wait))
		return limiter.Automation, wait, tk, idempotency.Unavailable
	case 2:
		rc.tn.until.Store(now + int64(wait))
		return limiter.Table, wait, tk, idempotency.Unavailable
	}
	if claim {
		switch v[2] {
		case 0:
			res = idempotency.Claimed
		case 2:
			// Done elsewhere: remember it here too, for no longer than
			// Redis will (its TTL counted from before the command was
			// sent).
			t.remember(tk.Key, time.Duration(v[3])*time.Millisecond-time.Since(l.c.deadlines.opened(ctx)))
			res = idempotency.Duplicate
		default:
			res = idempotency.InFlight
		}
	}
	return limiter.None, 0, tk, res
}

// rateCheck is what local learns for the round trip: the buckets'
// emission intervals (µs, 0 for no limit) and their notes, nil when
// neither bucket limits.
type rateCheck struct {
	aiv, tiv int64
	tn       *tableNote
	an       *autoNote
}

// local is the part of a decision taken without Redis: a closed bucket
// or one noted full refuses; otherwise it fills in rc.
func (l *Limiter) local(table, automation string, tableBucket, automationBucket *limiter.Bucket, now int64, rc *rateCheck) (limiter.Scope, time.Duration) {
	if automationBucket != nil {
		if rc.aiv = intervalMicros(automationBucket.Rate()); rc.aiv == 0 {
			return limiter.Automation, closedRetry
		}
	}
	if tableBucket != nil {
		if rc.tiv = intervalMicros(tableBucket.Rate()); rc.tiv == 0 {
			return limiter.Table, closedRetry
		}
	}
	if rc.aiv == 0 && rc.tiv == 0 {
		return limiter.None, 0
	}
	rc.tn, rc.an = l.notes(table, automation)
	if u := rc.an.until.Load(); now < u {
		l.c.localDenials.Add(1)
		return limiter.Automation, time.Duration(u - now)
	}
	if u := rc.tn.until.Load(); now < u {
		l.c.localDenials.Add(1)
		return limiter.Table, time.Duration(u - now)
	}
	return limiter.None, 0
}

// fallback is Admit's decision when Redis cannot answer: the process's
// own buckets for the rates, and no claim.
func (l *Limiter) fallback(limited, claim bool, tableBucket, automationBucket *limiter.Bucket, now int64, tk idempotency.Ticket, res idempotency.Result) (limiter.Scope, time.Duration, idempotency.Ticket, idempotency.Result) {
	if limited {
		l.c.fallbacks.Add(1)
		if scope, wait := limiter.Allow(automationBucket, tableBucket, now); scope != limiter.None {
			return scope, wait, tk, idempotency.Unavailable
		}
	}
	if claim {
		l.c.unavailable.Add(1)
		res = idempotency.Unavailable
	}
	return limiter.None, 0, tk, res
}

// intervalMicros is the emission interval of a bucket of rps tokens a
// second in whole microseconds, rounded down as limiter does in
// nanoseconds so that a burst of rps tokens fits in one second; at least
// 1µs (rates above 1e6/s behave as 1e6/s). 0 for a closed bucket.
func intervalMicros(rps float64) int64 {
	if !(rps > 0) {
		return 0
	}
	// limiter's nanosecond interval, recovered from its rate.
	ns := math.Round(float64(time.Second) / rps)
	if ns >= math.MaxInt64/2 {
		return math.MaxInt64 / 2 / 1000
	}
	return max(int64(ns)/1000, 1)
}

// notes returns the notes of table and of automation in it, making them
// on first use. The ids are copied before they are kept.
func (l *Limiter) notes(table, automation string) (*tableNote, *autoNote) {
	sh := &l.shards[maphash.String(l.seed, table)%noteShards]
	sh.mu.RLock()
	tn := sh.tables[table]
	sh.mu.RUnlock()
	if tn == nil {
		sh.mu.Lock()
		if tn = sh.tables[table]; tn == nil {
			if len(sh.tables) >= maxTablesPerShard {
				clear(sh.tables)
			}
			t := string(append([]byte(nil), table...))
			tn = &tableNote{
				key:   l.prefix + "rl:{" + t + "}:t",
				autos: make(map[string]*autoNote),
			}
			sh.tables[t] = tn
		}
		sh.mu.Unlock()
	}
	tn.mu.RLock()
	an := tn.autos[automation]
	tn.mu.RUnlock()
	if an == nil {
		tn.mu.Lock()
		if an = tn.autos[automation]; an == nil {
			if len(tn.autos) >= maxAutosPerTable {
				clear(tn.autos)
			}
			a := string(append([]byte(nil), automation...))
			an = &autoNote{key: l.prefix + "rl:{" + table + "}:a:" + a}
			tn.autos[a] = an
		}
		tn.mu.Unlock()
	}
	return tn, an
}
