package tests

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// Two Caddy instances with the Redis store's cache on: a data change and
// a logout on one are seen on the other far sooner than the max age (5s
// here), through Redis's invalidation push.
func TestTwoCaddyInstancesShareRedisCache(t *testing.T) {
	url := redisURL(t)
	up := StartUpstream(t)
	store := fmt.Sprintf("redis %s {\n\t\t\tprefix scaleout-cache-%d:\n\t\t\tcache 5s\n\t\t}", url, time.Now().UnixNano())
	const more = "secret shared-by-both-instances-0123456789\n\t\tupstream_control on"
	a := startSite(t, up, store, more)
	b := startSite(t, up, store, more)
	const bound = time.Second

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
	t.Logf("end to end, change on A seen on B after: median %v, max %v (includes one request on B; max age 5s)",
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
