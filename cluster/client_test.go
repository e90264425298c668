package cluster_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/cluster"
	"github.com/hookgate/hookgate/cluster/redistest"
	"github.com/hookgate/hookgate/idempotency"
	"github.com/hookgate/hookgate/limiter"
)

const secret = "s3cr3t-pa55"

// TestOpenErrors: bad configurations are refused naming the field, and
// never show the password.
func TestOpenErrors(t *testing.T) {
	srv := redistest.Start(t)
	tests := []struct {
		name string
		cfg  cluster.Config
		want string
	}{
		{"empty url", cluster.Config{}, "cluster.redis_url: is empty"},
		{"unparsable url", cluster.Config{URL: "redis://:" + secret + "@host:port:x/0"}, "cluster.redis_url: cannot parse"},
		{"bad escape in password", cluster.Config{URL: "redis://:" + secret + "%zz@127.0.0.1:1/0"}, "cluster.redis_url: cannot parse"},
		{"bad scheme", cluster.Config{URL: "http://:" + secret + "@127.0.0.1:6379/0"}, "cluster.redis_url: http://:xxxxx@127.0.0.1:6379/0: redis: invalid URL scheme"},
		{"bad db", cluster.Config{URL: "redis://:" + secret + "@127.0.0.1:6379/x"}, "cluster.redis_url"},
		{"password refused", cluster.Config{URL: "redis://nobody:" + secret + "@" + srv.Addr + "/0"}, "cluster.redis_url: redis://nobody:xxxxx@" + srv.Addr + "/0: "},
		{"braces in prefix", cluster.Config{URL: srv.URL, Prefix: "hg{1}:"}, "cluster.prefix"},
		{"negative timeout", cluster.Config{URL: srv.URL, Timeout: -time.Second}, "cluster.timeout"},
		{"tiny window", cluster.Config{URL: srv.URL, Window: time.Microsecond}, "idempotency_window"},
		{"tiny in-flight ttl", cluster.Config{URL: srv.URL, InFlightTTL: time.Microsecond}, "cluster.in_flight_ttl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cluster.Open(tc.cfg)
			if err == nil {
				c.Close()
				if tc.name == "password refused" && !srv.CanStop() {
					t.Skip("the Redis from REDIS_URL takes this password")
				}
				t.Fatalf("Open succeeded, want an error with %q", tc.want)
			}
			t.Logf("%v", err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestOpenUnreachable: a Redis that is not up when the gateway starts is
// an outage, not an error, and is used once it comes up.
func TestOpenUnreachable(t *testing.T) {
	srv := redistest.Start(t)
	if !srv.CanStop() {
		t.Skip("needs a private redis-server")
	}
	srv.Stop(t, false)
	c, err := cluster.Open(cluster.Config{URL: srv.URL, Prefix: prefixFor(t), RetryInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	if !c.Stats().Down {
		t.Errorf("not down: %+v", c.Stats())
	}
	if _, r := c.Tokens().Claim("tbl", "a1", []byte("tok"), now()); r != idempotency.Unavailable {
		t.Errorf("Claim = %v, want unavailable", r)
	}
	if s, _ := c.Limiter().Allow("t1", "a1", limiter.NewBucket(50), limiter.NewBucket(5), now()); s != limiter.None {
		t.Errorf("Allow = %v, want the local bucket's none", s)
	}
	srv.Restart(t)
	if !eventually(t, 5*time.Second, func() bool {
		_, r := c.Tokens().Claim("tbl", "a1", []byte("tok"), now())
		return r == idempotency.Claimed
	}) {
		t.Fatalf("never reached redis after it came up: %+v", c.Stats())
	}
}

// TestTimeoutBoundsConnecting: a Redis that accepts connections but never
// answers (a black hole) costs a request no more than Timeout.
func TestTimeoutBoundsConnecting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn // accept and say nothing
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	const timeout = 100 * time.Millisecond
	start := time.Now()
	c, err := cluster.Open(cluster.Config{URL: "redis://" + l.Addr().String() + "/0", Timeout: timeout, RetryInterval: time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	t.Logf("Open took %v", time.Since(start))
	for i := range 5 {
		time.Sleep(2 * time.Millisecond) // past RetryInterval: each call asks
		start := time.Now()
		_, r := c.Tokens().Claim("tbl", "a1", []byte("tok"), now())
		if d := time.Since(start); r != idempotency.Unavailable || d > timeout+timeout/8+50*time.Millisecond {
			t.Errorf("claim %d: %v after %v; want unavailable within %v", i, r, d, timeout)
		}
	}
}
