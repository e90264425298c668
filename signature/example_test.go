package signature_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hookgate/hookgate/signature"
)

// request is an Input over net/http headers, for the example; the gateway
// has its own over fasthttp.
type request struct{ h http.Header }

func (r request) Header(name string) []byte {
	if v := r.h.Get(name); v != "" {
		return []byte(v)
	}
	return nil
}

func (r request) Query(string) []byte { return nil }

func ExampleSign() {
	cfg := signature.Config{Scheme: signature.GitHub, Secrets: []string{"It's a Secret to Everybody"}}
	headers, _, err := signature.Sign(cfg, []byte("Hello, World!"), time.Now(), "")
	if err != nil {
		panic(err)
	}
	for _, h := range headers {
		fmt.Printf("%s: %s\n", h[0], h[1])
	}
	// Output: X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17
}

func ExampleVerifier_Begin() {
	cfg := signature.Config{Scheme: signature.StandardWebhooks, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}
	v, err := signature.Compile(cfg)
	if err != nil {
		panic(err)
	}
	r := request{http.Header{}}
	r.h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	r.h.Set("webhook-timestamp", "1614265330")
	r.h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	now := time.Unix(1614265330, 0).UnixNano()

	var c signature.Check // in the gateway, part of the pooled per-request state
	if err := v.Begin(&c, r, now); err != nil {
		fmt.Println("refused before the body:", err)
		return
	}
	c.Write([]byte(`{"test": `)) // the body as it streams in
	c.Write([]byte(`2432232314}`))
	if err := c.Finish(); err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Printf("accepted, idempotency key %s\n", c.IdempotencyKey())

	// An hour later the same request is refused before its body is read.
	err = v.Begin(&c, r, now+int64(time.Hour))
	fmt.Println(err)
	// Output:
	// accepted, idempotency key msg_p5jXN8AQM9LWM0D4loKWxJek
	// signature timestamp outside the tolerance
}
