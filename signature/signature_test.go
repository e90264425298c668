package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// input is an Input over fixed values: headers looked up ignoring case,
// query parameters by exact name. Lookups do not allocate, so the
// allocation test measures the package alone.
type input struct {
	headers [][2][]byte
	query   [][2][]byte
}

var _ Input = (*input)(nil)

func (in *input) Header(name string) []byte {
	for _, kv := range in.headers {
		if strings.EqualFold(string(kv[0]), name) {
			return kv[1]
		}
	}
	return nil
}

func (in *input) Query(name string) []byte {
	for _, kv := range in.query {
		if string(kv[0]) == name {
			return kv[1]
		}
	}
	return nil
}

func (in *input) setHeader(name, value string) *input {
	for i, kv := range in.headers {
		if strings.EqualFold(string(kv[0]), name) {
			in.headers[i][1] = []byte(value)
			return in
		}
	}
	in.headers = append(in.headers, [2][]byte{[]byte(name), []byte(value)})
	return in
}

func (in *input) delHeader(name string) *input {
	for i, kv := range in.headers {
		if strings.EqualFold(string(kv[0]), name) {
			in.headers = append(in.headers[:i:i], in.headers[i+1:]...)
			return in
		}
	}
	return in
}

func (in *input) setQuery(name, value string) *input {
	for i, kv := range in.query {
		if string(kv[0]) == name {
			in.query[i][1] = []byte(value)
			return in
		}
	}
	in.query = append(in.query, [2][]byte{[]byte(name), []byte(value)})
	return in
}

// headersInput builds an input from Sign's header pairs.
func headersInput(headers [][2]string) *input {
	in := &input{}
	for _, kv := range headers {
		in.setHeader(kv[0], kv[1])
	}
	return in
}

// queryInput builds an input from Sign's query string, decoded the way
// fasthttp's QueryArgs decodes it.
func queryInput(t testing.TB, query string) *input {
	t.Helper()
	vals, err := url.ParseQuery(query)
	if err != nil {
		t.Fatalf("cannot parse query %q: %s", query, err)
	}
	in := &input{}
	for k, vs := range vals {
		in.setQuery(k, vs[0])
	}
	return in
}

// verify runs Begin, feeds body in chunks of chunk bytes (all at once when
// chunk <= 0) and returns Begin's error or Finish's.
func verify(v *Verifier, in Input, now int64, body []byte, chunk int) error {
	var c Check
	if err := v.Begin(&c, in, now); err != nil {
		return err
	}
	if chunk <= 0 {
		chunk = len(body) + 1
	}
	for len(body) > 0 {
		n := min(chunk, len(body))
		c.Write(body[:n])
		body = body[n:]
	}
	return c.Finish()
}

func mustCompile(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := Compile(cfg)
	if err != nil {
		t.Fatalf("Compile(%v): %s", cfg, err)
	}
	return v
}

func mustSign(t testing.TB, cfg Config, body []byte, now time.Time, id string) *input {
	t.Helper()
	headers, query, err := Sign(cfg, body, now, id)
	if err != nil {
		t.Fatalf("Sign(%v): %s", cfg, err)
	}
	if query != "" {
		return queryInput(t, query)
	}
	return headersInput(headers)
}

// Standard Webhooks: the signing test shared by the reference libraries,
// standard-webhooks/standard-webhooks libraries/go/webhook_test.go
// (TestWebhookSign) and libraries/javascript/src/webhook.test.ts ("sign
// function works").
const (
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = 1614265330
	swPayload   = `{"test": 2432232314}`
	swExpected  = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func swInput(sig string) *input {
	return headersInput([][2]string{
		{"webhook-id", swMsgID},
		{"webhook-timestamp", strconv.Itoa(swTimestamp)},
		{"webhook-signature", sig},
	})
}

func TestStandardWebhooksVector(t *testing.T) {
	now := int64(swTimestamp) * 1e9
	body := []byte(swPayload)
	// The libraries accept the secret with or without its whsec_ prefix.
	for _, secret := range []string{swSecret, strings.TrimPrefix(swSecret, "whsec_")} {
		v := mustCompile(t, Config{Scheme: StandardWebhooks, Secrets: []string{secret}})
		var c Check
		if err := v.Begin(&c, swInput(swExpected), now); err != nil {
			t.Fatalf("Begin: %s", err)
		}
		if got := string(c.IdempotencyKey()); got != swMsgID {
			t.Fatalf("IdempotencyKey = %q; want %q", got, swMsgID)
		}
		c.Write(body)
		if err := c.Finish(); err != nil {
			t.Fatalf("Finish: %s", err)
		}
		if got := string(c.IdempotencyKey()); got != swMsgID {
			t.Fatalf("IdempotencyKey after Finish = %q; want %q", got, swMsgID)
		}
	}

	headers, query, err := Sign(Config{Scheme: StandardWebhooks, Secrets: []string{swSecret}},
		body, time.Unix(swTimestamp, 0), swMsgID)
	if err != nil || query != "" {
		t.Fatalf("Sign: %q, %v", query, err)
	}
	want := [][2]string{{"webhook-id", swMsgID}, {"webhook-timestamp", "1614265330"}, {"webhook-signature", swExpected}}
	if len(headers) != len(want) {
		t.Fatalf("Sign = %q; want %q", headers, want)
	}
	for i := range want {
		if headers[i] != want[i] {
			t.Fatalf("Sign = %q; want %q", headers, want)
		}
	}
}

// GitHub: the example of docs.github.com, "Validating webhook deliveries",
// section "Testing the webhook payload validation" (github/docs
// content/webhooks/using-webhooks/validating-webhook-deliveries.md).
const (
	ghSecret   = "It's a Secret to Everybody"
	ghPayload  = "Hello, World!"
	ghExpected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func TestGitHubVector(t *testing.T) {
	cfg := Config{Scheme: GitHub, Secrets: []string{ghSecret}}
	v := mustCompile(t, cfg)
	in := headersInput([][2]string{{"x-hub-signature-256", ghExpected}})
	if err := verify(v, in, 0, []byte(ghPayload), 0); err != nil {
		t.Fatalf("verify: %s", err)
	}
	// hex is accepted in either case.
	in.setHeader("X-Hub-Signature-256", "sha256="+strings.ToUpper(strings.TrimPrefix(ghExpected, "sha256=")))
	if err := verify(v, in, 0, []byte(ghPayload), 0); err != nil {
		t.Fatalf("verify upper-case hex: %s", err)
	}
	headers, _, err := Sign(cfg, []byte(ghPayload), time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(headers) != 1 || headers[0] != [2]string{"X-Hub-Signature-256", ghExpected} {
		t.Fatalf("Sign = %q; want X-Hub-Signature-256: %s", headers, ghExpected)
	}
}

// dingTalkSign computes a DingTalk robot sign the way its documentation
// describes, independently of the package: HMAC-SHA256 keyed with the
// secret over timestamp + "\n" + secret, base64, then URL-encoded.
func dingTalkSign(secret string, tsMillis int64) (ts, escapedSign string) {
	ts = strconv.FormatInt(tsMillis, 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "\n" + secret))
	return ts, url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

func TestDingTalk(t *testing.T) {
	const secret = "SEC2f1b8a0c6e5d4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8"
	const tsMillis = 1700000000123
	now := int64(tsMillis) * 1e6
	cfg := Config{Scheme: DingTalk, Secrets: []string{secret}}
	v := mustCompile(t, cfg)
	if v.NeedsBody() {
		t.Fatal("dingtalk NeedsBody = true")
	}
	ts, escaped := dingTalkSign(secret, tsMillis)
	decoded, err := url.QueryUnescape(escaped)
	if err != nil {
		t.Fatal(err)
	}

	// Sign produces the same query a DingTalk sender would.
	_, query, err := Sign(cfg, nil, time.UnixMilli(tsMillis), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := "timestamp=" + ts + "&sign=" + escaped; query != want {
		t.Fatalf("Sign query = %q; want %q", query, want)
	}

	f := func(name string, in *input, now int64, want error) {
		t.Helper()
		var c Check
		// dingtalk is decided in Begin, with no body at all.
		err := v.Begin(&c, in, now)
		if err == nil {
			err = c.Finish()
		}
		if !errors.Is(err, want) {
			t.Fatalf("%s: got %v; want %v", name, err, want)
		}
	}
	q := func(ts, sign string) *input { return (&input{}).setQuery("timestamp", ts).setQuery("sign", sign) }
	f("decoded", q(ts, decoded), now, nil)
	f("still escaped", q(ts, escaped), now, nil)
	f("plus read as space", q(ts, strings.ReplaceAll(decoded, "+", " ")), now, nil)
	f("one hour early", q(ts, decoded), now-int64(time.Hour), nil)
	f("one hour late", q(ts, decoded), now+int64(time.Hour), nil)
	f("too old", q(ts, decoded), now+int64(time.Hour)+1, ErrExpired)
	f("too new", q(ts, decoded), now-int64(time.Hour)-1, ErrExpired)
	f("other timestamp", q(strconv.FormatInt(tsMillis+1, 10), decoded), now, ErrMismatch)
	otherTS, otherSign := dingTalkSign("SECother", tsMillis)
	f("other secret", q(otherTS, otherSign), now, ErrMismatch)
	f("no sign", (&input{}).setQuery("timestamp", ts), now, ErrMissing)
	f("no timestamp", (&input{}).setQuery("sign", decoded), now, ErrMissing)
	f("timestamp not a number", q("17e11", decoded), now, ErrMalformed)
	f("sign not base64", q(ts, "not*base64"), now, ErrMalformed)
	f("sign truncated", q(ts, decoded[:40]), now, ErrMalformed)
	f("bad escape", q(ts, "%zz"+decoded[3:]), now, ErrMalformed)
}

func TestStandardWebhooksChecks(t *testing.T) {
	v := mustCompile(t, Config{Scheme: StandardWebhooks, Secrets: []string{swSecret}})
	now := int64(swTimestamp) * 1e9
	other := "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
	sig := strings.TrimPrefix(swExpected, "v1,")
	tests := []struct {
		name string
		in   *input
		now  int64
		body string
		// beginErr must come from Begin, before any Write; finishErr
		// from Finish.
		beginErr, finishErr error
	}{
		{name: "valid", in: swInput(swExpected), now: now, body: swPayload},
		{name: "one byte of the body changed", in: swInput(swExpected), now: now, body: `{"test": 2432232315}`, finishErr: ErrMismatch},
		{name: "body extended", in: swInput(swExpected), now: now, body: swPayload + " ", finishErr: ErrMismatch},
		{name: "second of several entries matches", in: swInput(other + " " + swExpected), now: now, body: swPayload},
		{name: "reference multi-signature header", in: swInput(other + " v2," + sig + " " + swExpected + " " + other), now: now, body: swPayload},
		{name: "doubled space", in: swInput(other + "  " + swExpected), now: now, body: swPayload},
		{name: "v1a entry ignored", in: swInput("v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== " + swExpected), now: now, body: swPayload},
		{name: "wrong signature", in: swInput(other), now: now, body: swPayload, finishErr: ErrMismatch},
		{name: "tolerance edge, old", in: swInput(swExpected), now: now + int64(5*time.Minute), body: swPayload},
		{name: "tolerance edge, new", in: swInput(swExpected), now: now - int64(5*time.Minute), body: swPayload},
		{name: "too old", in: swInput(swExpected), now: now + int64(5*time.Minute) + 1, beginErr: ErrExpired},
		{name: "too new", in: swInput(swExpected), now: now - int64(5*time.Minute) - 1, beginErr: ErrExpired},
		{name: "timestamp year 2000", in: swInput(swExpected).setHeader("webhook-timestamp", "946684800"), now: now, beginErr: ErrExpired},
		{name: "timestamp huge", in: swInput(swExpected).setHeader("webhook-timestamp", "999999999999999999"), now: now, beginErr: ErrExpired},
		{name: "leading zero is the same timestamp", in: swInput(swExpected).setHeader("webhook-timestamp", "01614265330"), now: now, body: swPayload},
		{name: "timestamp not a number", in: swInput(swExpected).setHeader("webhook-timestamp", "hello"), now: now, beginErr: ErrMalformed},
		{name: "timestamp negative", in: swInput(swExpected).setHeader("webhook-timestamp", "-1614265330"), now: now, beginErr: ErrMalformed},
		{name: "timestamp too long", in: swInput(swExpected).setHeader("webhook-timestamp", strings.Repeat("0", 19)+"1"), now: now, beginErr: ErrMalformed},
		{name: "no id", in: swInput(swExpected).delHeader("webhook-id"), now: now, beginErr: ErrMissing},
		{name: "no timestamp", in: swInput(swExpected).delHeader("webhook-timestamp"), now: now, beginErr: ErrMissing},
		{name: "no signature", in: swInput(swExpected).delHeader("webhook-signature"), now: now, beginErr: ErrMissing},
		{name: "empty signature", in: swInput(""), now: now, beginErr: ErrMissing},
		{name: "partial signature", in: swInput(swExpected[:8]), now: now, beginErr: ErrMalformed},
		{name: "v1 with nothing", in: swInput("v1,"), now: now, beginErr: ErrMalformed},
		{name: "no version", in: swInput(sig), now: now, beginErr: ErrMalformed},
		{name: "only v2", in: swInput("v2," + sig), now: now, beginErr: ErrMalformed},
		{name: "unpadded", in: swInput(strings.TrimSuffix(swExpected, "=")), now: now, beginErr: ErrMalformed},
		{name: "non-canonical padding bits", in: swInput(swExpected[:len(swExpected)-2] + "F="), now: now, beginErr: ErrMalformed},
		{name: "too many entries", in: swInput(strings.Repeat(other+" ", maxSigs) + swExpected), now: now, beginErr: ErrMalformed},
		{name: "as many entries as allowed", in: swInput(strings.Repeat(other+" ", maxSigs-1) + swExpected), now: now, body: swPayload},
		{name: "header too long", in: swInput(strings.Repeat(" ", maxSigHeader) + swExpected), now: now, beginErr: ErrMalformed},
		{name: "id too long", in: swInput(swExpected).setHeader("webhook-id", strings.Repeat("a", maxIDLen+1)), now: now, beginErr: ErrMalformed},
		{name: "id with a space", in: swInput(swExpected).setHeader("webhook-id", "msg 1"), now: now, beginErr: ErrMalformed},
		{name: "other id", in: swInput(swExpected).setHeader("webhook-id", "msg_other"), now: now, body: swPayload, finishErr: ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Check
			err := v.Begin(&c, tt.in, tt.now)
			if !errors.Is(err, tt.beginErr) {
				t.Fatalf("Begin = %v; want %v", err, tt.beginErr)
			}
			if err != nil {
				if c.IdempotencyKey() != nil {
					t.Fatalf("IdempotencyKey after a failed Begin = %q", c.IdempotencyKey())
				}
				return
			}
			c.Write([]byte(tt.body))
			if err := c.Finish(); !errors.Is(err, tt.finishErr) {
				t.Fatalf("Finish = %v; want %v", err, tt.finishErr)
			}
			// The delivery id is the idempotency key of a verified
			// request only: a forgery must not claim, or find taken,
			// the key of the genuine delivery it copies.
			want := string(tt.in.Header("webhook-id"))
			if tt.finishErr != nil {
				want = ""
			}
			if got := string(c.IdempotencyKey()); got != want {
				t.Fatalf("IdempotencyKey after Finish = %q; want %q", got, want)
			}
		})
	}
}

func TestHeaderSchemes(t *testing.T) {
	body := []byte(ghPayload)
	hexMAC := strings.TrimPrefix(ghExpected, "sha256=")
	gh := mustCompile(t, Config{Scheme: GitHub, Secrets: []string{ghSecret}})
	generic := mustCompile(t, Config{Scheme: HMACSHA256, Secrets: []string{ghSecret}, Header: "X-Signature"})
	b64 := mustCompile(t, Config{Scheme: HMACSHA256, Secrets: []string{ghSecret}, Header: "X-Signature", Encoding: "base64", Prefix: "sha256="})
	mac := hmac.New(sha256.New, []byte(ghSecret))
	mac.Write(body)
	sum := mac.Sum(nil)

	f := func(name string, v *Verifier, header, value string, body []byte, want error) {
		t.Helper()
		in := &input{}
		if header != "" {
			in.setHeader(header, value)
		}
		if err := verify(v, in, 0, body, 0); !errors.Is(err, want) {
			t.Fatalf("%s: got %v; want %v", name, err, want)
		}
	}
	f("github", gh, "X-Hub-Signature-256", ghExpected, body, nil)
	f("github body changed", gh, "X-Hub-Signature-256", ghExpected, []byte("Hello, World?"), ErrMismatch)
	f("github no header", gh, "", "", body, ErrMissing)
	f("github no prefix", gh, "X-Hub-Signature-256", hexMAC, body, ErrMalformed)
	f("github sha1 prefix", gh, "X-Hub-Signature-256", "sha1="+hexMAC, body, ErrMalformed)
	f("github short", gh, "X-Hub-Signature-256", ghExpected[:70], body, ErrMalformed)
	f("github not hex", gh, "X-Hub-Signature-256", ghExpected[:70]+"g", body, ErrMalformed)
	f("github sha1 header ignored", gh, "X-Hub-Signature", ghExpected, body, ErrMissing)

	f("generic hex", generic, "x-signature", hexMAC, body, nil)
	f("generic hex with unconfigured prefix", generic, "x-signature", ghExpected, body, ErrMalformed)
	f("generic hex body changed", generic, "x-signature", hexMAC, []byte("hello, World!"), ErrMismatch)

	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		f("generic base64", b64, "X-Signature", "sha256="+enc.EncodeToString(sum), body, nil)
	}
	f("generic base64 without prefix", b64, "X-Signature", base64.StdEncoding.EncodeToString(sum), body, ErrMalformed)
	f("generic base64 given hex", b64, "X-Signature", "sha256="+hexMAC, body, ErrMalformed)
	f("generic base64 body changed", b64, "X-Signature", "sha256="+base64.StdEncoding.EncodeToString(sum), body[1:], ErrMismatch)
}

func TestRotation(t *testing.T) {
	oldKey := "whsec_" + base64.StdEncoding.EncodeToString([]byte("old secret, 24 bytes ..."))
	newKey := "whsec_" + base64.StdEncoding.EncodeToString([]byte("new secret, 24 bytes ..."))
	strangerKey := "whsec_" + base64.StdEncoding.EncodeToString([]byte("nobody's secret, 24 byte"))
	now := time.Unix(1700000000, 0)
	body := []byte(`{"alert":"disk full"}`)
	for _, scheme := range []string{StandardWebhooks, GitHub, DingTalk, HMACSHA256} {
		t.Run(scheme, func(t *testing.T) {
			cfg := func(secrets ...string) Config {
				c := Config{Scheme: scheme, Secrets: secrets}
				if scheme == HMACSHA256 {
					c.Header = "X-Sig"
				}
				return c
			}
			v := mustCompile(t, cfg(oldKey, newKey))
			for _, s := range []string{oldKey, newKey} {
				in := mustSign(t, cfg(s), body, now, "msg_1")
				if err := verify(v, in, now.UnixNano(), body, 0); err != nil {
					t.Fatalf("signed with one of the configured secrets: %v", err)
				}
			}
			in := mustSign(t, cfg(strangerKey), body, now, "msg_1")
			if err := verify(v, in, now.UnixNano(), body, 0); !errors.Is(err, ErrMismatch) {
				t.Fatalf("signed with another secret: got %v; want %v", err, ErrMismatch)
			}
		})
	}
}

func TestStandardWebhooksSenderRotation(t *testing.T) {
	// A sender rotating its secret signs with both and sends both entries.
	a := "whsec_" + base64.StdEncoding.EncodeToString([]byte("first secret of 24 bytes"))
	b := "whsec_" + base64.StdEncoding.EncodeToString([]byte("second secret, 24 bytes."))
	now := time.Unix(1700000000, 0)
	body := []byte(`{}`)
	ha, _, _ := Sign(Config{Scheme: StandardWebhooks, Secrets: []string{a}}, body, now, "msg_2")
	hb, _, _ := Sign(Config{Scheme: StandardWebhooks, Secrets: []string{b}}, body, now, "msg_2")
	in := headersInput(ha).setHeader("webhook-signature", ha[2][1]+" "+hb[2][1])
	v := mustCompile(t, Config{Scheme: StandardWebhooks, Secrets: []string{b}})
	if err := verify(v, in, now.UnixNano(), body, 0); err != nil {
		t.Fatal(err)
	}
}

func TestChunking(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, 10000)
	for i := range body {
		body[i] = byte(rng.IntN(256))
	}
	altered := append([]byte(nil), body...)
	altered[7777] ^= 1
	now := time.Unix(1700000000, 0)
	for _, cfg := range roundTripConfigs() {
		v := mustCompile(t, cfg)
		in := mustSign(t, cfg, body, now, "msg_chunks")
		for k, b := range [][]byte{body, altered, body[:9999]} {
			whole := verify(v, in, now.UnixNano(), b, 0)
			if want := k == 0 || cfg.Scheme == DingTalk; (whole == nil) != want {
				t.Fatalf("%v: body %d: verdict %v", cfg, k, whole)
			}
			for range 20 {
				var c Check
				if err := v.Begin(&c, in, now.UnixNano()); err != nil {
					t.Fatalf("%v: Begin: %v", cfg, err)
				}
				for rest := b; len(rest) > 0; {
					n := min(len(rest), rng.IntN(300))
					c.Write(rest[:n])
					rest = rest[n:]
				}
				if err := c.Finish(); err != whole {
					t.Fatalf("%v: chunked verdict %v; whole %v", cfg, err, whole)
				}
			}
		}
	}
}

func roundTripConfigs() []Config {
	sw := "whsec_" + base64.StdEncoding.EncodeToString([]byte("round trip secret bytes!"))
	return []Config{
		{Scheme: StandardWebhooks, Secrets: []string{sw}},
		{Scheme: StandardWebhooks, Secrets: []string{sw}, Header: "svix-signature", Tolerance: time.Minute},
		{Scheme: GitHub, Secrets: []string{"gh secret"}},
		{Scheme: GitHub, Secrets: []string{"gh secret"}, Header: "X-Forge-Signature"},
		{Scheme: DingTalk, Secrets: []string{"SECdingtalk"}},
		{Scheme: HMACSHA256, Secrets: []string{"generic"}, Header: "X-Signature"},
		{Scheme: HMACSHA256, Secrets: []string{"generic"}, Header: "X-Signature", Encoding: "base64"},
		{Scheme: HMACSHA256, Secrets: []string{"generic"}, Header: "X-Signature", Encoding: "hex", Prefix: "sha256="},
	}
}

func TestSignRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 500)
	body := []byte(`{"event":"deploy","ok":true}`)
	for _, cfg := range roundTripConfigs() {
		t.Run(cfg.Scheme+"/"+cfg.Header+"/"+cfg.Encoding, func(t *testing.T) {
			headers, query, err := Sign(cfg, body, now, "msg_roundtrip")
			if err != nil {
				t.Fatal(err)
			}
			var in *input
			if cfg.Scheme == DingTalk {
				if headers != nil || query == "" {
					t.Fatalf("dingtalk Sign = %q, %q; want a query only", headers, query)
				}
				in = queryInput(t, query)
			} else {
				if query != "" || len(headers) == 0 {
					t.Fatalf("Sign = %q, %q; want headers only", headers, query)
				}
				in = headersInput(headers)
			}
			v := mustCompile(t, cfg)
			if err := verify(v, in, now.UnixNano(), body, 0); err != nil {
				t.Fatalf("verify: %v (headers %q, query %q)", err, headers, query)
			}
			if cfg.Header != "" && in.Header(cfg.Header) == nil {
				t.Fatalf("Sign did not use header %q: %q", cfg.Header, headers)
			}
			if cfg.Scheme != DingTalk {
				if err := verify(v, in, now.UnixNano(), append([]byte(nil), body[1:]...), 0); !errors.Is(err, ErrMismatch) {
					t.Fatalf("changed body: got %v; want %v", err, ErrMismatch)
				}
			}
		})
	}
	if _, _, err := Sign(Config{Scheme: StandardWebhooks, Secrets: []string{swSecret}}, body, now, ""); err == nil {
		t.Fatal("standard-webhooks Sign without an id succeeded")
	}
}

func TestSvixHeaders(t *testing.T) {
	v := mustCompile(t, Config{Scheme: StandardWebhooks, Secrets: []string{swSecret}, Header: "Svix-Signature"})
	in := headersInput([][2]string{
		{"svix-id", swMsgID},
		{"svix-timestamp", strconv.Itoa(swTimestamp)},
		{"svix-signature", swExpected},
	})
	if err := verify(v, in, int64(swTimestamp)*1e9, []byte(swPayload), 0); err != nil {
		t.Fatal(err)
	}
	if err := verify(v, swInput(swExpected), int64(swTimestamp)*1e9, []byte(swPayload), 0); !errors.Is(err, ErrMissing) {
		t.Fatalf("webhook-* headers with svix configured: got %v; want %v", err, ErrMissing)
	}
}

func TestCompileErrors(t *testing.T) {
	const secret = "s3cr3t-value-that-must-not-leak"
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Scheme: "foo", Secrets: []string{secret}}, `verify.scheme: "foo" is not one of standard-webhooks, github, dingtalk, hmac-sha256`},
		{Config{Scheme: "", Secrets: []string{secret}}, `verify.scheme: "" is not one of`},
		{Config{Scheme: GitHub}, "verify.secrets: at least one secret is required"},
		{Config{Scheme: GitHub, Secrets: make([]string, MaxSecrets+1)}, "verify.secrets: 9 secrets; at most 8"},
		{Config{Scheme: GitHub, Secrets: []string{secret, ""}}, "verify.secrets[1]: empty"},
		{Config{Scheme: GitHub, Secrets: []string{secret + "\n"}}, "verify.secrets[0]: has leading or trailing white space"},
		{Config{Scheme: StandardWebhooks, Secrets: []string{swSecret, secret}}, "verify.secrets[1]: not a whsec_ base64 secret"},
		{Config{Scheme: StandardWebhooks, Secrets: []string{"whsec_" + secret}}, "verify.secrets[0]: not a whsec_ base64 secret"},
		{Config{Scheme: StandardWebhooks, Secrets: []string{"whsec_"}}, "verify.secrets[0]: not a whsec_ base64 secret"},
		{Config{Scheme: StandardWebhooks, Secrets: []string{swSecret}, Tolerance: -time.Second}, "verify.tolerance: -1s is negative"},
		{Config{Scheme: GitHub, Secrets: []string{secret}, Tolerance: time.Minute}, "verify.tolerance: github signatures carry no timestamp"},
		{Config{Scheme: StandardWebhooks, Secrets: []string{swSecret}, Tolerance: 999 * time.Millisecond}, "verify.tolerance: 999ms is under 1s, the resolution of standard-webhooks timestamps"},
		{Config{Scheme: DingTalk, Secrets: []string{secret}, Tolerance: 999 * time.Microsecond}, "verify.tolerance: 999µs is under 1ms, the resolution of dingtalk timestamps"},
		{Config{Scheme: HMACSHA256, Secrets: []string{secret}, Header: "X-S", Tolerance: time.Minute}, "verify.tolerance: hmac-sha256 signatures carry no timestamp"},
		{Config{Scheme: HMACSHA256, Secrets: []string{secret}}, "verify.header: required for hmac-sha256"},
		{Config{Scheme: HMACSHA256, Secrets: []string{secret}, Header: "X Sig"}, `verify.header: "X Sig" is not a valid header name`},
		{Config{Scheme: HMACSHA256, Secrets: []string{secret}, Header: "X-Sig", Encoding: "base32"}, `verify.encoding: "base32" is not one of hex, base64`},
		{Config{Scheme: HMACSHA256, Secrets: []string{secret}, Header: "X-Sig", Prefix: " v1="}, `verify.prefix: " v1=" starts with white space or holds a control character`},
		{Config{Scheme: HMACSHA256, Secrets: []string{secret}, Header: "X-Sig", Prefix: "\tv1="}, `verify.prefix: "\tv1=" starts with white space`},
		{Config{Scheme: HMACSHA256, Secrets: []string{secret}, Header: "X-Sig", Prefix: "v1=\r\n"}, `verify.prefix: "v1=\r\n" starts with white space or holds a control character`},
		{Config{Scheme: HMACSHA256, Secrets: []string{secret}, Header: "X-Sig", Prefix: "v\x7f="}, `verify.prefix: "v\x7f=" starts`},
		{Config{Scheme: GitHub, Secrets: []string{secret}, Encoding: "base64"}, `verify.encoding: "base64" is only for hmac-sha256`},
		{Config{Scheme: DingTalk, Secrets: []string{secret}, Prefix: "x="}, `verify.prefix: "x=" is only for hmac-sha256`},
		{Config{Scheme: DingTalk, Secrets: []string{secret}, Header: "X-Sign"}, `verify.header: "X-Sign" is not used by dingtalk`},
		{Config{Scheme: StandardWebhooks, Secrets: []string{swSecret}, Header: "X-Sig"}, `verify.header: "X-Sig" must end in "-signature"`},
		{Config{Scheme: StandardWebhooks, Secrets: []string{swSecret}, Header: "-signature"}, `verify.header: "-signature" must end in`},
	}
	for _, tt := range tests {
		v, err := Compile(tt.cfg)
		if err == nil {
			t.Fatalf("Compile(%v) = %v; want error %q", tt.cfg, v, tt.want)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("Compile(%v) error %q; want it to contain %q", tt.cfg, err, tt.want)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "MfKQ9r8G") {
			t.Fatalf("Compile error %q quotes a secret", err)
		}
		if _, _, err := Sign(tt.cfg, nil, time.Now(), "msg"); err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("Sign(%v) error %v; want a Compile error without the secret", tt.cfg, err)
		}
	}
}

func TestStringHidesSecrets(t *testing.T) {
	const secret = "s3cr3t-value-that-must-not-leak"
	cfg := Config{Scheme: GitHub, Secrets: []string{secret, secret + "2"}}
	v := mustCompile(t, cfg)
	for _, s := range []string{v.String(), cfg.String(), cfg.GoString(),
		strings.Join([]string{fmtV(cfg), fmtV(&cfg), fmtV(v)}, " ")} {
		if strings.Contains(s, secret) {
			t.Fatalf("%q shows a secret", s)
		}
	}
	if got := v.String(); got != "signature.Verifier{scheme: github, secrets: 2}" {
		t.Fatalf("String = %q", got)
	}
}

func fmtV(x any) string { return fmt.Sprintf("%v %+v %#v", x, x, x) }

func TestCheckMisuse(t *testing.T) {
	var c Check
	if err := c.Finish(); !errors.Is(err, ErrMissing) {
		t.Fatalf("Finish without Begin = %v; want %v", err, ErrMissing)
	}
	c.Write([]byte("ignored"))
	c.Abort()

	v := mustCompile(t, Config{Scheme: GitHub, Secrets: []string{ghSecret}})
	in := headersInput([][2]string{{"X-Hub-Signature-256", ghExpected}})
	if err := v.Begin(&c, in, 0); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(ghPayload))
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(); !errors.Is(err, ErrMissing) {
		t.Fatalf("second Finish = %v; want %v", err, ErrMissing)
	}

	// A Begin over a Check still holding state releases it and starts
	// afresh: the half-written body of the abandoned request is not
	// carried over.
	if err := v.Begin(&c, in, 0); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("garbage"))
	if err := v.Begin(&c, in, 0); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(ghPayload))
	if err := c.Finish(); err != nil {
		t.Fatalf("after a second Begin: %v", err)
	}

	// A failed Begin leaves nothing for Finish to accept.
	if err := v.Begin(&c, &input{}, 0); !errors.Is(err, ErrMissing) {
		t.Fatal(err)
	}
	c.Write([]byte(ghPayload))
	if err := c.Finish(); err == nil {
		t.Fatal("Finish after a failed Begin accepted")
	}

	// Aborted state returns to the pool reset.
	if err := v.Begin(&c, in, 0); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("partial"))
	c.Abort()
	if err := verify(v, in, 0, []byte(ghPayload), 0); err != nil {
		t.Fatalf("after Abort: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	cfg := Config{Scheme: StandardWebhooks, Secrets: []string{swSecret, "whsec_" + base64.StdEncoding.EncodeToString([]byte("another"))}}
	v := mustCompile(t, cfg)
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 200 {
				body := []byte(`{"n":` + strconv.Itoa(g*1000+i) + `}`)
				now := time.Unix(1700000000+int64(i), 0)
				headers, _, e := Sign(cfg, body, now, "msg_"+strconv.Itoa(i))
				if e != nil {
					done <- e
					return
				}
				in := headersInput(headers)
				if e := verify(v, in, now.UnixNano(), body, 3); e != nil && err == nil {
					err = e
				}
				if e := verify(v, in, now.UnixNano(), body[1:], 3); e == nil && err == nil {
					err = errors.New("changed body accepted")
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplaySpan: only a scheme whose signed delivery id is the
// idempotency key has one, twice its tolerance.
func TestReplaySpan(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want time.Duration
	}{
		{Config{Scheme: "standard-webhooks", Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, 2 * DefaultTolerance},
		{Config{Scheme: "standard-webhooks", Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Tolerance: time.Minute}, 2 * time.Minute},
		{Config{Scheme: "dingtalk", Secrets: []string{"SEC0123"}}, 0},
		{Config{Scheme: "github", Secrets: []string{"s"}}, 0},
	} {
		v, err := Compile(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.ReplaySpan(); got != tc.want {
			t.Errorf("%s, tolerance %s: ReplaySpan %s, want %s", tc.cfg.Scheme, tc.cfg.Tolerance, got, tc.want)
		}
	}
}
