package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// twoSitesTemplate is one Caddy with two sites on two ports, all defaults
// (generated secret, default bolt store, unless [[.Extra.store]] says
// otherwise): A knows alice, B knows only carol.
const twoSitesTemplate = `
[[.Site]] {
	session {
		[[.Extra.store]]
		user alice [[.Extra.alice]]
	}
	reverse_proxy [[.Upstream]]
}
http://127.0.0.1:[[.Extra.portB]] {
	session {
		[[.Extra.store]]
		user carol [[.Extra.bob]]
	}
	reverse_proxy [[.Upstream]]
}
`

// TestSessionBelongsToItsSite: a session from one handler is no login in
// another that shares the secret and the store (SPEC §6).
func TestSessionBelongsToItsSite(t *testing.T) {
	for _, store := range []string{"", "store cookie", "store memory"} {
		name := store
		if name == "" {
			name = "defaults"
		}
		t.Run(name, func(t *testing.T) {
			up := StartUpstream(t)
			portB := freePort(t)
			c := StartCaddy(t, up.Addr, twoSitesTemplate, WithExtra("store", store), WithExtra("portB", portB),
				WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
			siteB := fmt.Sprintf("http://127.0.0.1:%d", portB)

			a := NewClient(t, c.Site)
			a.MustLogin("alice", alicePassword)
			if a.Get("/private").StatusCode != 200 {
				t.Fatal("alice is not logged in on A")
			}
			before := up.Requests.Load()
			r := rawGet(t, siteB, "/private", "Cookie: caddy_session="+a.SessionCookie(), "Accept: application/json")
			if r.StatusCode != 401 {
				t.Fatalf("alice's cookie from A on B: %d %s; want 401", r.StatusCode, r.Body)
			}
			if up.Requests.Load() != before {
				t.Fatal("alice's cookie from A reached B's upstream")
			}
			// Nor does B's refusal log alice out on A's cookie.
			if strings.Contains(r.Header.Get("Set-Cookie"), "caddy_session=;") {
				t.Errorf("B expired a session it did not issue: %q", r.Header.Get("Set-Cookie"))
			}
			b := NewClient(t, siteB)
			b.MustLogin("carol", bobPassword)
			if r := rawGet(t, c.Site, "/private", "Cookie: caddy_session="+b.SessionCookie()); r.StatusCode != 401 {
				t.Fatalf("carol's cookie from B on A: %d; want 401", r.StatusCode)
			}
		})
	}
}

// TestHandleBlocksOfOneSite: two handle blocks of one site, each with its
// own session handler and users. Without a realm, a user of one is no
// login in the other; with realms, not even a user both know.
func TestHandleBlocksOfOneSite(t *testing.T) {
	const tmpl = `
[[.Site]] {
	handle /a/* {
		session {
			store memory
			path_prefix /a/.session
			user alice [[.Extra.alice]]
			[[.Extra.realmA]]
		}
		reverse_proxy [[.Upstream]]
	}
	handle /b/* {
		session {
			store memory
			path_prefix /b/.session
			user carol [[.Extra.bob]]
			user alice [[.Extra.alice]]
			[[.Extra.realmB]]
		}
		reverse_proxy [[.Upstream]]
	}
}
`
	login := func(t *testing.T, c *Caddy, prefix, user, pw string) string {
		t.Helper()
		r := NewClient(t, c.Site).Post(prefix+"/login", "application/json", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw))
		if r.StatusCode != 200 {
			t.Fatalf("login %s at %s: %d %s", user, prefix, r.StatusCode, r.Body)
		}
		return strings.SplitN(r.Header.Get("Set-Cookie"), ";", 2)[0]
	}
	up := StartUpstream(t)
	t.Run("no realm", func(t *testing.T) {
		c := StartCaddy(t, up.Addr, tmpl, WithExtra("alice", aliceHash), WithExtra("bob", bobHash), WithExtra("realmA", ""), WithExtra("realmB", ""))
		carol := login(t, c, "/b/.session", "carol", bobPassword)
		if r := rawGet(t, c.Site, "/a/x", "Cookie: "+carol); r.StatusCode != 401 {
			t.Fatalf("carol of /b/ on /a/: %d; want 401", r.StatusCode)
		}
		// Same user, same password in both: the same login.
		alice := login(t, c, "/a/.session", "alice", alicePassword)
		if r := rawGet(t, c.Site, "/b/x", "Cookie: "+alice); r.StatusCode != 200 {
			t.Fatalf("alice of /a/ on /b/ (same user, same hash, no realm): %d; want 200", r.StatusCode)
		}
	})
	t.Run("realms", func(t *testing.T) {
		c := StartCaddy(t, up.Addr, tmpl, WithExtra("alice", aliceHash), WithExtra("bob", bobHash), WithExtra("realmA", "realm app-a"), WithExtra("realmB", "realm app-b"))
		alice := login(t, c, "/a/.session", "alice", alicePassword)
		if !strings.HasPrefix(alice, "caddy_session_app-a=") {
			t.Fatalf("cookie %q: want the realm's name caddy_session_app-a", alice)
		}
		if r := rawGet(t, c.Site, "/a/x", "Cookie: "+alice); r.StatusCode != 200 {
			t.Fatalf("alice on /a/: %d", r.StatusCode)
		}
		value := strings.SplitN(alice, "=", 2)[1]
		if r := rawGet(t, c.Site, "/b/x", "Cookie: caddy_session_app-b="+value); r.StatusCode != 401 {
			t.Fatalf("alice's realm app-a session in realm app-b: %d; want 401", r.StatusCode)
		}
	})
}

// TestUserRemovedOrPasswordChangedLosesSessions: the password fingerprint
// recorded at login is checked at every request.
func TestUserRemovedOrPasswordChangedLosesSessions(t *testing.T) {
	forStores(t, allStores, func(t *testing.T, store string) {
		up := StartUpstream(t)
		path := t.TempDir() + "/users"
		writeFile(t, path, "alice:"+aliceHash+"\nbob:"+bobHash+"\n")
		c := StartCaddy(t, up.Addr, `
[[.Site]] {
	session {
		store [[.Extra.store]]
		users_file [[.Extra.file]]
	}
	reverse_proxy [[.Upstream]]
}
`, WithExtra("store", store), WithExtra("file", path))
		alice, bob := NewClient(t, c.Site), NewClient(t, c.Site)
		alice.MustLogin("alice", alicePassword)
		bob.MustLogin("bob", bobPassword)

		// bob's password changes (same password, new salt: a new hash).
		newBob := bcryptHash(t, bobPassword)
		writeFile(t, path, "alice:"+aliceHash+"\nbob:"+newBob+"\n")
		waitFor(t, 10*time.Second, "bob's old session to end", func() bool { return bob.Get("/private").StatusCode == 401 })
		if alice.Get("/private").StatusCode != 200 {
			t.Fatal("alice lost her session when bob's password changed")
		}
		bob.MustLogin("bob", bobPassword)
		if bob.Get("/private").StatusCode != 200 {
			t.Fatal("bob cannot log in again with the new hash")
		}

		// alice is removed.
		writeFile(t, path, "bob:"+newBob+"\n")
		waitFor(t, 10*time.Second, "alice's session to end", func() bool { return alice.Get("/private").StatusCode == 401 })
		if bob.Get("/private").StatusCode != 200 {
			t.Fatal("bob lost his session when alice was removed")
		}
	})
}

// TestLoginCarriesNoOtherUsersData: data the app set for alice never moves
// into bob's session when bob logs in from the same browser, by any way of
// logging in; an anonymous visitor's data and the same user's do.
func TestLoginCarriesNoOtherUsersData(t *testing.T) {
	forStores(t, allStores, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "upstream_control on")
		ways := map[string]func(cl *Client){
			"form": func(cl *Client) { cl.LoginForm("bob", bobPassword, "/") },
			"json": func(cl *Client) { cl.MustLogin("bob", bobPassword) },
			"upstream": func(cl *Client) {
				cl.Get("/private?h=X-Session-Login:bob")
			},
		}
		for way, loginBob := range ways {
			t.Run(way, func(t *testing.T) {
				cl := NewClient(t, c.Site)
				cl.MustLogin("alice", alicePassword)
				cl.Get("/private?h=X-Session-Set-Role:admin&h=X-Session-Set-Tenant:acme")
				if e := cl.Get("/private").Echo(t); e.Headers["X-Session-Data-Role"] == nil {
					t.Fatal("the app's data was not stored")
				}
				loginBob(cl)
				e := cl.Get("/private").Echo(t)
				if got := e.Headers["X-Session-User"]; len(got) != 1 || got[0] != "bob" {
					t.Fatalf("after bob's %s login the user is %q", way, got)
				}
				if e.Headers["X-Session-Data-Role"] != nil || e.Headers["X-Session-Data-Tenant"] != nil {
					t.Fatalf("bob got alice's data: role %q, tenant %q", e.Headers["X-Session-Data-Role"], e.Headers["X-Session-Data-Tenant"])
				}
			})
		}
		t.Run("anonymous and same user carry over", func(t *testing.T) {
			cl := NewClient(t, c.Site)
			cl.Get("/public/x?h=X-Session-Set-Cart:apple")
			cl.MustLogin("bob", bobPassword)
			cl.MustLogin("bob", bobPassword)
			if e := cl.Get("/private").Echo(t); fmt.Sprint(e.Headers["X-Session-Data-Cart"]) != "[apple]" {
				t.Fatalf("cart after logging in twice: %q", e.Headers["X-Session-Data-Cart"])
			}
		})
	})
}

// TestConcurrentChangesAllTakeEffect: a slow request that sets one key does
// not bring back a key a faster request deleted meanwhile (a demotion
// undone), nor lose the faster request's own key.
func TestConcurrentChangesAllTakeEffect(t *testing.T) {
	forEachStore(t, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "upstream_control on")
		cl := NewClient(t, c.Site)
		cl.MustLogin("alice", alicePassword)
		cl.Get("/private?h=X-Session-Set-Role:admin")

		release := up.HoldNext()
		done := make(chan *Response)
		n := up.Requests.Load()
		go func() { done <- cl.Get("/hold?h=X-Session-Set-Theme:dark") }()
		waitFor(t, 5*time.Second, "the slow request to reach the upstream", func() bool { return up.Requests.Load() > n })
		cl.Get("/private?h=X-Session-Delete:role&h=X-Session-Set-Mfa:pending")
		release()
		<-done

		e := cl.Get("/private").Echo(t)
		if e.Headers["X-Session-Data-Role"] != nil {
			t.Errorf("the deleted role came back: %q", e.Headers["X-Session-Data-Role"])
		}
		if fmt.Sprint(e.Headers["X-Session-Data-Theme"], e.Headers["X-Session-Data-Mfa"]) != "[dark] [pending]" {
			t.Errorf("theme %q, mfa %q; want both changes", e.Headers["X-Session-Data-Theme"], e.Headers["X-Session-Data-Mfa"])
		}
	})
}

// TestDeadCookieDoesNotHideTheLiveOne: with several session cookies in one
// request (a stale one, one tossed from a sibling domain), the live session
// wins and nothing expires it.
func TestDeadCookieDoesNotHideTheLiveOne(t *testing.T) {
	forStores(t, allStores, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "")
		old := NewClient(t, c.Site)
		old.MustLogin("alice", alicePassword)
		dead := old.SessionCookie()
		if !strings.Contains(store, "cookie") {
			old.LogoutJSON()
		}
		other := startSite(t, up, "memory", "")
		foreignCl := NewClient(t, other.Site)
		foreignCl.MustLogin("bob", bobPassword)
		foreign := foreignCl.SessionCookie()
		live := NewClient(t, c.Site)
		live.MustLogin("bob", bobPassword)

		for name, cookies := range map[string][]string{
			"dead first":        {dead, live.SessionCookie()},
			"foreign first":     {foreign, live.SessionCookie()},
			"garbage first":     {"garbage", live.SessionCookie()},
			"dead and foreign":  {dead, foreign, live.SessionCookie()},
			"two Cookie fields": {dead + "\r\nCookie: caddy_session=" + live.SessionCookie()},
		} {
			if store == "cookie" && (strings.Contains(name, "dead") || strings.Contains(name, "Cookie fields")) {
				continue // logout cannot kill a copied cookie-store cookie
			}
			t.Run(name, func(t *testing.T) {
				r := rawGet(t, c.Site, "/private", "Cookie: caddy_session="+strings.Join(cookies, "; caddy_session="))
				if r.StatusCode != 200 || !strings.Contains(string(r.Body), `"X-Session-User":["bob"]`) {
					t.Fatalf("%d %s; want bob's page", r.StatusCode, r.Body)
				}
				if sc := r.Header.Get("Set-Cookie"); strings.Contains(sc, "Max-Age=0") {
					t.Fatalf("the live session's cookie was expired: %q", sc)
				}
			})
		}
	})
}

// TestDeleteOnlyCreatesNoSession: an upstream that deletes keys on every
// page (a flash message, say) gives anonymous visitors no stored session.
func TestDeleteOnlyCreatesNoSession(t *testing.T) {
	forStores(t, allStores, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "upstream_control on")
		cl := NewClient(t, c.Site)
		r := cl.Get("/public/x?h=X-Session-Delete:flash")
		if r.StatusCode != 200 || r.Header.Get("Set-Cookie") != "" || cl.SessionCookie() != "" {
			t.Fatalf("a delete-only response to an anonymous visitor set %q", r.Header.Get("Set-Cookie"))
		}
	})
}

// bcryptHash hashes pw at the minimum cost.
func bcryptHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}
