package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Sign returns what a sender adds to a request carrying body at time now,
// signed with the first of cfg's secrets: header name/value pairs, or for
// dingtalk a query string ("timestamp=…&sign=…") to append to the URL. id
// is the standard-webhooks message id (webhook-id); the other schemes
// ignore it. It serves `hookgate sign`, so a user can try an integration
// with curl, and is not on the request path.
func Sign(cfg Config, body []byte, now time.Time, id string) (headers [][2]string, query string, err error) {
	v, err := Compile(cfg)
	if err != nil {
		return nil, "", err
	}
	mac := hmac.New(sha256.New, v.keys[0])
	switch v.scheme {
	case schemeStandard:
		if id == "" {
			return nil, "", errors.New("standard-webhooks signing needs a message id")
		}
		if len(id) > maxIDLen || !visibleASCII([]byte(id)) {
			return nil, "", fmt.Errorf("message id %q: want 1 to %d printable ASCII characters without spaces", id, maxIDLen)
		}
		if now.Unix() < 0 {
			return nil, "", fmt.Errorf("time %s is before 1970", now)
		}
		ts := strconv.FormatInt(now.Unix(), 10)
		mac.Write([]byte(id + "." + ts + "."))
		mac.Write(body)
		return [][2]string{
			{v.idHeader, id},
			{v.tsHeader, ts},
			{v.sigHeader, "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))},
		}, "", nil
	case schemeGitHub, schemeHMAC:
		mac.Write(body)
		var enc string
		if v.b64 {
			enc = base64.StdEncoding.EncodeToString(mac.Sum(nil))
		} else {
			enc = hex.EncodeToString(mac.Sum(nil))
		}
		return [][2]string{{v.sigHeader, v.prefix + enc}}, "", nil
	case schemeDingTalk:
		if now.UnixMilli() < 0 {
			return nil, "", fmt.Errorf("time %s is before 1970", now)
		}
		ts := strconv.FormatInt(now.UnixMilli(), 10)
		mac.Write([]byte(ts + "\n"))
		mac.Write(v.secrets[0])
		sign := base64.StdEncoding.EncodeToString(mac.Sum(nil))
		return nil, paramTimestamp + "=" + ts + "&" + paramSign + "=" + url.QueryEscape(sign), nil
	}
	panic("BUG: signature: Compile returned an unknown scheme")
}
