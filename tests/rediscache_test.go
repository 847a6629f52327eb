package tests

import (
	"fmt"
	"github.com/edgesession/edgesession/sessionstore/storetest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Two Caddy instances with the Redis store's cache on: a data change and
// a logout on one are seen on the other far sooner than the max age (a
// minute here, so that only Redis's invalidation push can explain it).
func TestTwoCaddyInstancesShareRedisCache(t *testing.T) {
	url := redisURL(t)
	up := StartUpstream(t)
	store := fmt.Sprintf("redis %s {\n\t\t\tprefix %s\n\t\t\tcache 1m\n\t\t}", url, storetest.RedisPrefix(t))
	const more = "secret shared-by-both-instances-0123456789\n\t\tupstream_control on"
	a := startSite(t, up, store, more)
	b := startSite(t, up, store, more)
	const bound = 10 * time.Second // a poll's limit, far below the max age

	var delays []time.Duration
	seenOnB := func(what string, cond func() bool) {
		t.Helper()
		start := time.Now()
		waitFor(t, bound, what, cond)
		delays = append(delays, time.Since(start))
	}
	for round := range 5 {
		onA := NewClient(t, a.Site)
		onA.MustLogin("alice", alicePassword)
		onB := NewClient(t, b.Site)
		onB.SetSessionCookie(onA.SessionCookie())
		for range 3 { // B now holds the session in memory
			if e := onB.Get("/private").Echo(t); e.Headers["X-Session-User"][0] != "alice" {
				t.Fatal("a login on A is not valid on B")
			}
		}
		cart := fmt.Sprint("apple", round)
		onA.Get("/x?h=X-Session-Set-Cart:" + cart)
		seenOnB("a data change on A to be seen on B", func() bool {
			v := onB.Get("/private").Echo(t).Headers["X-Session-Data-Cart"]
			return len(v) == 1 && v[0] == cart
		})
		if r := onA.LogoutJSON(); r.StatusCode != 204 {
			t.Fatalf("logout on A: %d", r.StatusCode)
		}
		seenOnB("a logout on A to be seen on B", func() bool {
			code, _ := onB.Whoami()
			return code == 401
		})
	}
	slices.Sort(delays)
	t.Logf("end to end, change on A seen on B after: median %v, max %v (includes one request on B; max age 1m)",
		delays[len(delays)/2], delays[len(delays)-1])
}

// With the cache on, a Redis that stops drops the cache: the session is
// not served from memory, requests that need a user get 503.
func TestRedisCacheOutageFailsClosed(t *testing.T) {
	rs := StartRedisServer(t)
	up := StartUpstream(t)
	store := fmt.Sprintf("redis %s {\n\t\t\tdial_timeout 300ms\n\t\t\tcache 1h\n\t\t}", rs.URL())
	c := startSite(t, up, store, "")
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	cl.Allow5xx = true
	for range 3 {
		if code, _ := cl.Whoami(); code != 200 {
			t.Fatalf("whoami: %d", code)
		}
	}
	for _, how := range []string{"stopped", "paused"} {
		t.Run(how, func(t *testing.T) {
			if how == "stopped" {
				rs.Stop()
				defer rs.Start()
			} else {
				cl.MustLogin("alice", alicePassword) // the restarted Redis is empty
				for range 3 {
					cl.Whoami()
				}
				rs.Pause()
				defer rs.Resume()
			}
			// A stop is noticed at once; a hang after unanswered pings (about 3s).
			waitFor(t, 5*time.Second, "the cached session to be dropped", func() bool {
				r := cl.Get("/private")
				return r.StatusCode == 503
			})
			before := up.Requests.Load()
			for range 5 {
				if r := cl.Get("/private"); r.StatusCode != 503 {
					t.Fatalf("protected route with Redis %s: %d, want 503", how, r.StatusCode)
				}
			}
			if up.Requests.Load() != before {
				t.Fatal("a protected request reached the upstream while Redis was down")
			}
		})
	}
}

// TestTwoCaddyInstancesAdminRevokeWithCache: two Caddy instances share a
// Redis with the cache on for a minute, so that only Redis's invalidation
// push can end a session on B sooner. A session that B holds in memory,
// revoked through A's admin API (that session alone, all of its user's, or
// every session), is refused by B soon after.
func TestTwoCaddyInstancesAdminRevokeWithCache(t *testing.T) {
	rs := StartRedisServer(t)
	up := StartUpstream(t)
	store := fmt.Sprintf("redis %s {\n\t\t\tprefix admin-cache:\n\t\t\tcache 1m\n\t\t}", rs.URL())
	const secret = "secret shared-by-both-instances-0123456789"
	a := startSite(t, up, store, secret)
	b := startSite(t, up, store, secret)

	stale := 0 // requests B answered 200 after a revocation on A returned
	refused := func(c *Client) func() bool {
		return func() bool {
			code, _ := c.Whoami()
			if code == 200 {
				stale++
			}
			return code == 401
		}
	}
	delays := map[string][]time.Duration{}
	var all []time.Duration
	for round := range 21 {
		alice, bob := NewClient(t, a.Site), NewClient(t, a.Site)
		alice.MustLogin("alice", alicePassword)
		bob.MustLogin("bob", bobPassword)
		aliceB, bobB := NewClient(t, b.Site), NewClient(t, b.Site)
		aliceB.SetSessionCookie(alice.SessionCookie())
		bobB.SetSessionCookie(bob.SessionCookie())
		servedFromMemory(t, aliceB, rs.Port)
		servedFromMemory(t, bobB, rs.Port)

		var how, method, path, body string
		method = "DELETE"
		switch round % 3 {
		case 0:
			sessions := adminList(t, a, "alice")
			if len(sessions) != 1 {
				t.Fatalf("A lists %d sessions of alice, want 1", len(sessions))
			}
			how, path = "one session", "/session/users/alice/"+sessions[0].Handle
		case 1:
			how, path = "the user's sessions", "/session/users/alice"
		case 2:
			how, method, path, body = "every session", "POST", "/session/revoke-all", `{"confirm":"every session"}`
		}
		if code, body := a.Admin(method, path, body); code != 200 || !strings.Contains(string(body), `"revoked":`) {
			t.Fatalf("%s %s on A: %d %s", method, path, code, body)
		}
		d := waitTime(t, 10*time.Second, "B to refuse alice's session after "+how+" revoked on A", refused(aliceB))
		delays[how] = append(delays[how], d)
		all = append(all, d)
		if how == "every session" {
			waitTime(t, 10*time.Second, "B to refuse bob's session after every session was revoked on A", refused(bobB))
			continue
		}
		if code, _ := bobB.Whoami(); code != 200 {
			t.Fatalf("revoking %s of alice's ended bob's session on B: %d", how, code)
		}
		a.Admin("DELETE", "/session/users/bob") // each round starts with no session
	}
	for _, how := range []string{"one session", "the user's sessions", "every session"} {
		ds := delays[how]
		med, p90 := quantiles(ds)
		t.Logf("%s revoked on A, refused on B after: median %v, p90 %v (n=%d)", how, med, p90, len(ds))
	}
	med, p90 := quantiles(all)
	t.Logf("admin revocation on A seen on B (cache 1m) after: median %v, p90 %v, max %v (n=%d; includes one request on B); "+
		"requests B still accepted after a revocation returned: %d", med, p90, all[len(all)-1], len(all), stale)
}

// servedFromMemory uses c's session until its Caddy answers from memory: a
// request that does not make the Redis on port read anything (GET).
func servedFromMemory(t *testing.T, c *Client, port int) {
	t.Helper()
	waitFor(t, 10*time.Second, "the session to be served from memory", func() bool {
		before := redisGets(t, port)
		if code, _ := c.Whoami(); code != 200 {
			t.Fatalf("whoami: %d", code)
		}
		return redisGets(t, port) == before
	})
}

// redisGets is how many GETs the Redis on port has answered.
func redisGets(t *testing.T, port int) int {
	t.Helper()
	for line := range strings.Lines(redisCLI(t, "-p", fmt.Sprint(port), "info", "commandstats")) {
		if rest, ok := strings.CutPrefix(line, "cmdstat_get:calls="); ok {
			n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			if err != nil {
				t.Fatalf("info commandstats: %q", line)
			}
			return n
		}
	}
	return 0
}

// waitTime polls cond about every millisecond until it holds, failing the
// test after limit, and returns how long that took.
func waitTime(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// quantiles sorts ds and returns its median and 90th percentile.
func quantiles(ds []time.Duration) (median, p90 time.Duration) {
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*9/10]
}
