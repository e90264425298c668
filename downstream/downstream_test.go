package downstream

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOpenRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unsupported scheme", Config{URL: "ftp://engine/"}, `downstream.url: unsupported scheme "ftp"`},
		{"empty url", Config{}, "downstream.url: must be set"},
		{"no scheme", Config{URL: "engine:8080/in"}, `downstream.url: unsupported scheme "engine"`},
		{"relative", Config{URL: "/in"}, `downstream.url: missing scheme; want "http://…", "https://…" or "file:<path>"`},
		{"no host", Config{URL: "http:///in"}, "downstream.url: missing host"},
		{"fragment", Config{URL: "http://engine/in#x"}, "downstream.url: must not have a #fragment"},
		{"bad port", Config{URL: "http://engine:port/in"}, `downstream.url: cannot parse: invalid port ":port" after host`},
		{"bad url with userinfo", Config{URL: "http://u:s3cret@engine:port/in?token=s3cret"}, errUserinfo.Error()},
		// A password holding '/', '?' or '#' ends the host early, and
		// url.Parse would quote its start as the port.
		{"password with slash", Config{URL: "http://hook:s3cr/et@127.0.0.1/"}, errUserinfo.Error()},
		{"password with question mark", Config{URL: "http://hook:s3cr?et@127.0.0.1/"}, errUserinfo.Error()},
		{"password with hash", Config{URL: "http://hook:s3cr#et@127.0.0.1/"}, errUserinfo.Error()},
		{"password with bad escape", Config{URL: "http://hook:s3%cret@127.0.0.1/"}, errUserinfo.Error()},
		// These parse: the user name and the password's digits become a
		// host and port, the rest a path or query.
		{"digits, then a slash in the password", Config{URL: "http://hook:1234/s3cret@engine/in"}, errUserinfoSplit.Error()},
		{"digits, then a question mark in the password", Config{URL: "http://hook:1234?s3cret@engine"}, errUserinfoSplit.Error()},
		{"file without path", Config{URL: "file:"}, `downstream.url: "file:" needs a path, e.g. "file:data/events.jsonl"`},
		{"file on another host", Config{URL: "file://nas/events.jsonl"}, `downstream.url: file URL names host "nas"; only local files are supported`},
		{"negative timeout", Config{URL: "http://engine/", Timeout: -time.Second}, "downstream.timeout: must not be negative, got -1s"},
		{"negative max conns", Config{URL: "http://engine/", MaxConns: -1}, "downstream.max_conns: must not be negative, got -1"},
		{"socket with https", Config{URL: "https://engine/", Socket: "/run/engine.sock"}, `downstream.socket: "/run/engine.sock" needs an http:// url, not https://`},
		{"socket with file", Config{URL: "file:events.jsonl", Socket: "/run/engine.sock"}, `downstream.socket: set with a "file:" url; a socket needs an http:// url`},
		{"negative dial attempts", Config{URL: "http://engine/", DialAttempts: -2}, "downstream.dial_attempts: must not be negative, got -2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%+v) succeeded; want %q", tc.cfg, tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("Open error = %q; want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3c") {
				t.Fatalf("error %q leaks a secret", err)
			}
		})
	}
}

// TestOpenTakesAtInThePath: an '@' past the path's first segment, or in
// the query of a URL with a path, is the engine's own.
func TestOpenTakesAtInThePath(t *testing.T) {
	for _, u := range []string{"http://engine/users/a@b", "http://engine/in?notify=ops@example.com", "http://hook:s3cret@engine/in"} {
		s, err := Open(Config{URL: u})
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		s.Close()
	}
}

func TestOpenDefaults(t *testing.T) {
	s, err := Open(Config{URL: "https://engine.example/in"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := s.(*HTTP)
	c := h.client
	if h.timeout != DefaultTimeout || c.MaxConns != DefaultMaxConns || c.MaxConnWaitTimeout != DefaultTimeout ||
		c.MaxIdleConnDuration != DefaultMaxIdleConnDuration || c.MaxResponseBodySize != DefaultMaxResponseBodySize ||
		h.dialAttempts != DefaultDialAttempts || h.dialRetryDelay != DefaultDialRetryDelay {
		t.Fatalf("defaults not applied: %+v", h)
	}
	// The sink shakes hands itself (dial); the client's own TLS would wrap
	// the connection a second time.
	if c.IsTLS || h.tls == nil || c.Addr != "engine.example:443" || h.uri != "https://engine.example/in" || h.tls.ServerName != "engine.example" {
		t.Fatalf("TLS client for %q: client IsTLS %v, sink TLS %v, Addr %q, uri %q", "https://engine.example/in", c.IsTLS, h.tls != nil, c.Addr, h.uri)
	}
}

func TestErrorKinds(t *testing.T) {
	f := func(err, kind error, msg string) {
		t.Helper()
		if !errors.Is(err, kind) || err.Error() != msg {
			t.Fatalf("error %q (kind match %v); want %q matching %v", err, errors.Is(err, kind), msg, kind)
		}
	}
	cause := errors.New("connection refused")
	f(&kindError{kind: ErrUnreachable, msg: "cannot connect to flow engine", cause: cause}, ErrUnreachable, "cannot connect to flow engine: connection refused")
	f(&kindError{kind: ErrUnreachable, msg: "cannot connect to flow engine", cause: cause}, cause, "cannot connect to flow engine: connection refused")
	f(&StatusError{Status: 503}, ErrRejected, "flow engine answered 503")
	f(errConnClosed, ErrUnreachable, "flow engine closed the connection without answering")
}
