package tests

import (
	"strings"
	"testing"
	"time"
)

func TestReloadsKeepSessions(t *testing.T) {
	forStores(t, allStores, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "")
		cl := NewClient(t, c.Site)
		cl.MustLogin("alice", alicePassword)

		// Two reloads in a row, each a real config change. Caddy provisions
		// the new config before it cleans up the old one: a bolt store not
		// shared through the pool would wait for its own file lock and fail
		// the reload after the lock timeout, so a reload that succeeds did
		// not wait on the store. (No wall-clock bound here: under load a
		// race-built `caddy reload` alone can take seconds.)
		for _, more := range []string{"path_prefix /.auth", "path_prefix /.session"} {
			c.Reload(strings.Replace(siteTemplate, "[[.Extra.more]]", more, 1))
		}
		if code, user := cl.Whoami(); code != 200 || user != "alice" {
			t.Fatalf("after two reloads: whoami %d %q", code, user)
		}
		if e := cl.Get("/app").Echo(t); e.Headers["X-Session-User"][0] != "alice" {
			t.Fatal("after two reloads the upstream does not see alice")
		}
		// Logins keep working on the new config too.
		cl2 := NewClient(t, c.Site)
		cl2.MustLogin("bob", bobPassword)
	})
}

func TestBoltSessionsSurviveKillAndRestart(t *testing.T) {
	up := StartUpstream(t)
	// No secret configured: the generated one must be kept in Caddy's
	// storage for the restart to keep sessions.
	c := startSite(t, up, "bolt", "")
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	cl.Get("/.session/whoami")
	c.Restart() // SIGKILL, then start again
	if code, user := cl.Whoami(); code != 200 || user != "alice" {
		t.Fatalf("after kill -9 and restart: whoami %d %q", code, user)
	}
	if !strings.Contains(c.Logs(), "generated a session secret") {
		t.Error("the first start did not log generating the secret")
	}
	if n := strings.Count(c.Logs(), "generated a session secret"); n != 1 {
		t.Errorf("the secret was generated %d times; the restart must reuse it", n)
	}
}

func TestMemorySessionsDoNotSurviveRestart(t *testing.T) {
	// The contract of the memory store, and proof that the bolt test
	// above tests something.
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "")
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	c.Restart()
	if code, _ := cl.Whoami(); code != 401 {
		t.Fatalf("a memory session survived a restart: %d", code)
	}
}

func TestSecretRotation(t *testing.T) {
	up := StartUpstream(t)
	const a = "secret-A-0123456789abcdefghijklmnopqrstuv"
	const b = "secret-B-0123456789abcdefghijklmnopqrstuv"
	c := startSite(t, up, "memory", "secret "+a)
	old := NewClient(t, c.Site)
	old.MustLogin("alice", alicePassword)

	// New secret first, old one still accepted.
	c.Reload(strings.Replace(siteTemplate, "[[.Extra.more]]", "secret "+b+" "+a, 1))
	if code, _ := old.Whoami(); code != 200 {
		t.Fatalf("a cookie signed with the older secret was refused during rotation: %d", code)
	}
	fresh := NewClient(t, c.Site)
	fresh.MustLogin("bob", bobPassword)

	// Old secret dropped: its cookies stop working, the new ones go on.
	c.Reload(strings.Replace(siteTemplate, "[[.Extra.more]]", "secret "+b, 1))
	if code, _ := old.Whoami(); code != 401 {
		t.Fatalf("a cookie signed with a dropped secret still works: %d", code)
	}
	if code, user := fresh.Whoami(); code != 200 || user != "bob" {
		t.Fatalf("a cookie signed with the new secret: %d %q", code, user)
	}
}

func TestSecretFromEnvAndFile(t *testing.T) {
	up := StartUpstream(t)
	dir := t.TempDir()
	writeFile(t, dir+"/secret", "file-secret-0123456789abcdefghijklmnopqrstuv\n")
	t.Setenv("EDGESESSION_TEST_SECRET", "env-secret-0123456789abcdefghijklmnopqrstuv")
	c := startSite(t, up, "memory", "secret {env.EDGESESSION_TEST_SECRET} {file."+dir+"/secret}")
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	stolenCopy := cl.SessionCookie() // the 401 below clears it from the jar

	// The cookie was signed with the first secret (from the environment).
	// Without that secret it is refused; with it as an older secret, it
	// is accepted again (the memory store keeps the session meanwhile).
	withSecrets := func(s string) string { return strings.Replace(siteTemplate, "[[.Extra.more]]", "secret "+s, 1) }
	c.Reload(withSecrets("{file." + dir + "/secret}"))
	if code, _ := cl.Whoami(); code != 401 {
		t.Fatalf("the cookie was accepted without the secret that signed it: %d", code)
	}
	cl.SetSessionCookie(stolenCopy)
	c.Reload(withSecrets("{file." + dir + "/secret} {env.EDGESESSION_TEST_SECRET}"))
	if code, _ := cl.Whoami(); code != 200 {
		t.Fatalf("the cookie was refused with its secret as an older one: %d", code)
	}
	// Short or missing secrets are refused at start.
	_, err := c.TryReload(strings.Replace(siteTemplate, "[[.Extra.more]]", "secret {env.EDGESESSION_NO_SUCH_VAR}", 1))
	if err == nil {
		t.Fatal("an empty {env.*} secret was accepted")
	}
	_, err = c.TryReload(strings.Replace(siteTemplate, "[[.Extra.more]]", "secret short", 1))
	if err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("a short secret: %v", err)
	}
	if strings.Contains(c.Logs(), "env-secret-0123") || strings.Contains(c.Logs(), "file-secret-0123") {
		t.Fatal("a secret reached the log")
	}
	// The failed reloads left the running config alone.
	if code, _ := cl.Whoami(); code != 200 {
		t.Fatalf("after refused reloads: %d", code)
	}
}

func TestLogoutWinsOverRequestInFlight(t *testing.T) {
	forEachStore(t, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "upstream_control on\nidle_timeout 1s")
		cl := NewClient(t, c.Site)
		cl.MustLogin("alice", alicePassword)
		stolen := cl.SessionCookie()

		// A slow request loads the session, then the user logs out, then
		// the slow request finishes with a session write and after more
		// than 1/20 of the idle timeout (a last-seen write-back).
		release := up.HoldNext()
		done := make(chan *Response)
		slow := NewClient(t, c.Site)
		slow.SetSessionCookie(stolen)
		go func() { done <- slow.Get("/hold?h=X-Session-Set-Cart:resurrected") }()
		waitFor(t, 5*time.Second, "the slow request to reach the upstream", func() bool { return up.Requests.Load() >= 1 })
		if r := cl.LogoutJSON(); r.StatusCode != 204 {
			t.Fatalf("logout: %d", r.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
		release()
		<-done

		replay := NewClient(t, c.Site)
		replay.SetSessionCookie(stolen)
		if code, _ := replay.Whoami(); code != 401 {
			t.Fatalf("the session came back after logout: whoami %d", code)
		}
		if !strings.Contains(c.Logs(), "logged out meanwhile") {
			t.Error("the dropped write was not logged")
		}
	})
}
