package tests

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestLoginThrottling(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "login_limit 3 1m", WithGlobals("servers {\n trusted_proxies static 127.0.0.1/32\n}"))
	from := func(ip string) string { return "X-Forwarded-For: " + ip }

	cl := NewClient(t, c.Site)
	for i := range 3 {
		if r := cl.LoginJSON("alice", "wrong", from("203.0.113.1")); r.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i+1, r.StatusCode)
		}
	}
	// Locked out, even with the right password: it is not checked.
	r := cl.LoginJSON("alice", alicePassword, from("203.0.113.1"))
	if r.StatusCode != 429 {
		t.Fatalf("after 3 failures: %d, want 429", r.StatusCode)
	}
	var retryAfter int
	if _, err := fmt.Sscan(r.Header.Get("Retry-After"), &retryAfter); err != nil || retryAfter < 50 || retryAfter > 60 {
		t.Fatalf("Retry-After = %q, want about 60", r.Header.Get("Retry-After"))
	}
	if cl.SessionCookie() != "" {
		t.Fatal("a throttled login set a cookie")
	}
	// The same user from another IP logs in; another user from the
	// locked IP too.
	if r := NewClient(t, c.Site).LoginJSON("alice", alicePassword, from("198.51.100.2")); r.StatusCode != 200 {
		t.Fatalf("alice from another IP: %d", r.StatusCode)
	}
	if r := NewClient(t, c.Site).LoginJSON("bob", bobPassword, from("203.0.113.1")); r.StatusCode != 200 {
		t.Fatalf("bob from the IP that locked alice: %d", r.StatusCode)
	}
	if !strings.Contains(c.Logs(), `"msg":"login throttled","user":"alice","remote_ip":"203.0.113.1"`) {
		t.Error("the lockout was not logged with user and remote_ip")
	}

	// One IP spraying many usernames is stopped at 4× the limit.
	spray := NewClient(t, c.Site)
	codes := map[int]int{}
	for i := range 14 {
		codes[spray.LoginJSON(fmt.Sprintf("user%d", i), "x", from("192.0.2.9")).StatusCode]++
	}
	if codes[401] != 12 || codes[429] != 2 {
		t.Fatalf("spraying 14 usernames from one IP: %v, want 12×401 then 429", codes)
	}

	// Parallel guesses cannot slip past the limit while hashes are checked.
	var wg sync.WaitGroup
	var mu sync.Mutex
	par := map[int]int{}
	for range 20 {
		wg.Go(func() {
			code := NewClient(t, c.Site).LoginJSON("bob", "wrong", from("192.0.2.77")).StatusCode
			mu.Lock()
			par[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if par[401] != 3 || par[429] != 17 {
		t.Fatalf("20 parallel guesses: %v, want exactly 3 checked", par)
	}
}

func TestThrottleIgnoresForgedForwardedFor(t *testing.T) {
	// Without trusted_proxies, X-Forwarded-For is the client's word and
	// must not get it out of a lockout.
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "login_limit 2 1m")
	cl := NewClient(t, c.Site)
	cl.LoginJSON("alice", "wrong")
	cl.LoginJSON("alice", "wrong")
	if r := cl.LoginJSON("alice", alicePassword, "X-Forwarded-For: 198.51.100.99"); r.StatusCode != 429 {
		t.Fatalf("a forged X-Forwarded-For escaped the lockout: %d", r.StatusCode)
	}
}
