// Package downstream hands accepted events to the flow engine (SPEC §7).
//
// An event is one JSON object, already built by the gateway. Open returns a
// Sink for downstream.url: "http://…" and "https://…" POST each event to the
// flow engine, "file:<path>" (the embedded default) appends it as one line to
// a local file. Either way Forward returns nil only once the event is safely
// with the engine, because the gateway answers code 0 only then and nothing
// answered code 0 may be lost.
//
// Both sinks are built for the accept path: Forward is safe for concurrent
// use and makes no heap allocation per call in steady state.
package downstream

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Sink delivers events to the flow engine.
//
// Forward returns nil only when the event is safely with the engine (HTTP:
// the engine answered 2xx; file: the line is written and fsynced). It is safe
// for concurrent use and makes no allocation per call in steady state.
// eventID, loop and event are valid only until Forward returns (the caller
// reuses them): an implementation copies what it keeps. start is when the
// hand-over began: the HTTP sink's timeout runs from it.
//
// Close releases the sink; a Forward after Close returns an error that
// matches ErrClosed.
type Sink interface {
	Forward(eventID, loop, event []byte, start time.Time) error
	Close() error
}

// Defaults applied by Open to zero Config fields.
const (
	DefaultTimeout             = 5 * time.Second
	DefaultMaxConns            = 512
	DefaultMaxIdleConnDuration = 10 * time.Second
	DefaultMaxResponseBodySize = 4 << 10
	DefaultDialAttempts        = 2
	DefaultDialRetryDelay      = 50 * time.Millisecond
	// DefaultMaxEventBytes is a 4 MiB body, the gateway's default cap, and
	// room for the envelope around it.
	DefaultMaxEventBytes = 4<<20 + 64<<10
)

// Config is the downstream section of the configuration file. Zero fields
// take the defaults above; negative values are refused. Fields other than
// URL and Timeout apply to HTTP sinks only.
type Config struct {
	// URL is "http://…", "https://…" or "file:<path>" (relative to the
	// working directory). Userinfo in an HTTP URL is sent as Basic
	// authorization and never appears in errors.
	URL string

	// Socket, when set, is the path of a Unix domain socket on which the
	// flow engine serves HTTP: events are POSTed to URL's path over it,
	// with URL's host as the Host header, instead of over TCP — as curl's
	// --unix-socket does. It needs an http:// URL. An engine on the same
	// machine saves the TCP/IP stack on both ends of every hand-over.
	Socket string

	// Timeout bounds the whole hand-over of one event: waiting for a free
	// connection, dialing, writing and reading the answer (HTTP). The file
	// sink does not time out: a write that has started cannot be abandoned
	// without losing track of what is durable. Default 5s.
	Timeout time.Duration

	// MaxConns caps the connections to the flow engine. Default 512.
	MaxConns int

	// MaxConnWaitTimeout is how long a Forward waits for one of MaxConns
	// connections to come free before failing; it is cut short by Timeout.
	// Default: Timeout, so a burst queues rather than fails at once.
	MaxConnWaitTimeout time.Duration

	// MaxIdleConnDuration closes keep-alive connections idle this long. It
	// should be shorter than the engine's own idle timeout: a POST on a
	// connection the engine has just closed fails and is not re-sent (see
	// HTTP). Default 10s.
	MaxIdleConnDuration time.Duration

	// MaxResponseBodySize caps the engine's answer body, which is
	// discarded; a 2xx with a longer body still counts as accepted.
	// Default 4 KiB.
	MaxResponseBodySize int

	// DialAttempts is how many times one Forward tries to establish a
	// connection, within Timeout. Only a failed connection attempt is
	// retried, because then the engine surely never saw the event (and,
	// pipelining, an event behind one the connection failed for that was
	// never written; see HTTP for the one exception, which counts no
	// attempt). Default 2; 1 disables retries.
	DialAttempts int

	// Pipeline is how many events may be in flight on one connection to
	// the engine. 1 (the default) sends one and waits for its answer, as
	// plain HTTP/1.1 does; N > 1 pipelines: events that arrive together
	// are written together and their answers read together, and another
	// connection is opened only when each has N in flight. The engine must
	// support HTTP/1.1 pipelining (answer in order; fasthttp, Go's net/http
	// and most servers do, some proxies do not), and a slow answer holds
	// up the events behind it on its connection. See pipeline.
	Pipeline int

	// MaxEventBytes is the size of the largest event the gateway hands
	// over, set from the body cap rather than from a key of its own. The
	// file sink keeps its batch buffers between batches while they hold no
	// more than two such events (see maxRetained). 0 or less means
	// DefaultMaxEventBytes.
	MaxEventBytes int

	// DialRetryDelay is the pause before another connection attempt, so a
	// retry does not hit an engine that refused a microsecond ago.
	// Default 50ms.
	DialRetryDelay time.Duration
}

// Open validates cfg, applies the defaults and returns the sink the URL
// names. Errors name the field and value, e.g.
// `downstream.url: unsupported scheme "ftp"`.
func Open(cfg Config) (Sink, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if path, ok := strings.CutPrefix(cfg.URL, "file:"); ok {
		if cfg.Socket != "" {
			return nil, errors.New(`downstream.socket: set with a "file:" url; a socket needs an http:// url`)
		}
		path, err := filePath(path)
		if err != nil {
			return nil, err
		}
		return OpenFile(path, cfg.MaxEventBytes)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		if strings.Contains(cfg.URL, "@") {
			// url.Parse quotes the part it choked on, and in a URL with
			// userinfo that may be the password: one holding '/', '?'
			// or '#' ends the host early, and its start is reported as
			// the port. Nothing of such a URL is quoted.
			return nil, errUserinfo
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			// url.Error repeats the whole URL, which may hold secrets.
			err = ue.Err
		}
		return nil, fmt.Errorf("downstream.url: cannot parse: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
		if SplitUserinfo(u) {
			return nil, errUserinfoSplit
		}
		return newHTTP(u, cfg)
	case "":
		return nil, errors.New(`downstream.url: missing scheme; want "http://…", "https://…" or "file:<path>"`)
	default:
		return nil, fmt.Errorf("downstream.url: unsupported scheme %q", u.Scheme)
	}
}

// SplitUserinfo reports whether u looks like a URL whose password held a
// '/' or '?' that was not percent-encoded: then url.Parse takes the user
// name and the password's start for the host and port, and the rest for
// the path (or query), whose first segment then holds the '@'. Events
// would go to that "host" without authorization, and a dial error would
// quote it.
func SplitUserinfo(u *url.URL) bool {
	if u.User != nil {
		return false
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	return strings.Contains(first, "@") || u.EscapedPath() == "" && strings.Contains(u.RawQuery, "@")
}

// UserinfoSplit is what is wrong with a URL SplitUserinfo finds, and
// UserinfoHint how to write a user name and password in a URL; neither
// quotes anything of the URL.
const (
	UserinfoSplit = `an '@' follows the host, as when a password holds an unencoded "/" or "?" (not quoted)`
	UserinfoHint  = `percent-encode "/", "?", "#", "@" and "%" in the user name and password as %2F, %3F, %23, %40 and %25`
)

// errUserinfoSplit is Open's error for a URL SplitUserinfo finds, and
// errUserinfo for a URL with userinfo that does not parse.
var (
	errUserinfoSplit = errors.New("downstream.url: " + UserinfoSplit + "; " + UserinfoHint)
	errUserinfo      = errors.New("downstream.url: cannot parse (not quoted, as it has a user name or password); " + UserinfoHint)
)

// filePath turns the part after "file:" into a path; "file:///abs" and
// "file://localhost/abs" are accepted too, since people write them.
func filePath(p string) (string, error) {
	if rest, ok := strings.CutPrefix(p, "//"); ok {
		host, path, _ := strings.Cut(rest, "/")
		if host != "" && host != "localhost" {
			return "", fmt.Errorf("downstream.url: file URL names host %q; only local files are supported", host)
		}
		p = "/" + path
	}
	if p == "" || p == "/" {
		return "", errors.New(`downstream.url: "file:" needs a path, e.g. "file:data/events.jsonl"`)
	}
	return p, nil
}

func (cfg *Config) setDefaults() error {
	if cfg.URL == "" {
		return errors.New("downstream.url: must be set")
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"downstream.timeout", &cfg.Timeout, DefaultTimeout},
		{"downstream.max_conn_wait_timeout", &cfg.MaxConnWaitTimeout, 0},
		{"downstream.max_idle_conn_duration", &cfg.MaxIdleConnDuration, DefaultMaxIdleConnDuration},
		{"downstream.dial_retry_delay", &cfg.DialRetryDelay, DefaultDialRetryDelay},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return fmt.Errorf("%s: must not be negative, got %s", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.MaxConnWaitTimeout == 0 {
		cfg.MaxConnWaitTimeout = cfg.Timeout
	}
	ints := []struct {
		name string
		v    *int
		def  int
	}{
		{"downstream.max_conns", &cfg.MaxConns, DefaultMaxConns},
		{"downstream.max_response_body_size", &cfg.MaxResponseBodySize, DefaultMaxResponseBodySize},
		{"downstream.dial_attempts", &cfg.DialAttempts, DefaultDialAttempts},
		{"downstream.pipeline", &cfg.Pipeline, 1},
	}
	for _, n := range ints {
		if *n.v < 0 {
			return fmt.Errorf("%s: must not be negative, got %d", n.name, *n.v)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	return nil
}

// Error kinds. Errors returned by Forward match one of them with errors.Is,
// so callers and metrics can tell failures apart without parsing messages.
var (
	// ErrClosed: the sink was closed.
	ErrClosed = errors.New("downstream sink is closed")
	// ErrTimeout: the hand-over did not finish within Config.Timeout.
	ErrTimeout = errors.New("flow engine timeout")
	// ErrAborted: the event was on a pipelined connection that failed for
	// an earlier event on it (Config.Pipeline): written, so it may have
	// reached the engine, or held back and out of attempts or time to be
	// sent on another connection; or the engine ended the connection with
	// an earlier event's answer and time ran out to send it again. It says
	// nothing of the engine's health beyond that earlier failure, which is
	// reported on its own.
	ErrAborted = errors.New("flow engine connection aborted")
	// ErrUnreachable: no connection to the engine could be had, or it
	// broke before an answer came.
	ErrUnreachable = errors.New("flow engine unreachable")
	// ErrRejected: the engine answered, but not 2xx; or the file sink
	// refused an event that would not fit on one line.
	ErrRejected = errors.New("flow engine rejected the event")
	// ErrWrite: the file sink could not write or fsync; it refuses further
	// events until reopened.
	ErrWrite = errors.New("cannot write events file")
)

// kindError is a message with a kind and an optional cause. Errors that do
// not depend on the call are built once, so the failure path of a flood
// does not allocate either.
type kindError struct {
	kind  error
	msg   string
	cause error
}

func (e *kindError) Error() string {
	if e.cause == nil {
		return e.msg
	}
	return e.msg + ": " + e.cause.Error()
}

// Is matches the kind; Unwrap reaches the cause. Neither allocates, unlike
// an Unwrap that returns a slice.
func (e *kindError) Is(target error) bool { return target == e.kind }

func (e *kindError) Unwrap() error { return e.cause }

// StatusError is the engine's non-2xx answer.
type StatusError struct {
	// Status is the HTTP status code the engine answered.
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("flow engine answered %d", e.Status)
}

// Is makes a StatusError match ErrRejected.
func (e *StatusError) Is(target error) bool { return target == ErrRejected }
