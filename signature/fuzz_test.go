package signature

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// FuzzSignatureValue puts arbitrary bytes where each scheme expects its
// signature (the webhook-signature, X-Hub-Signature-256 or generic header,
// or DingTalk's sign parameter), with every other value valid, and checks
// the verdict against an oracle built from plain string comparisons with
// the correct signature: parsing never panics, and only a correct MAC
// passes.
func FuzzSignatureValue(f *testing.F) {
	const (
		secret = "fuzz secret"
		id     = "msg_fuzz"
		ts     = int64(1700000000)
	)
	swKey := "whsec_" + base64.StdEncoding.EncodeToString([]byte(secret))
	now := ts * 1e9
	tsMillis := strconv.FormatInt(ts*1000, 10)
	verifiers := []*Verifier{
		mustCompile(f, Config{Scheme: StandardWebhooks, Secrets: []string{swKey}}),
		mustCompile(f, Config{Scheme: GitHub, Secrets: []string{secret}}),
		mustCompile(f, Config{Scheme: HMACSHA256, Secrets: []string{secret}, Header: "X-Sig", Encoding: "base64", Prefix: "sig="}),
		mustCompile(f, Config{Scheme: DingTalk, Secrets: []string{secret}}),
	}
	mac := func(parts ...string) []byte {
		h := hmac.New(sha256.New, []byte(secret))
		for _, p := range parts {
			h.Write([]byte(p))
		}
		return h.Sum(nil)
	}

	// Seeds: the correct values, near misses, and real-world shapes.
	body := `{"event":"ping"}`
	swSig := "v1," + base64.StdEncoding.EncodeToString(mac(id+"."+strconv.FormatInt(ts, 10)+".", body))
	ghSig := "sha256=" + hex.EncodeToString(mac(body))
	genSig := "sig=" + base64.RawURLEncoding.EncodeToString(mac(body))
	dtSign := base64.StdEncoding.EncodeToString(mac(tsMillis + "\n" + secret))
	for _, seed := range []struct {
		which uint8
		value string
	}{
		{0, swSig}, {0, "v1a,AAAA " + swSig}, {0, swSig + " " + swSig}, {0, swSig[:20]}, {0, "v1,"}, {0, " "},
		{0, swExpected}, {0, "v1," + strings.Repeat("A", 44)},
		{1, ghSig}, {1, strings.ToUpper(ghSig)}, {1, "sha256=" + strings.ToUpper(ghSig[7:])}, {1, ghExpected}, {1, ghSig[:70]},
		{2, genSig}, {2, "sig=" + base64.StdEncoding.EncodeToString(mac(body))}, {2, "sig="}, {2, "sig==="},
		{3, dtSign}, {3, url.QueryEscape(dtSign)}, {3, strings.ReplaceAll(dtSign, "+", " ")}, {3, "%"}, {3, "%2"},
	} {
		f.Add(seed.which, seed.value, body)
	}

	f.Fuzz(func(t *testing.T, which uint8, value, body string) {
		which %= uint8(len(verifiers))
		in := &input{}
		var want bool
		switch which {
		case 0:
			in.setHeader("webhook-id", id).setHeader("webhook-timestamp", strconv.FormatInt(ts, 10)).setHeader("webhook-signature", value)
			correct := "v1," + base64.StdEncoding.EncodeToString(mac(id+"."+strconv.FormatInt(ts, 10)+".", body))
			entries := strings.Split(value, " ")
			v1 := 0
			for _, e := range entries {
				if strings.HasPrefix(e, "v1,") {
					v1++
				}
			}
			want = len(value) <= maxSigHeader && v1 <= maxSigs && containsString(entries, correct)
		case 1:
			in.setHeader("X-Hub-Signature-256", value)
			rest, ok := strings.CutPrefix(value, "sha256=")
			want = ok && asciiLower(rest) == hex.EncodeToString(mac(body))
		case 2:
			in.setHeader("x-sig", value)
			sum := mac(body)
			want = value == "sig="+base64.StdEncoding.EncodeToString(sum) ||
				value == "sig="+base64.RawStdEncoding.EncodeToString(sum) ||
				value == "sig="+base64.URLEncoding.EncodeToString(sum) ||
				value == "sig="+base64.RawURLEncoding.EncodeToString(sum)
		case 3:
			in.setQuery("timestamp", tsMillis).setQuery("sign", value)
			unescaped, err := url.PathUnescape(strings.ReplaceAll(value, " ", "+"))
			want = err == nil && unescaped == base64.StdEncoding.EncodeToString(mac(tsMillis+"\n"+secret))
		}
		err := verify(verifiers[which], in, now, []byte(body), 7)
		if (err == nil) != want {
			t.Fatalf("scheme %s, value %q, body %q: verify = %v; oracle accepts: %v",
				verifiers[which].Scheme(), value, body, err, want)
		}
	})
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// asciiLower lower-cases ASCII letters only, as hex digits are.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// wireInput is an Input over a request as the gateway sees it: Sign's
// headers (and query) written as curl sends them, then parsed by
// fasthttp, which trims header values and decodes the query.
type wireInput struct{ req fasthttp.Request }

var _ Input = (*wireInput)(nil)

func (w *wireInput) Header(name string) []byte { return w.req.Header.Peek(name) }
func (w *wireInput) Query(name string) []byte  { return w.req.URI().QueryArgs().Peek(name) }

// overWire sends Sign's output through fasthttp's request parser. It
// returns an error when fasthttp cannot parse the request at all.
func overWire(headers [][2]string, query string, body []byte) (*wireInput, error) {
	var b bytes.Buffer
	b.WriteString("POST /webhook/flow/tok")
	if query != "" {
		b.WriteString("?" + query)
	}
	b.WriteString(" HTTP/1.1\r\nHost: hookgate.test\r\n")
	for _, h := range headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	w := &wireInput{}
	if err := w.req.Read(bufio.NewReader(&b)); err != nil {
		return nil, err
	}
	return w, nil
}

// validSecrets holds a secret each scheme accepts, for telling a message's
// own words from a quoted secret.
var validSecrets = map[string]string{
	StandardWebhooks: "whsec_" + base64.StdEncoding.EncodeToString([]byte("a valid secret")),
	GitHub:           "a valid secret",
	DingTalk:         "SECavalidsecret",
	HMACSHA256:       "a valid secret",
}

// FuzzSignRoundTrip: whatever configuration Compile accepts, what Sign
// prints for it (what `hookgate sign` shows) passes the check when sent
// over HTTP at the instant it was signed, chunked any way; the same
// headers with another body fail. Sign refuses only a bad message id or a
// time before 1970, and no error quotes a secret.
func FuzzSignRoundTrip(f *testing.F) {
	f.Add(uint8(0), "whsec_"+base64.StdEncoding.EncodeToString([]byte("round trip")), "", "", false, int64(0), "msg_1", int64(1700000000123456789), []byte(`{"a":1}`), uint8(3))
	f.Add(uint8(0), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "svix-signature", "", false, int64(time.Minute), "msg_p5jXN8AQM9LWM0D4loKWxJek", int64(1614265330999999999), []byte(swPayload), uint8(1))
	f.Add(uint8(1), ghSecret, "", "", false, int64(0), "", int64(1), []byte(ghPayload), uint8(0))
	f.Add(uint8(1), "gh", "X-Forge-Signature", "", false, int64(0), "", int64(1), []byte{}, uint8(0))
	f.Add(uint8(2), "SECdingtalk", "", "", false, int64(0), "", int64(1700000000123999999), []byte(nil), uint8(0))
	f.Add(uint8(2), "SEC+/=", "", "", false, int64(time.Millisecond), "", int64(999999), []byte(nil), uint8(0))
	f.Add(uint8(3), "generic", "X-Signature", "sha256=", false, int64(0), "", int64(5), []byte("x"), uint8(2))
	f.Add(uint8(3), "generic", "X-Signature", "v1=", true, int64(0), "", int64(5), []byte("xyz"), uint8(2))
	f.Add(uint8(0), "whsec_"+base64.StdEncoding.EncodeToString([]byte("round trip")), "", "", false, int64(time.Second/2), "msg_1", int64(1700000000900000000), []byte(`{}`), uint8(3))
	f.Add(uint8(2), "SECdingtalk", "", "", false, int64(time.Millisecond/2), "", int64(1700000000123900000), []byte(nil), uint8(0))
	f.Add(uint8(3), "generic", "X-Signature", " v1=", true, int64(0), "", int64(5), []byte("xyz"), uint8(2))

	schemes := []string{StandardWebhooks, GitHub, DingTalk, HMACSHA256}
	f.Fuzz(func(t *testing.T, which uint8, secret, header, prefix string, b64 bool, tol int64, id string, nanos int64, body []byte, chunk uint8) {
		cfg := Config{Scheme: schemes[int(which)%len(schemes)], Secrets: []string{secret}, Header: header}
		switch cfg.Scheme {
		case StandardWebhooks, DingTalk:
			cfg.Tolerance = time.Duration(tol)
		case HMACSHA256:
			cfg.Prefix = prefix
			if b64 {
				cfg.Encoding = "base64"
			}
		}
		switch strings.ToLower(header) {
		case "host", "content-length", "transfer-encoding", "trailer":
			return // the request's own framing, which no sender signs into
		}
		// A secret the message would hold whatever the secret were (a
		// scheme's name, "dingtalk", as the secret) is the message's own
		// words, not a quote: the same call with a valid secret of the
		// scheme tells.
		other := cfg
		other.Secrets = []string{validSecrets[cfg.Scheme]}
		leaks := func(err error, again func(Config) error) bool {
			if len(secret) < 8 || strings.Contains(header+prefix, secret) || !strings.Contains(err.Error(), secret) {
				return false
			}
			err2 := again(other)
			return err2 == nil || !strings.Contains(err2.Error(), secret)
		}
		compile := func(c Config) error { _, err := Compile(c); return err }
		v, err := Compile(cfg)
		if err != nil {
			if leaks(err, compile) {
				t.Fatalf("Compile error %q quotes the secret", err)
			}
			return
		}
		now := time.Unix(0, nanos)
		headers, query, err := Sign(cfg, body, now, id)
		if err != nil {
			if leaks(err, func(c Config) error { _, _, err := Sign(c, body, now, id); return err }) {
				t.Fatalf("Sign error %q quotes the secret", err)
			}
			badID := cfg.Scheme == StandardWebhooks && (id == "" || len(id) > maxIDLen || !visibleASCII([]byte(id)))
			if !badID && nanos >= 0 {
				t.Fatalf("Sign(%v, %q, %d): %v", cfg, id, nanos, err)
			}
			return
		}
		in, err := overWire(headers, query, body)
		if err != nil {
			t.Fatalf("%v: Sign printed %q %q, which fasthttp cannot parse: %v", cfg, headers, query, err)
		}
		if err := verify(v, in, nanos, body, int(chunk)); err != nil {
			t.Fatalf("%v: Sign printed %q %q, refused over HTTP: %v", cfg, headers, query, err)
		}
		if v.NeedsBody() {
			other := append(append([]byte(nil), body...), '!')
			if err := verify(v, in, nanos, other, int(chunk)); !errors.Is(err, ErrMismatch) {
				t.Fatalf("%v: another body: got %v; want %v", cfg, err, ErrMismatch)
			}
		}
	})
}
