package signature

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"math"
)

// Input gives Begin the request's values that come before the body. The
// gateway implements it over fasthttp.
//
// Header looks a header up by name, ignoring case. Query returns a query
// parameter's value after URL decoding, as fasthttp's QueryArgs().Peek
// does (a value still percent-encoded is decoded again here, which is
// harmless for the base64 a sign carries). Both return nil when the value
// is absent. The bytes need only stay valid until Begin returns: whatever
// a Check keeps, it copies.
type Input interface {
	Header(name string) []byte
	Query(name string) []byte
}

// stdStrict decodes the standard, padded base64 the Standard Webhooks
// libraries and DingTalk produce, refusing non-zero padding bits so that
// only the canonical encoding of a MAC is accepted.
var stdStrict = base64.StdEncoding.Strict()

// Check is the verification state of one request. The caller keeps one in
// its pooled per-request struct, so verifying allocates nothing. The zero
// value is ready for Begin; after Finish or Abort it is ready for the next
// request. A Check must not be used by two goroutines at once.
type Check struct {
	v *Verifier
	// m holds the HMAC states borrowed from v between a successful Begin
	// and Finish or Abort; nil otherwise, and for dingtalk, which returns
	// them within Begin.
	m *macs
	// begun is set by a successful Begin, cleared by Finish and Abort.
	begun bool
	// nsig candidate MACs parsed from the request.
	nsig int
	sigs [maxSigs][sha256.Size]byte
	// sum receives each computed MAC.
	sum [sha256.Size]byte
	// ts holds the formatted timestamp while it is hashed; a local array
	// would escape through hash.Hash.Write.
	ts [maxDigits + 1]byte
	// id is the copied delivery id (webhook-id), idLen bytes long.
	idLen int
	id    [maxIDLen]byte
}

// Begin runs every check that needs no body: the signature header or query
// parameters are present and well-formed, the timestamp is inside the
// tolerance of now (Unix nanoseconds) and, for dingtalk, the whole
// verification. An error (one of the Err values) means the request is to
// be refused before any body byte is read; c is then released and ready
// for the next Begin. After a nil error, feed the body with Write and end
// with Finish, or release with Abort.
func (v *Verifier) Begin(c *Check, in Input, now int64) error {
	if c.m != nil || c.begun {
		c.Abort()
	}
	c.v, c.nsig, c.idLen = v, 0, 0
	var err error
	switch v.scheme {
	case schemeStandard:
		err = v.beginStandard(c, in, now)
	case schemeGitHub, schemeHMAC:
		err = v.beginHeader(c, in)
	case schemeDingTalk:
		err = v.checkDingTalk(c, in, now)
	default:
		panic("BUG: signature: Begin on a Verifier not made by Compile")
	}
	if err != nil {
		c.Abort()
		return err
	}
	c.begun = true
	return nil
}

// beginStandard parses the three Standard Webhooks headers and starts the
// HMACs over "id.timestamp.".
func (v *Verifier) beginStandard(c *Check, in Input, now int64) error {
	id := in.Header(v.idHeader)
	ts := in.Header(v.tsHeader)
	sig := in.Header(v.sigHeader)
	if len(id) == 0 || len(ts) == 0 || len(sig) == 0 {
		return ErrMissing
	}
	if len(id) > maxIDLen || !visibleASCII(id) {
		return ErrMalformed
	}
	secs, err := v.checkTime(ts, 1e9, now)
	if err != nil {
		return err
	}
	if !c.parseStandardSigs(sig) {
		return ErrMalformed
	}
	c.idLen = copy(c.id[:], id)

	// The reference libraries sign the timestamp as they format the parsed
	// integer, so leading zeros in the header do not change the message.
	canon := appendUint(c.ts[:0], secs)
	c.m = v.getMACs()
	for _, h := range c.m.h[:c.m.n] {
		h.Write(c.id[:c.idLen])
		h.Write(dot)
		h.Write(canon)
		h.Write(dot)
	}
	return nil
}

var (
	dot     = []byte{'.'}
	newline = []byte{'\n'}
)

// parseStandardSigs collects the v1 entries of a webhook-signature header:
// space-separated "version,base64" pairs. Entries of other versions (v1a,
// future ones) are skipped, as are v1 entries that are not the canonical
// base64 of 32 bytes, since they can match nothing. It reports false when
// no v1 entry is usable, or the header is longer or has more v1 entries
// than the limits allow.
func (c *Check) parseStandardSigs(h []byte) bool {
	if len(h) > maxSigHeader {
		return false
	}
	n := 0 // v1 entries seen, usable or not
	for len(h) > 0 {
		var e []byte
		if i := bytes.IndexByte(h, ' '); i >= 0 {
			e, h = h[:i], h[i+1:]
		} else {
			e, h = h, nil
		}
		if len(e) < 3 || e[0] != 'v' || e[1] != '1' || e[2] != ',' {
			continue
		}
		n++
		if n > maxSigs {
			return false
		}
		if decodeBase64MAC(&c.sigs[c.nsig], e[3:], stdStrict) {
			c.nsig++
		}
	}
	return c.nsig > 0
}

// beginHeader parses the single-MAC header of github and hmac-sha256 and
// borrows the HMAC states for the body.
func (v *Verifier) beginHeader(c *Check, in Input) error {
	h := in.Header(v.sigHeader)
	if len(h) == 0 {
		return ErrMissing
	}
	if len(h) < len(v.prefix) || string(h[:len(v.prefix)]) != v.prefix {
		return ErrMalformed
	}
	mac := h[len(v.prefix):]
	var ok bool
	if v.b64 {
		ok = decodeBase64MAC(&c.sigs[0], mac, base64Encoding(mac))
	} else {
		ok = decodeHexMAC(&c.sigs[0], mac)
	}
	if !ok {
		return ErrMalformed
	}
	c.nsig = 1
	c.m = v.getMACs()
	return nil
}

// checkDingTalk does the whole DingTalk verification: query timestamp (ms)
// inside the tolerance and sign = base64(HMAC-SHA256(secret,
// timestamp + "\n" + secret)) for one of the secrets.
func (v *Verifier) checkDingTalk(c *Check, in Input, now int64) error {
	ts := in.Query(paramTimestamp)
	sign := in.Query(paramSign)
	if len(ts) == 0 || len(sign) == 0 {
		return ErrMissing
	}
	if _, err := v.checkTime(ts, 1e6, now); err != nil {
		return err
	}
	var buf [maxSigHeader / 3]byte
	sign, ok := unescapeSign(buf[:0], sign)
	if !ok || !decodeBase64MAC(&c.sigs[0], sign, stdStrict) {
		return ErrMalformed
	}
	// DingTalk signs the timestamp exactly as it appears in the URL.
	m := v.getMACs()
	match := 0
	for i, h := range m.h[:m.n] {
		h.Write(ts)
		h.Write(newline)
		h.Write(v.secrets[i])
		match |= subtle.ConstantTimeCompare(h.Sum(c.sum[:0]), c.sigs[0][:])
	}
	v.putMACs(m)
	if match != 1 {
		return ErrMismatch
	}
	return nil
}

// Write feeds the next bytes of the body to every secret's HMAC. Chunks
// may have any size. It does nothing when there is nothing to feed: before
// Begin, after a failed one, and for dingtalk.
func (c *Check) Write(p []byte) {
	if c.m == nil {
		return
	}
	for _, h := range c.m.h[:c.m.n] {
		h.Write(p)
	}
}

// Finish compares, in constant time, every secret's MAC with every
// signature the request carries, and returns nil when one pair matches,
// ErrMismatch otherwise. It releases the pooled state. Called without a
// successful Begin (or twice) it returns ErrMissing, so that a caller's
// mistake refuses the request rather than accepting it.
func (c *Check) Finish() error {
	if !c.begun {
		c.Abort()
		return ErrMissing
	}
	if c.m == nil { // dingtalk: decided in Begin
		c.begun = false
		return nil
	}
	match := 0
	for _, h := range c.m.h[:c.m.n] {
		sum := h.Sum(c.sum[:0])
		for j := range c.sigs[:c.nsig] {
			match |= subtle.ConstantTimeCompare(sum, c.sigs[j][:])
		}
	}
	c.release()
	c.begun = false
	if match != 1 {
		c.idLen = 0
		return ErrMismatch
	}
	return nil
}

// Abort releases the pooled state without a verdict, for a request refused
// for another reason, and forgets the idempotency key.
func (c *Check) Abort() {
	c.release()
	c.begun = false
	c.nsig, c.idLen = 0, 0
}

func (c *Check) release() {
	if c.m != nil {
		c.v.putMACs(c.m)
		c.m = nil
	}
}

// IdempotencyKey returns the delivery id the scheme carries (the
// standard-webhooks webhook-id), for use when the request has no
// Client-Token; nil when there is none. It is covered by the signature, so
// trust it only after Finish returned nil. The bytes live in c and stay
// valid until the next Begin or Abort; copy to keep.
func (c *Check) IdempotencyKey() []byte {
	if c.idLen == 0 {
		return nil
	}
	return c.id[:c.idLen]
}

// parseDigits parses a non-empty decimal number of at most maxDigits
// digits, with no sign.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > maxDigits {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// appendUint appends the decimal form of n >= 0.
func appendUint(dst []byte, n int64) []byte {
	var b [maxDigits + 1]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

// checkTime parses a timestamp header or parameter, digits counting units
// of unit nanoseconds, and returns it: ErrMalformed when it is not
// digits, ErrExpired when it is outside the tolerance around now.
func (v *Verifier) checkTime(ts []byte, unit, now int64) (int64, error) {
	n, ok := parseDigits(ts)
	if !ok {
		return 0, ErrMalformed
	}
	if !inWindow(n, unit, now, v.tolerance) {
		return 0, ErrExpired
	}
	return n, nil
}

// inWindow reports whether ts, counted in units of unit nanoseconds, is
// within tol nanoseconds of now, either way, without overflowing.
func inWindow(ts, unit, now, tol int64) bool {
	if ts > math.MaxInt64/unit {
		return false
	}
	t := ts * unit
	if t < now {
		return uint64(now)-uint64(t) <= uint64(tol)
	}
	return uint64(t)-uint64(now) <= uint64(tol)
}

// visibleASCII reports whether b holds only printable, non-space ASCII,
// which keeps an id usable as a key and in logs.
func visibleASCII(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// decodeHexMAC decodes exactly 64 hex digits (either case) into dst.
func decodeHexMAC(dst *[sha256.Size]byte, s []byte) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.Decode(dst[:], s)
	return err == nil
}

// decodeBase64MAC decodes s, which must encode exactly 32 bytes in enc,
// into dst.
func decodeBase64MAC(dst *[sha256.Size]byte, s []byte, enc *base64.Encoding) bool {
	if len(s) != enc.EncodedLen(sha256.Size) {
		return false
	}
	var buf [sha256.Size + 2]byte // DecodedLen of the padded form is 33
	n, err := enc.Decode(buf[:], s)
	if err != nil || n != sha256.Size {
		return false
	}
	copy(dst[:], buf[:sha256.Size])
	return true
}

var (
	stdRaw = base64.RawStdEncoding.Strict()
	urlPad = base64.URLEncoding.Strict()
	urlRaw = base64.RawURLEncoding.Strict()
)

// base64Encoding picks the base64 variant of a generic hmac-sha256 MAC:
// the URL alphabet when '-' or '_' appears, padded when it ends in '='.
func base64Encoding(s []byte) *base64.Encoding {
	url := false
	for _, c := range s {
		if c == '-' || c == '_' {
			url = true
			break
		}
	}
	padded := len(s) > 0 && s[len(s)-1] == '='
	switch {
	case url && padded:
		return urlPad
	case url:
		return urlRaw
	case padded:
		return stdStrict
	}
	return stdRaw
}

// unescapeSign undoes what URL handling may have left in or done to a
// DingTalk sign: percent-escapes still present (%2B, %2F, %3D) are decoded,
// and a space is read as '+', which a form decoder makes of an unescaped
// plus. It appends to dst, whose capacity bounds the result.
func unescapeSign(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if len(dst) == cap(dst) {
			return dst, false
		}
		switch c := s[i]; c {
		case '%':
			if i+2 >= len(s) {
				return dst, false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return dst, false
			}
			dst = append(dst, hi<<4|lo)
			i += 2
		case ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, c)
		}
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
