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
	Claim(table, automation string, token []byte, now int64) (idempotency.Ticket, idempotency.Result)
	Done(t idempotency.Ticket, now int64)
	Release(t idempotency.Ticket)
}

// A JointLimiter is a RateLimiter whose decision is taken together with
// the Client-Token claim, in one round trip to shared state
// (cluster.Limiter). The gateway calls Shed where SPEC §3 checks the rate
// limits (row 8): it refuses only what it can without that round trip (a
// closed bucket, one known empty) and takes nothing. Once the body is
// checked, Admit takes the decision of Allow and, when token is not empty
// and the request is admitted, the claim of TokenStore.Claim; a refusal
// found then answers 429 as row 8 would have, before any later row's
// answer. Callers see the same codes as with Allow at row 8; the body of
// a request refused this way is read before it is refused.
type JointLimiter interface {
	RateLimiter
	admission
}

// admission is how the handler asks for the rate decision and the
// Client-Token claim: Shed at row 8, Admit once the body is checked, as
// JointLimiter describes. A JointLimiter is one; any other RateLimiter
// becomes one with its TokenStore (decideFirst).
type admission interface {
	Shed(table, automation string, tableBucket, automationBucket *limiter.Bucket, now int64) (limiter.Scope, time.Duration)
	Admit(table, automation string, tableBucket, automationBucket *limiter.Bucket, now int64, token []byte) (limiter.Scope, time.Duration, idempotency.Ticket, idempotency.Result)
}

// decideFirst is the admission of a RateLimiter that takes its whole
// decision at row 8 (Shed is Allow), with the claims of a TokenStore once
// the body is checked (Admit only claims).
type decideFirst struct {
	limits RateLimiter
	tokens TokenStore
}

func (a decideFirst) Shed(table, automation string, tableBucket, automationBucket *limiter.Bucket, now int64) (limiter.Scope, time.Duration) {
	return a.limits.Allow(table, automation, tableBucket, automationBucket, now)
}

func (a decideFirst) Admit(table, automation string, _, _ *limiter.Bucket, now int64, token []byte) (limiter.Scope, time.Duration, idempotency.Ticket, idempotency.Result) {
	if len(token) == 0 {
		return limiter.None, 0, idempotency.Ticket{}, idempotency.Unavailable
	}
	tk, res := a.tokens.Claim(table, automation, token, now)
	return limiter.None, 0, tk, res
}

// takeAfterBody is decideFirst with the rate tokens taken once the body is
// checked, for requests whose refusal may come only from their body: a
// signature covers the body, and a wrong one is row 5's refusal, which
// SPEC §5 says takes nothing; before a body has come (Expect:
// 100-continue) only a look is wanted. Shed looks at the process's own
// buckets, so a flood is still shed before its bodies while they are
// empty, and Admit takes the tokens, refusing as row 8 if another request
// took them meanwhile — as a JointLimiter does.
type takeAfterBody struct{ decideFirst }

func (a takeAfterBody) Shed(_, _ string, tableBucket, automationBucket *limiter.Bucket, now int64) (limiter.Scope, time.Duration) {
	return limiter.Peek(automationBucket, tableBucket, now)
}

func (a takeAfterBody) Admit(table, automation string, tableBucket, automationBucket *limiter.Bucket, now int64, token []byte) (limiter.Scope, time.Duration, idempotency.Ticket, idempotency.Result) {
	if scope, wait := a.limits.Allow(table, automation, tableBucket, automationBucket, now); scope != limiter.None {
		return scope, wait, idempotency.Ticket{}, idempotency.Unavailable
	}
	return a.decideFirst.Admit(table, automation, tableBucket, automationBucket, now, token)
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
func (l LocalTokens) Claim(table, automation string, token []byte, now int64) (idempotency.Ticket, idempotency.Result) {
	k := l.Store.Key(automation, token)
	return idempotency.Ticket{Table: table, Automation: automation, Key: k}, l.Store.Claim(k, now)
}

// Done marks a claimed token as triggered for the window.
func (l LocalTokens) Done(t idempotency.Ticket, now int64) { l.Store.Done(t.Key, now) }

// Release forgets a claimed token.
func (l LocalTokens) Release(t idempotency.Ticket) { l.Store.Release(t.Key) }
