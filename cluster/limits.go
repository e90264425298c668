package cluster

import (
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/limiter"
	"github.com/redis/rueidis"
)

// allowScript is limiter.Allow on Redis: GCRA over two buckets, the
// automation's (KEYS[1]) and its table's (KEYS[2]), with the emission
// intervals in microseconds in ARGV[1] and ARGV[2] (0: no limit). Each key
// holds the bucket's theoretical arrival time in microseconds of the
// server's clock, so the replicas' own clocks do not matter; a missing key
// is a full bucket. The automation is checked first; the keys are written
// only when both admit, so a refused request takes from neither. It
// answers {0, 0} when admitted, else {1 (automation) or 2 (table),
// microseconds until that bucket has a token}.
//
// Times are about 1.7e15 µs, exact in Lua's doubles (up to 2^53); they are
// written with %d because Lua's own number format keeps 14 digits. Each
// key expires one second after its bucket is full again, when a missing
// key means the same.
const allowScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local aiv, tiv = tonumber(ARGV[1]), tonumber(ARGV[2])
local anext, tnext
if aiv > 0 then
  anext = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now) + aiv
  local over = anext - now - math.max(aiv, 1000000)
  if over > 0 then return {1, over} end
end
if tiv > 0 then
  tnext = math.max(tonumber(redis.call('GET', KEYS[2]) or 0), now) + tiv
  local over = tnext - now - math.max(tiv, 1000000)
  if over > 0 then return {2, over} end
end
if aiv > 0 then
  redis.call('SET', KEYS[1], string.format('%d', anext), 'PX', string.format('%d', math.ceil((anext - now) / 1000) + 1000))
end
if tiv > 0 then
  redis.call('SET', KEYS[2], string.format('%d', tnext), 'PX', string.format('%d', math.ceil((tnext - now) / 1000) + 1000))
end
return {0, 0}
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
	key   string       // the table bucket's Redis key
	until atomic.Int64 // refuse without Redis before this instant (Unix ns, callers' clock)
	mu    sync.RWMutex // guards autos (the map, not the notes in it)
	autos map[string]*autoNote
}

// autoNote is one automation's Redis key and local note.
type autoNote struct {
	key   string
	until atomic.Int64
}

func newLimiter(c *Client, prefix string) *Limiter {
	l := &Limiter{
		c:      c,
		prefix: prefix,
		seed:   maphash.MakeSeed(),
		script: rueidis.NewLuaScript(allowScript),
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
	var aiv, tiv int64
	if automationBucket != nil {
		if aiv = intervalMicros(automationBucket.Rate()); aiv == 0 {
			return limiter.Automation, closedRetry
		}
	}
	if tableBucket != nil {
		if tiv = intervalMicros(tableBucket.Rate()); tiv == 0 {
			return limiter.Table, closedRetry
		}
	}
	if aiv == 0 && tiv == 0 {
		return limiter.None, 0
	}
	tn, an := l.notes(table, automation)
	if u := an.until.Load(); now < u {
		l.c.localDenials.Add(1)
		return limiter.Automation, time.Duration(u - now)
	}
	if u := tn.until.Load(); now < u {
		l.c.localDenials.Add(1)
		return limiter.Table, time.Duration(u - now)
	}
	if !l.c.ask() {
		l.c.fallbacks.Add(1)
		return limiter.Allow(automationBucket, tableBucket, now)
	}
	ctx := l.c.ctx()
	res := l.script.Exec(ctx, l.c.rdb, []string{an.key, tn.key},
		[]string{strconv.FormatInt(aiv, 10), strconv.FormatInt(tiv, 10)})
	l.c.roundTrips.Add(1)
	v, err := res.AsIntSlice()
	if err == nil && len(v) != 2 {
		err = errBadReply
	}
	if err != nil {
		l.c.failed(err)
		l.c.fallbacks.Add(1)
		return limiter.Allow(automationBucket, tableBucket, now)
	}
	l.c.answered()
	wait := time.Duration(v[1]) * time.Microsecond
	switch v[0] {
	case 0:
		return limiter.None, 0
	case 1:
		an.until.Store(now + int64(wait))
		return limiter.Automation, wait
	default:
		tn.until.Store(now + int64(wait))
		return limiter.Table, wait
	}
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
