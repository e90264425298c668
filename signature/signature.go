// Package signature verifies the request signatures that upstream systems
// add to webhooks (SPEC §12): Standard Webhooks, GitHub's
// X-Hub-Signature-256, DingTalk's robot signing, and a generic HMAC-SHA256
// header.
//
// The package knows nothing of HTTP. A Verifier is compiled once per
// automation from its verify block; each request then runs through a Check
// held in the caller's per-request state:
//
//	err := v.Begin(&c, in, now) // headers and query only: refuse before the body
//	c.Write(chunk)              // as the body streams in, any chunking
//	err = c.Finish()            // constant-time compare against every secret
//
// Begin does every check that needs no body, so a request with a missing or
// malformed signature, or a timestamp outside the tolerance, is refused
// before a body byte is read. The body-covering HMACs are computed as the
// body arrives, never over a copy. The per-request path makes no allocation:
// the keyed HMAC states of a Verifier's secrets are pooled, MACs go into
// fixed arrays, and the errors are predeclared values.
//
// Secrets never appear in an error or in String output.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"
)

// Scheme names accepted in Config.Scheme.
const (
	StandardWebhooks = "standard-webhooks"
	GitHub           = "github"
	DingTalk         = "dingtalk"
	HMACSHA256       = "hmac-sha256"
)

// Limits on what a Config and a request may carry. They bound the work and
// the size of a Check, and are far above what any sender uses.
const (
	// MaxSecrets is the most secrets one verify block may list. Rotation
	// needs two; a few more leave room for overlapping rotations.
	MaxSecrets = 8
	// maxSigs is the most well-formed v1 entries a webhook-signature
	// header may carry (a sender signs once per secret it is rotating).
	maxSigs = 8
	// maxSigHeader is the longest signature header or sign parameter
	// accepted, in bytes.
	maxSigHeader = 1024
	// maxIDLen is the longest webhook-id accepted, in bytes. Ids are
	// typically "msg_" and a 27-character KSUID, or a UUID.
	maxIDLen = 256
	// maxDigits is the longest timestamp accepted, so that parsing cannot
	// overflow an int64.
	maxDigits = 18
)

// Default timestamp tolerances when Config.Tolerance is 0.
const (
	// DefaultTolerance is the Standard Webhooks window, in both directions.
	DefaultTolerance = 5 * time.Minute
	// DingTalkTolerance is DingTalk's own window: its robot API refuses a
	// timestamp more than an hour from its clock.
	DingTalkTolerance = time.Hour
)

// Header and parameter names used by the schemes.
const (
	headerWebhookID        = "webhook-id"
	headerWebhookTimestamp = "webhook-timestamp"
	headerWebhookSignature = "webhook-signature"
	headerGitHub           = "X-Hub-Signature-256"
	paramTimestamp         = "timestamp"
	paramSign              = "sign"
	whsecPrefix            = "whsec_"
	githubPrefix           = "sha256="
	signatureSuffix        = "-signature"
)

// Errors returned by Begin and Finish. They are predeclared so the request
// path does not allocate; the gateway answers all of them like a wrong
// Bearer credential (800005649, 401).
var (
	// ErrMissing: a header or query parameter the scheme needs is absent
	// or empty (or Finish was called without a Begin).
	ErrMissing = errors.New("signature missing")
	// ErrMalformed: a signature, id or timestamp cannot be parsed, or is
	// longer than the limits allow.
	ErrMalformed = errors.New("signature malformed")
	// ErrExpired: the signed timestamp is outside the tolerance of now.
	ErrExpired = errors.New("signature timestamp outside the tolerance")
	// ErrMismatch: no signature matches any configured secret.
	ErrMismatch = errors.New("signature mismatch")
)

// Config is one automation's verify block, with the secrets already
// resolved by the caller (from secrets or secrets_env).
type Config struct {
	// Scheme is one of standard-webhooks, github, dingtalk, hmac-sha256.
	Scheme string
	// Secrets are the shared secrets; a request signed with any one of
	// them passes, so a secret can be rotated without downtime. At most
	// MaxSecrets. For standard-webhooks each is whsec_<base64> (or the
	// bare base64, as the Standard Webhooks libraries accept) and the key
	// is the decoded bytes; for the other schemes the key is the string's
	// bytes as written. Sign uses the first.
	Secrets []string
	// Tolerance is how far the signed timestamp may be from now, in either
	// direction; 0 means the scheme's default (DefaultTolerance, or
	// DingTalkTolerance for dingtalk). Only the timestamped schemes
	// (standard-webhooks, dingtalk) accept it.
	Tolerance time.Duration
	// Header names the header carrying the signature. Required for
	// hmac-sha256. For github it overrides X-Hub-Signature-256. For
	// standard-webhooks it must end in "-signature" and renames all three
	// headers: "svix-signature" reads svix-id, svix-timestamp and
	// svix-signature. DingTalk signs query parameters and takes none.
	Header string
	// Encoding is how hmac-sha256 encodes the MAC: "hex" (the default) or
	// "base64" (standard or URL alphabet, padded or not).
	Encoding string
	// Prefix is an optional hmac-sha256 prefix before the encoded MAC,
	// such as "sha256=". It must match exactly.
	Prefix string
}

// String describes the config without its secrets, so that a Config
// printed with %v or %+v cannot leak them.
func (cfg Config) String() string {
	return fmt.Sprintf("{Scheme:%s Secrets:(%d hidden) Tolerance:%s Header:%s Encoding:%s Prefix:%s}",
		cfg.Scheme, len(cfg.Secrets), cfg.Tolerance, cfg.Header, cfg.Encoding, cfg.Prefix)
}

// GoString keeps %#v from printing the secrets too.
func (cfg Config) GoString() string { return "signature.Config" + cfg.String() }

// scheme is the compiled form of Config.Scheme.
type scheme uint8

const (
	schemeStandard scheme = iota + 1
	schemeGitHub
	schemeDingTalk
	schemeHMAC
)

func (s scheme) String() string {
	switch s {
	case schemeStandard:
		return StandardWebhooks
	case schemeGitHub:
		return GitHub
	case schemeDingTalk:
		return DingTalk
	case schemeHMAC:
		return HMACSHA256
	}
	return "invalid"
}

// resolution is the unit of the scheme's signed timestamp: seconds for
// standard-webhooks, milliseconds for dingtalk; 0 for schemes without one.
func (s scheme) resolution() time.Duration {
	switch s {
	case schemeStandard:
		return time.Second
	case schemeDingTalk:
		return time.Millisecond
	}
	return 0
}

// Verifier checks requests against one automation's verify block. It is
// safe for concurrent use; each request brings its own Check. A Verifier
// must not be copied.
type Verifier struct {
	scheme scheme
	// keys are the HMAC keys, one per secret, in Config order.
	keys [][]byte
	// secrets are the secrets' bytes for dingtalk, whose signed message
	// ends with the secret itself; nil for the other schemes.
	secrets [][]byte
	// tolerance is the timestamp window in nanoseconds; 0 for schemes
	// without a timestamp.
	tolerance int64
	// sigHeader carries the signature; idHeader and tsHeader are the
	// standard-webhooks id and timestamp headers.
	sigHeader, idHeader, tsHeader string
	// prefix precedes the encoded MAC (github: "sha256=").
	prefix string
	// b64 is true when the MAC is base64 rather than hex (hmac-sha256).
	b64 bool
	// pool holds *macs, one keyed HMAC state per secret, Reset on put.
	pool sync.Pool
}

// macs is the set of keyed HMAC states a Check borrows for one request.
type macs struct {
	h [MaxSecrets]hash.Hash
	n int
}

// getMACs borrows a set of reset HMAC states; putMACs resets and returns it.
func (v *Verifier) getMACs() *macs { return v.pool.Get().(*macs) }

func (v *Verifier) putMACs(m *macs) {
	for _, h := range m.h[:m.n] {
		h.Reset()
	}
	v.pool.Put(m)
}

func (v *Verifier) newMACs() any {
	m := &macs{n: len(v.keys)}
	for i, k := range v.keys {
		h := hmac.New(sha256.New, k)
		// The first Reset saves the keyed state, so that later ones
		// restore it instead of hashing the padded key again.
		h.Reset()
		m.h[i] = h
	}
	return m
}

// String names the scheme and the number of secrets, never a secret.
func (v *Verifier) String() string {
	return fmt.Sprintf("signature.Verifier{scheme: %s, secrets: %d}", v.scheme, len(v.keys))
}

// ReplaySpan is how long after a delivery a copy of it may still verify,
// for a scheme whose signed delivery id is the idempotency key
// (standard-webhooks): the tolerance either side of its timestamp, twice
// the tolerance in all. An idempotency window shorter than that forgets
// the id while a replay still verifies. 0 for the other schemes.
func (v *Verifier) ReplaySpan() time.Duration {
	if v.scheme != schemeStandard {
		return 0
	}
	return 2 * time.Duration(v.tolerance)
}

// NeedsBody reports whether Finish must wait for the body: false for
// dingtalk, which signs only the timestamp and is decided in Begin.
func (v *Verifier) NeedsBody() bool { return v.scheme != schemeDingTalk }

// Scheme returns the configured scheme name.
func (v *Verifier) Scheme() string { return v.scheme.String() }

// Compile validates cfg and prepares a Verifier. Errors name the sub-field
// of verify and its value, except for secrets, which they refer to by
// index only.
func Compile(cfg Config) (*Verifier, error) {
	v := &Verifier{}
	switch cfg.Scheme {
	case StandardWebhooks:
		v.scheme = schemeStandard
	case GitHub:
		v.scheme = schemeGitHub
	case DingTalk:
		v.scheme = schemeDingTalk
	case HMACSHA256:
		v.scheme = schemeHMAC
	default:
		return nil, fmt.Errorf("verify.scheme: %q is not one of %s, %s, %s, %s",
			cfg.Scheme, StandardWebhooks, GitHub, DingTalk, HMACSHA256)
	}

	if err := v.compileSecrets(cfg.Secrets); err != nil {
		return nil, err
	}

	switch {
	case cfg.Tolerance < 0:
		return nil, fmt.Errorf("verify.tolerance: %s is negative", cfg.Tolerance)
	case cfg.Tolerance > 0 && (v.scheme == schemeGitHub || v.scheme == schemeHMAC):
		return nil, fmt.Errorf("verify.tolerance: %s signatures carry no timestamp", v.scheme)
	case cfg.Tolerance > 0 && cfg.Tolerance < v.scheme.resolution():
		// A timestamp is truncated to whole units, so a window shorter
		// than one refuses a genuine request sent late in its unit even
		// with no delay and no clock skew.
		return nil, fmt.Errorf("verify.tolerance: %s is under %s, the resolution of %s timestamps",
			cfg.Tolerance, v.scheme.resolution(), v.scheme)
	case cfg.Tolerance > 0:
		v.tolerance = int64(cfg.Tolerance)
	case v.scheme == schemeStandard:
		v.tolerance = int64(DefaultTolerance)
	case v.scheme == schemeDingTalk:
		v.tolerance = int64(DingTalkTolerance)
	}

	if cfg.Header != "" && !validHeaderName(cfg.Header) {
		return nil, fmt.Errorf("verify.header: %q is not a valid header name", cfg.Header)
	}
	if v.scheme != schemeHMAC {
		if cfg.Encoding != "" {
			return nil, fmt.Errorf("verify.encoding: %q is only for %s", cfg.Encoding, HMACSHA256)
		}
		if cfg.Prefix != "" {
			return nil, fmt.Errorf("verify.prefix: %q is only for %s", cfg.Prefix, HMACSHA256)
		}
	}
	switch v.scheme {
	case schemeStandard:
		v.sigHeader, v.idHeader, v.tsHeader = headerWebhookSignature, headerWebhookID, headerWebhookTimestamp
		if cfg.Header != "" {
			base, ok := cutSuffixFold(cfg.Header, signatureSuffix)
			if !ok || base == "" {
				return nil, fmt.Errorf("verify.header: %q must end in %q for %s (it names the signature header; id and timestamp follow its prefix)",
					cfg.Header, signatureSuffix, StandardWebhooks)
			}
			v.sigHeader, v.idHeader, v.tsHeader = cfg.Header, base+"-id", base+"-timestamp"
		}
	case schemeGitHub:
		v.sigHeader, v.prefix = headerGitHub, githubPrefix
		if cfg.Header != "" {
			v.sigHeader = cfg.Header
		}
	case schemeDingTalk:
		if cfg.Header != "" {
			return nil, fmt.Errorf("verify.header: %q is not used by %s, which signs query parameters", cfg.Header, DingTalk)
		}
	case schemeHMAC:
		if cfg.Header == "" {
			return nil, fmt.Errorf("verify.header: required for %s", HMACSHA256)
		}
		v.sigHeader = cfg.Header
		switch cfg.Encoding {
		case "", "hex":
		case "base64":
			v.b64 = true
		default:
			return nil, fmt.Errorf("verify.encoding: %q is not one of hex, base64", cfg.Encoding)
		}
		if len(cfg.Prefix) > maxSigHeader/2 {
			return nil, fmt.Errorf("verify.prefix: %d bytes is too long", len(cfg.Prefix))
		}
		if !validPrefix(cfg.Prefix) {
			// A header value cannot carry a control character, and
			// HTTP strips white space before it, so the prefix would
			// never match.
			return nil, fmt.Errorf("verify.prefix: %q starts with white space or holds a control character", cfg.Prefix)
		}
		v.prefix = cfg.Prefix
	}

	v.pool.New = v.newMACs
	return v, nil
}

// compileSecrets checks the secrets and derives the HMAC keys. Its errors
// say what is wrong with a secret but never quote it.
func (v *Verifier) compileSecrets(secrets []string) error {
	if len(secrets) == 0 {
		return errors.New("verify.secrets: at least one secret is required")
	}
	if len(secrets) > MaxSecrets {
		return fmt.Errorf("verify.secrets: %d secrets; at most %d", len(secrets), MaxSecrets)
	}
	v.keys = make([][]byte, len(secrets))
	if v.scheme == schemeDingTalk {
		v.secrets = make([][]byte, len(secrets))
	}
	for i, s := range secrets {
		switch {
		case s == "":
			return fmt.Errorf("verify.secrets[%d]: empty", i)
		case strings.TrimSpace(s) != s:
			// Almost always a newline picked up from a file or an
			// environment variable, which no sender would sign with.
			return fmt.Errorf("verify.secrets[%d]: has leading or trailing white space", i)
		}
		if v.scheme != schemeStandard {
			v.keys[i] = []byte(s)
			if v.secrets != nil {
				v.secrets[i] = v.keys[i]
			}
			continue
		}
		// The Standard Webhooks libraries strip an optional whsec_ and
		// decode the rest as standard, padded base64.
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, whsecPrefix))
		if err != nil || len(key) == 0 {
			return fmt.Errorf("verify.secrets[%d]: not a whsec_ base64 secret", i)
		}
		v.keys[i] = key
	}
	return nil
}

// validHeaderName reports whether s is an HTTP field name (an RFC 9110
// token).
func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validPrefix reports whether s can begin a header value as sent: no
// control character, and no space or tab first, which HTTP parsers trim.
func validPrefix(s string) bool {
	if s != "" && (s[0] == ' ' || s[0] == '\t') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// cutSuffixFold is strings.CutSuffix ignoring ASCII case.
func cutSuffixFold(s, suffix string) (string, bool) {
	if len(s) < len(suffix) || !strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return s, false
	}
	return s[:len(s)-len(suffix)], true
}
