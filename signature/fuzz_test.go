package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"testing"
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
