package gateway

import (
	"time"

	"github.com/hookgate/hookgate/idempotency"
	"github.com/hookgate/hookgate/limiter"
)

// RateLimiter admits or refuses one request by the rate limits of SPEC §5:
// both the automation's and its table's bucket must have a token, and a
// refused request takes from neither. The buckets are the process's own;
// a shared implementation may use them as its fallback. It must be safe
// for concurrent use and should not allocate.
type RateLimiter interface {
	Allow(table, automation string, tableBucket, automationBucket *limiter.Bucket, now int64) (limiter.Scope, time.Duration)
}

// TokenStore is the Client-Token authority (SPEC §2, §3 rows 12 and 12b):
// Claim puts (automation, token) in flight unless it is in flight or done
// within the window; the claimer then calls Done once the event is with
// the flow engine, or Release when it is not, so a retry can trigger. A
// store that cannot answer returns idempotency.Unavailable and the request
// is refused (fail closed). It must be safe for concurrent use.
type TokenStore interface {
	Claim(automation string, token []byte, now int64) (idempotency.Ticket, idempotency.Result)
	Done(t idempotency.Ticket, now int64)
	Release(t idempotency.Ticket)
}

// LocalLimits is the in-process RateLimiter: the buckets alone.
type LocalLimits struct{}

var _ RateLimiter = LocalLimits{}

// Allow checks the process's own buckets.
func (LocalLimits) Allow(_, _ string, tableBucket, automationBucket *limiter.Bucket, now int64) (limiter.Scope, time.Duration) {
	return limiter.Allow(automationBucket, tableBucket, now)
}

// LocalTokens is the in-process TokenStore over an idempotency.Store.
type LocalTokens struct{ Store *idempotency.Store }

var _ TokenStore = LocalTokens{}

// Claim claims token for automation in the process's store.
func (l LocalTokens) Claim(automation string, token []byte, now int64) (idempotency.Ticket, idempotency.Result) {
	k := l.Store.Key(automation, token)
	return idempotency.Ticket{Automation: automation, Key: k}, l.Store.Claim(k, now)
}

// Done marks a claimed token as triggered for the window.
func (l LocalTokens) Done(t idempotency.Ticket, now int64) { l.Store.Done(t.Key, now) }

// Release forgets a claimed token.
func (l LocalTokens) Release(t idempotency.Ticket) { l.Store.Release(t.Key) }
