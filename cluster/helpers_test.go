package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/cluster"
	"github.com/hookgate/hookgate/cluster/redistest"
	"github.com/hookgate/hookgate/idempotency"
	"github.com/redis/rueidis"
)

// prefixFor returns a key prefix of the test's own, so tests sharing a
// Redis from REDIS_URL do not see each other's keys.
func prefixFor(t testing.TB) string {
	r := strings.NewReplacer("{", "_", "}", "_", " ", "_")
	return "hookgate-test:" + r.Replace(t.Name()) + ":" + time.Now().Format("150405.000000") + ":"
}

// open returns a Client on srv with the test's prefix, closed at cleanup;
// mod may change the Config first.
func open(t testing.TB, srv *redistest.Server, prefix string, mod func(*cluster.Config)) *cluster.Client {
	t.Helper()
	// A generous timeout: this machine may be busy with other tests. The
	// outage tests set their own.
	cfg := cluster.Config{URL: srv.URL, Prefix: prefix, Timeout: time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := cluster.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// inspect returns a plain client to look at the keys.
func inspect(t testing.TB, srv *redistest.Server) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("inspect client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// keys returns the keys under prefix.
func keys(t testing.TB, rdb rueidis.Client, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	var cursor uint64
	for {
		e, err := rdb.Do(ctx, rdb.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatalf("SCAN: %v", err)
		}
		out = append(out, e.Elements...)
		if cursor = e.Cursor; cursor == 0 {
			return out
		}
	}
}

func get(t testing.TB, rdb rueidis.Client, key string) string {
	t.Helper()
	v, err := rdb.Do(context.Background(), rdb.B().Get().Key(key).Build()).ToString()
	if err != nil && !rueidis.IsRedisNil(err) {
		t.Fatalf("GET %s: %v", key, err)
	}
	return v
}

func pttl(t testing.TB, rdb rueidis.Client, key string) time.Duration {
	t.Helper()
	v, err := rdb.Do(context.Background(), rdb.B().Pttl().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatalf("PTTL %s: %v", key, err)
	}
	return time.Duration(v) * time.Millisecond
}

// eventually polls cond every 10ms until it holds or d has passed.
func eventually(t testing.TB, d time.Duration, cond func() bool) bool {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// awaitDuplicate repeats claim until it answers Duplicate — the done mark
// reaches Redis shortly after Done returns — and fails the test if any
// answer meanwhile is Claimed: a token is never claimable again once
// Done was called.
func awaitDuplicate(t testing.TB, what string, claim func() idempotency.Result) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		switch r := claim(); r {
		case idempotency.Duplicate:
			return
		case idempotency.InFlight:
		default:
			t.Fatalf("%s: %v after Done, want in flight until duplicate", what, r)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still in flight 2s after Done", what)
		}
		time.Sleep(time.Millisecond)
	}
}
