package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/hookgate/hookgate/matcher"
	"github.com/hookgate/hookgate/signature"
)

// WebhookURL returns the public URL of an automation's webhook. It holds
// the webhook token: print it only where the user asked for it.
func WebhookURL(cfg *Config, a *Automation) string {
	return cfg.PublicURL + webhookPrefix + a.Token
}

// ExampleCurl returns a curl command that fires automation a: its body is
// the automation's sample when that triggers, otherwise a small object
// holding its first keyword. It holds the token and credential: print it
// only where the user asked for it.
func ExampleCurl(cfg *Config, a *Automation) string {
	body := `{"message":"hello"}`
	if a.Format == "text" {
		// A DingTalk robot message, which the text format recognises.
		body = `{"msgtype":"text","text":{"content":"hello from hookgate"}}`
	}
	m, err := matcher.Compile(a.Keywords, a.KeywordsIgnoreCase)
	if err == nil {
		if _, ok := m.Match([]byte(a.Sample)); ok && a.Sample != "" {
			body = a.Sample
		} else if len(a.Keywords) > 0 {
			body = string(appendJSONString([]byte(`{"message":`), a.Keywords[0])) + "}"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "curl -sS -X POST %s", ShellQuote(WebhookURL(cfg, a)))
	if a.Credential != "" {
		fmt.Fprintf(&b, " -H %s", ShellQuote("Authorization: Bearer "+a.Credential))
	}
	fmt.Fprintf(&b, " -H 'Content-Type: application/json' --data-raw %s", ShellQuote(body))
	return b.String()
}

// ShellQuote quotes s as one word for a POSIX shell: a credential may
// hold any visible character, quotes and $( ) included.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Summary returns one line per automation for `hookgate check`: its
// keywords, format, rate limits, allow-list and whether a credential is
// checked. Secrets are never printed.
func Summary(cfg *Config) []string {
	var lines []string
	for _, t := range cfg.Tables {
		tableRPS := t.RPS
		if tableRPS == 0 {
			tableRPS = cfg.Limits.TableRPS
		}
		for _, a := range t.Automations {
			rps := a.RPS
			cred := "off"
			if a.Credential != "" {
				cred = "on"
			}
			if rps == 0 {
				rps = cfg.Limits.AnonymousRPS
				if cred == "on" {
					rps = cfg.Limits.AutomationRPS
				}
			}
			kw := "any body"
			if len(a.Keywords) > 0 {
				kw = fmt.Sprintf("%q", a.Keywords)
				if a.KeywordsIgnoreCase {
					kw += " (ignore case)"
				}
			}
			allow := "any"
			if len(a.IPAllow) > 0 {
				allow = strings.Join(a.IPAllow, ",")
			}
			state := "enabled"
			if a.Enabled != nil && !*a.Enabled {
				state = "disabled"
			}
			lines = append(lines, fmt.Sprintf("  %s/%s: %s, format %s, keywords %s, %g req/s (table %g), allow %s, credential %s",
				t.ID, a.ID, state, a.Format, kw, rps, tableRPS, allow, cred))
		}
	}
	return lines
}

// SignedCurl returns the headers (and query) a sender adds to sign body for
// the automation with the given id, and a curl command that sends it, so
// an integration can be tested by hand. id is the delivery id for schemes
// that carry one (a fresh one is made when empty).
func SignedCurl(cfg *Config, automation string, body []byte, now time.Time, id string) (headers []string, curl string, err error) {
	for _, t := range cfg.Tables {
		for i := range t.Automations {
			a := &t.Automations[i]
			if a.ID != automation {
				continue
			}
			if a.Verify == nil {
				return nil, "", fmt.Errorf("automation %q has no verify block", automation)
			}
			if id == "" {
				var b [12]byte
				rand.Read(b[:])
				id = "msg_" + base64.RawURLEncoding.EncodeToString(b[:])
			}
			hs, query, err := signature.Sign(a.Verify.SignatureConfig(), body, now, id)
			if err != nil {
				return nil, "", err
			}
			u := WebhookURL(cfg, a)
			if query != "" {
				u += "?" + query
			}
			var c strings.Builder
			fmt.Fprintf(&c, "curl -sS -X POST %s", ShellQuote(u))
			for _, h := range hs {
				headers = append(headers, h[0]+": "+h[1])
				fmt.Fprintf(&c, " -H %s", ShellQuote(h[0]+": "+h[1]))
			}
			if query != "" {
				headers = append(headers, "query: "+query)
			}
			if a.Credential != "" {
				fmt.Fprintf(&c, " -H %s", ShellQuote("Authorization: Bearer "+a.Credential))
			}
			fmt.Fprintf(&c, " -H 'Content-Type: application/json' --data-binary @-")
			return headers, c.String(), nil
		}
	}
	return nil, "", fmt.Errorf("no automation %q", automation)
}
