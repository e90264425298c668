package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOverlappingReloadsEndOnTheFile: a reload asked for while another
// is still compiling a large file — POST /reload, SIGHUP and the file
// watcher each start one — must not let the older file win. Once every
// reload has answered, the live configuration is the file's last
// content.
func TestOverlappingReloadsEndOnTheFile(t *testing.T) {
	const (
		tokStart = "tok-start-0123456789abcdefgh"
		tokBig   = "tok-big-0123456789abcdefghij"
		tokLast  = "tok-last-0123456789abcdefghi"
	)
	admin := "http://" + freeAddr(t)
	head := "listen: LISTEN\nadmin_listen: " + strings.TrimPrefix(admin, "http://") + "\ntables:\n  - id: t\n    automations:\n"
	small := func(tok string) string { return head + "      - {id: a, token: " + tok + "}\n" }
	var big strings.Builder
	big.WriteString(small(tokBig))
	for i := range 40000 {
		fmt.Fprintf(&big, "      - {id: bulk%d, token: tok-bulk-%06d-0123456789abcdef, keywords: [k%d]}\n", i, i, i)
	}
	g := startGateway(t, small(tokStart))
	path := filepath.Join(g.dir, "hookgate.yaml")
	write := func(content string) {
		content = strings.ReplaceAll(content, "LISTEN", strings.TrimPrefix(g.Base, "http://"))
		if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}

	write(big.String())
	slow := make(chan string, 1)
	go func() {
		status, body := get(t, "POST", admin+"/reload")
		slow <- fmt.Sprintf("%d %s", status, body)
	}()
	time.Sleep(100 * time.Millisecond) // the slow reload has read the large file
	write(small(tokLast))
	status, body := get(t, "POST", admin+"/reload")
	if status != 200 {
		t.Fatalf("second POST /reload: %d %s", status, body)
	}
	t.Logf("second reload: %s; first: %s", strings.TrimSpace(body), strings.TrimSpace(<-slow))
	// The watcher's reload of the last write (200 ms after it) has
	// answered too by now.
	time.Sleep(1500 * time.Millisecond)
	post(t, "POST", g.url(tokLast), productBody).want(t, 200, 0, "")
	post(t, "POST", g.url(tokBig), productBody).want(t, 404, 800004404, "webhook not found")
	if strings.Contains(g.log(), "tok-") {
		t.Error("a webhook token reached the log")
	}
}
