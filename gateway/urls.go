package gateway

import (
	"fmt"
	"strings"

	"github.com/hookgate/hookgate/matcher"
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
	fmt.Fprintf(&b, "curl -sS -X POST '%s'", WebhookURL(cfg, a))
	if a.Credential != "" {
		fmt.Fprintf(&b, " -H 'Authorization: Bearer %s'", a.Credential)
	}
	fmt.Fprintf(&b, " -H 'Content-Type: application/json' --data-raw '%s'", strings.ReplaceAll(body, "'", `'\''`))
	return b.String()
}
