// Package cluster keeps hookgate's rate limits and Client-Tokens in Redis,
// so that every gateway sharing one Redis enforces them together (SPEC
// §11): the per-table and per-automation buckets of §5 and "a Client-Token
// triggers at most once in the window" of §2 and §3 rows 12 and 12b hold
// across the fleet as they do in one process. Open returns a Client whose
// Limiter is a gateway.RateLimiter and whose Tokens is a
// gateway.TokenStore.
//
// # Round trips
//
// A rate-limit check is one Lua script taking the automation's and the
// table's buckets together (GCRA on the server's clock); the same script
// claims a Client-Token (SET NX, and the key's state when it was there)
// once the request is admitted (Limiter.Admit), so a request costs one
// round trip before its hand-over. Release is one command. Done queues
// its mark (a SET) and returns: one writer sends the marks queued while
// it waited on Redis in one pipelined batch, so no request waits for a
// round trip after its hand-over. Until its mark lands, about a round
// trip after the answer, a token is still in flight: a repeat then gets
// 409 (retry), never a second trigger. Close sends the marks still
// queued. The client (rueidis) pipelines concurrent commands on one
// connection, collecting them for up to 50 µs while several wait, so many
// requests share each network write and round trip.
// Two things save round trips altogether: a bucket Redis refused is noted
// locally until its next token is due, refusing a flood without asking
// Redis, and tokens Redis reported done are kept in an in-process cache
// (ristretto) that answers a repeated Claim Duplicate.
//
// # Keys
//
// Every key starts with Config.Prefix ("hookgate:") and expires:
//
//	<prefix>rl:{<table>}:t               table bucket: its theoretical arrival time, µs of Redis' clock;
//	<prefix>rl:{<table>}:a:<automation>  automation bucket, likewise;
//	                                     both expire 1s after the bucket is full again
//	<prefix>ct:{<table>}:<32 hex>        Client-Token: "i<16 hex>" in flight for one claim (expires
//	                                     after InFlightTTL, 1m) or "d" done (expires after Window, 3h)
//
// A token is in flight for InFlightTTL rather than the window so that a
// gateway that crashed while holding one blocks it (409 to retries) for a
// minute, not three hours; Done then sets the window. InFlightTTL must
// outlast the longest request, or a slow request's token could be claimed
// again: twice the flow engine's timeout is the rule of thumb. The 16 hex
// digits name the claim (a random id in its Ticket), so a Release frees
// only its own claim: not one made after its own lapsed, nor one made
// between a Release that ran and the client sending it again over a new
// connection.
//
// The braces are Redis Cluster hash tags: a table's buckets and tokens
// share a slot, as the script touching them together requires. The hex is
// 128 bits of SHA-256 of the automation id and the token (TokenKey): every
// replica computes the same, and the token itself is not stored.
//
// # Memory
//
// Measured on Redis 7.0 (64-bit, jemalloc) by TestMemoryUsage, with the
// default prefix and ids of 8 bytes. MEMORY USAGE gives a Client-Token
// key 120 bytes, a table bucket 72 and an automation bucket 88. Counting
// what it leaves out — the expiry entry and both hash tables' slots — 50,000
// such keys take 181, 131 and 148 bytes each of used_memory. So a million
// tokens done within the window take about 180 MB; buckets are negligible:
// one per configured automation and table, and only while refilling.
// Longer ids add their length, rounded up by the allocator.
//
// # When Redis is in trouble
//
// Every command has Config.Timeout (200ms) to answer, connecting included;
// commands starting within an eighth of it share one deadline (one timer
// instead of one per command), so a command may get up to an eighth more.
// A command that fails or times out marks Redis unavailable: for
// Config.RetryInterval (100ms) no request asks it, then one request probes
// it, and the first answer ends the outage. One warning is logged when an
// outage begins and one notice when it ends; Stats counts the rest.
// Meanwhile:
//
//   - rate limits fall back to the process's own buckets (limiter.Allow),
//     so each replica admits up to the full rate by itself;
//   - Claim answers idempotency.Unavailable (the gateway refuses with a
//     retryable 503) rather than risk a second trigger;
//   - a Claim that timed out may still reach a Redis that was only slow,
//     leaving the token in flight until InFlightTTL: retries get 409
//     until then, and the token never triggers twice;
//   - a done mark that fails is sent again every RetryInterval until
//     Redis takes it (this replica's cache answers Duplicate meanwhile),
//     so a delivered token does not become claimable when its in-flight
//     key expires; only a Redis away for longer than InFlightTTL leaves a
//     moment, before the mark lands, in which another replica could
//     claim it. A gateway killed (not stopped) with marks queued, or
//     stopped while Redis is still away, loses those marks: their tokens
//     stay in flight until InFlightTTL, then could trigger again. A
//     Release that fails leaves the token in flight until InFlightTTL
//     (409 for retries until then). Failures are logged, once per batch
//     of marks.
//
// The connections are re-established by the client. A Redis unreachable
// when Open is called is handled the same way, but it must then be a
// single node: a Redis Cluster is recognised only when it answers at
// Open.
//
// A Redis that restarts without its data (no persistence, no replica
// promoted) forgets the tokens done within the window, which may then
// trigger once more; run it with persistence or replication where that
// matters. Buckets it forgets are merely full again.
//
// # Requirements
//
// Redis 5 or later (or Valkey): the rate-limit script reads TIME before
// writing, which needs script effects replication, the default since 5.
package cluster
