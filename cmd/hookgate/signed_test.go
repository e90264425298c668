package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/signature"
)

const (
	tokSW   = "tok-sw-0123456789abcdefghijk"
	tokGH   = "tok-gh-0123456789abcdefghijk"
	tokDT   = "tok-dt-0123456789abcdefghijk"
	tokHMAC = "tok-hm-0123456789abcdefghijk"
	swOld   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swNew   = "whsec_c2VjcmV0LXR3by0wMTIzNDU2Nzg5YWJjZGVm"
	dtSec   = "SECdingtalk0123456789abcdef"
)

const signedConfig = `
listen: LISTEN
downstream: {url: "SINK"}
tables:
  - id: t
    automations:
      - id: sw
        token: ` + tokSW + `
        verify: {scheme: standard-webhooks, secrets_env: SW_SECRETS}
        rps: 50 # the idempotency checks send more than a second's 5
      - id: gh
        token: ` + tokGH + `
        verify: {scheme: github, secrets: ["It's a Secret to Everybody"]}
      - id: dt
        token: ` + tokDT + `
        verify: {scheme: dingtalk, secrets: [` + dtSec + `]}
      - id: hm
        token: ` + tokHMAC + `
        verify: {scheme: hmac-sha256, header: X-Signature, encoding: base64, prefix: "v1="}
        keywords: [product]
`

// signedHeaders runs `hookgate sign` and returns its header lines as
// name, value pairs, and the query it printed.
func signCLI(t *testing.T, cfgPath, automation string, body []byte, env ...string) (headers []string, query string) {
	t.Helper()
	bodyPath := filepath.Join(t.TempDir(), "body.json")
	os.WriteFile(bodyPath, body, 0o600)
	cmd := exec.Command(binary, "sign", "-config", cfgPath, "-automation", automation, "-body", bodyPath)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hookgate sign: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "curl") || line == "" {
			continue
		}
		name, value, _ := strings.Cut(line, ": ")
		if name == "query" {
			query = value
			continue
		}
		headers = append(headers, name, value)
	}
	return headers, query
}

// TestSignCurlRuns: the curl `hookgate sign` prints runs as printed, its
// body file's name quoted for the shell however it is spelt.
func TestSignCurlRuns(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	s := startSink(t)
	cfg := strings.Replace(signedConfig, "SINK", s.URL, 1)
	cfg = strings.Replace(cfg, `prefix: "v1="}`, `prefix: "v1=", secrets: [hm-secret]}`, 1)
	g := startGateway(t, cfg, "SW_SECRETS="+swOld)
	bodyPath := filepath.Join(g.dir, "new product's body $(touch pwned).json")
	if err := os.WriteFile(bodyPath, []byte(`{"event":"new product"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "sign", "-config", filepath.Join(g.dir, "hookgate.yaml"), "-automation", "gh", "-body", bodyPath)
	cmd.Env = append(os.Environ(), "SW_SECRETS="+swOld)
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err != nil {
		t.Fatalf("hookgate sign: %v\n%s", err, out)
	}
	_, line, _ := strings.Cut(out, "# send it (the body on stdin):\n")
	sh := exec.Command("sh", "-c", strings.TrimSpace(line))
	sh.Dir = g.dir
	if ans, err := sh.CombinedOutput(); err != nil || !strings.Contains(string(ans), `"triggered":true`) {
		t.Errorf("%s\n-> %v %s", line, err, ans)
	}
	if _, err := os.Stat(filepath.Join(g.dir, "pwned")); err == nil {
		t.Error("the shell ran part of the file's name")
	}
}

// TestSignatures: each scheme accepts what `hookgate sign` produces and
// refuses a changed body, a missing signature and a stale timestamp.
func TestSignatures(t *testing.T) {
	s := startSink(t)
	env := "SW_SECRETS=" + swOld + "," + swNew
	cfg := strings.Replace(signedConfig, "SINK", s.URL, 1)
	cfg = strings.Replace(cfg, `verify: {scheme: hmac-sha256, header: X-Signature, encoding: base64, prefix: "v1="}`,
		`verify: {scheme: hmac-sha256, header: X-Signature, encoding: base64, prefix: "v1=", secrets: [hm-secret]}`, 1)
	g := startGateway(t, cfg, env)
	cfgPath := filepath.Join(g.dir, "hookgate.yaml")
	body := []byte(`{"event":"new product","name":"Jasmine green"}`)
	credMsg := "Credential check failed"

	for _, tc := range []struct{ automation, token string }{{"sw", tokSW}, {"gh", tokGH}, {"dt", tokDT}, {"hm", tokHMAC}} {
		t.Run(tc.automation, func(t *testing.T) {
			headers, query := signCLI(t, cfgPath, tc.automation, body, env)
			u := g.url(tc.token)
			if query != "" {
				u += "?" + query
			}
			a := post(t, "POST", u, body, headers...)
			if a.Code != 0 || a.Data["triggered"] != true {
				t.Fatalf("signed request: %s", a.Raw)
			}
			if tc.automation != "dt" { // dingtalk signs no body
				changed := append([]byte(nil), body...)
				changed[3] ^= 1
				post(t, "POST", u, changed, headers...).want(t, 401, 800005649, credMsg)
			}
			post(t, "POST", g.url(tc.token), body).want(t, 401, 800005649, credMsg)
		})
	}
	t.Run("standard-webhooks id is the idempotency key", func(t *testing.T) {
		now := time.Now()
		hs, _, _ := signature.Sign(signature.Config{Scheme: "standard-webhooks", Secrets: []string{swNew}}, body, now, "msg_fixed_1")
		headers := []string{hs[0][0], hs[0][1], hs[1][0], hs[1][1], hs[2][0], hs[2][1]}
		a := post(t, "POST", g.url(tokSW), body, headers...)
		if a.Data["triggered"] != true {
			t.Fatalf("new secret (rotation): %s", a.Raw)
		}
		a = post(t, "POST", g.url(tokSW), body, headers...)
		if a.Data["duplicate"] != true {
			t.Fatalf("redelivery of msg_fixed_1: %s", a.Raw)
		}
		// The signature does not cover a Client-Token: a captured delivery
		// replayed with one of its own is still the same delivery.
		for _, ct := range []string{"replay-1", "replay-2"} {
			a = post(t, "POST", g.url(tokSW), body, append(headers, "Client-Token", ct)...)
			if a.Data["duplicate"] != true {
				t.Fatalf("msg_fixed_1 replayed with Client-Token %s: %s", ct, a.Raw)
			}
		}
		// A delivery signed with both keeps the id as its key.
		hs, _, _ = signature.Sign(signature.Config{Scheme: "standard-webhooks", Secrets: []string{swNew}}, body, now, "msg_fixed_2")
		headers = []string{hs[0][0], hs[0][1], hs[1][0], hs[1][1], hs[2][0], hs[2][1], "Client-Token", "sender-token"}
		if a = post(t, "POST", g.url(tokSW), body, headers...); a.Data["triggered"] != true {
			t.Fatalf("msg_fixed_2 with a Client-Token: %s", a.Raw)
		}
		headers[len(headers)-1] = "another-token"
		if a = post(t, "POST", g.url(tokSW), body, headers...); a.Data["duplicate"] != true {
			t.Fatalf("msg_fixed_2 replayed with another Client-Token: %s", a.Raw)
		}
	})
	t.Run("github documented example", func(t *testing.T) {
		post(t, "POST", g.url(tokGH), []byte("Hello, World!"),
			"X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17").
			want(t, 400, 800006003, "Body doesn't match JSON spec — please fix and retry") // signature passed; the body is not JSON
	})
	t.Run("dingtalk sign computed independently", func(t *testing.T) {
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		mac := hmac.New(sha256.New, []byte(dtSec))
		mac.Write([]byte(ts + "\n" + dtSec))
		sign := url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		a := post(t, "POST", g.url(tokDT)+"?timestamp="+ts+"&sign="+sign, body)
		if a.Data["triggered"] != true {
			t.Fatalf("dingtalk: %s", a.Raw)
		}
		old := strconv.FormatInt(time.Now().Add(-2*time.Hour).UnixMilli(), 10)
		mac = hmac.New(sha256.New, []byte(dtSec))
		mac.Write([]byte(old + "\n" + dtSec))
		sign = url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		post(t, "POST", g.url(tokDT)+"?timestamp="+old+"&sign="+sign, body).want(t, 401, 800005649, credMsg)
	})
	t.Run("stale timestamp refused before the body is read", func(t *testing.T) {
		hs, _, _ := signature.Sign(signature.Config{Scheme: "standard-webhooks", Secrets: []string{swOld}}, body, time.Now().Add(-10*time.Minute), "msg_stale")
		c, err := net.Dial("tcp", strings.TrimPrefix(g.Base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The headers and one body byte (fasthttp's streaming pre-read, see
		// the README): the other 99,999 declared bytes are never sent.
		fmt.Fprintf(c, "POST /webhook/flow/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n", tokSW)
		for _, h := range hs {
			fmt.Fprintf(c, "%s: %s\r\n", h[0], h[1])
		}
		fmt.Fprint(c, "\r\n{")
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		status, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(status, "HTTP/1.1 401") {
			t.Fatalf("got %q, %v: want 401 before any body byte", status, err)
		}
	})
	t.Run("a signature is a credential for the rate limit", func(t *testing.T) {
		// Default limits: 5/s with a credential or signature, 1/s without.
		time.Sleep(1100 * time.Millisecond) // the bucket refills to its burst
		ok := 0
		for i := 0; i < 8; i++ {
			hs, _, _ := signature.Sign(signature.Config{Scheme: "github", Secrets: []string{"It's a Secret to Everybody"}}, body, time.Now(), "")
			if post(t, "POST", g.url(tokGH), body, hs[0][0], hs[0][1]).Code == 0 {
				ok++
			}
		}
		if ok < 5 || ok > 6 {
			t.Fatalf("%d of 8 signed requests admitted at once; want the burst of 5", ok)
		}
	})
	g.stop(t)
	for _, secret := range []string{swOld, swNew, dtSec, "hm-secret", "It's a Secret"} {
		if strings.Contains(g.log(), secret) {
			t.Errorf("the log holds secret %q", secret)
		}
	}
}
