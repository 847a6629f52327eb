package tests

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// oidcTemplate is a site whose users sign in with the test provider: as
// "test" (claims from userinfo; allow-lists: a verified example.com email
// or group staff) and as "idclaims" (claims in the ID token, no
// allow-lists, the email as user name). [[.Extra.users]] may add local
// users, [[.Extra.testopts]] options of "test"; [[.Extra.store]] is the
// store.
const oidcTemplate = `
[[.Site]] {
	session {
		[[.Extra.store]]
		secret 0123456789abcdef0123456789abcdef
		[[.Extra.users]]
		oidc test {
			issuer [[.Extra.issuer]]
			client_id edge
			client_secret [[.Extra.secret]]
			claims groups
			allow_domains example.com
			allow_groups staff
			label "Sign in with Test"
			[[.Extra.testopts]]
		}
		oidc idclaims {
			issuer [[.Extra.issuer]]
			client_id edge-id
			client_secret [[.Extra.secret]]
			username_claim email
		}
	}
	reverse_proxy [[.Upstream]]
}
`

// startOIDCSite starts a provider and a Caddy that signs in with it
// (oidcTemplate, with the memory store unless opts say otherwise).
func startOIDCSite(t *testing.T, opts ...Option) (*Caddy, *OP, *Upstream) {
	t.Helper()
	port := freePort(t)
	site := "http://127.0.0.1:" + strconv.Itoa(port)
	o := StartOP(t, 0, site)
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, oidcTemplate, append([]Option{WithSitePort(port), WithExtra("issuer", o.Issuer), WithExtra("secret", opSecret),
		WithExtra("users", ""), WithExtra("store", "store memory"), WithExtra("testopts", "")}, opts...)...)
	return c, o, up
}

// TestOIDCLogin: a login through the provider, end to end: the login page
// links to the provider, the provider's login form, the callback, the
// session, and the user, data and groups at the upstream.
func TestOIDCLogin(t *testing.T) {
	c, o, up := startOIDCSite(t)
	cl := NewClient(t, c.Site)

	// A browser is sent to the login page, which has only the provider
	// buttons (no local users), as links.
	r := cl.Get("/private?x=1", "Accept: text/html")
	if r.StatusCode != http.StatusFound {
		t.Fatalf("anonymous: %d", r.StatusCode)
	}
	page := cl.Get(r.Header.Get("Location"), "Accept: text/html")
	body := string(page.Body)
	if !strings.Contains(body, `href="/.session/login?provider=test&amp;redirect=%2Fprivate%3Fx%3D1"`) || !strings.Contains(body, "Sign in with Test") || !strings.Contains(body, "provider=idclaims") {
		t.Fatalf("login page without provider links:\n%s", body)
	}
	if strings.Contains(body, `type="password"`) {
		t.Errorf("login page has a password form without local users:\n%s", body)
	}

	before := up.Requests.Load()
	cb := StartOIDCLogin(t, cl, "test", "/private?x=1", "alice", "alice-pw")
	if !strings.HasPrefix(cb, c.Site+"/.session/oidc/test/callback?") {
		t.Fatalf("callback %s", cb)
	}
	r = FinishOIDCLogin(t, cl, cb)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/private?x=1" {
		t.Fatalf("callback: %d %s %s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	if up.Requests.Load() != before {
		t.Error("the login reached the upstream")
	}
	e := cl.Get("/private").Echo(t)
	want := map[string]string{
		"X-Session-User":        "test:alice",
		"X-Session-Source":      "oidc:test",
		"X-Session-Data-Email":  "alice@example.com",
		"X-Session-Data-Name":   "Alice Example",
		"X-Session-Data-Groups": "staff,ops",
	}
	for k, v := range want {
		if got := strings.Join(e.Headers[k], "|"); got != v {
			t.Errorf("%s = %q; want %q", k, got, v)
		}
	}
	// The state cookie was for this login only: it is gone.
	u, _ := url.Parse(c.Site + "/.session/oidc/test/callback")
	for _, ck := range cl.Jar.Cookies(u) {
		if strings.Contains(ck.Name, "_oidc_") {
			t.Errorf("state cookie %s left after the login", ck.Name)
		}
	}

	// Claims are as the provider says at each login: a group alice left
	// does not live on in the data carried over from her session.
	o.SetGroups("alice")
	OIDCLogin(t, cl, "test", "alice", "alice-pw")
	if g, ok := cl.Get("/private").Echo(t).Headers["X-Session-Data-Groups"]; ok {
		t.Errorf("groups %q live on after the provider dropped them", g)
	}

	// The other provider puts the claims in the ID token, and names the
	// user by email; a login replaces the session.
	old := cl.SessionCookie()
	OIDCLogin(t, cl, "idclaims", "bob", "bob-pw")
	if cl.SessionCookie() == old {
		t.Error("the session ID did not change at login")
	}
	e = cl.Get("/private").Echo(t)
	if got := e.Headers["X-Session-User"]; len(got) != 1 || got[0] != "idclaims:bob@other.org" {
		t.Errorf("X-Session-User %q; want idclaims:bob@other.org", got)
	}
	if got := e.Headers["X-Session-Data-Name"]; len(got) != 1 || got[0] != "Bob Example" {
		t.Errorf("X-Session-Data-Name %q", got)
	}
	if _, ok := e.Headers["X-Session-Data-Groups"]; ok {
		t.Error("groups forwarded by a provider that does not list them in claims")
	}
	if !strings.Contains(c.Logs(), `"provider":"idclaims"`) {
		t.Error("the login log does not name the provider")
	}
}

// TestOIDCLoginPageWithPasswords: with local users and providers, the
// page has both; ?provider= of an unknown provider is a 404 page.
func TestOIDCLoginPageWithPasswords(t *testing.T) {
	c, _, _ := startOIDCSite(t, WithExtra("users", "user alice "+aliceHash))
	cl := NewClient(t, c.Site)
	body := string(cl.Get("/.session/login", "Accept: text/html").Body)
	if !strings.Contains(body, `type="password"`) || !strings.Contains(body, "provider=test") {
		t.Errorf("login page without both the form and the buttons:\n%s", body)
	}
	if r := cl.Get("/.session/login?provider=nope", "Accept: text/html"); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown provider: %d", r.StatusCode)
	}
	cl.MustLogin("alice", alicePassword)
	if _, user := cl.Whoami(); user != "alice" {
		t.Errorf("password login next to providers: %q", user)
	}
}

// TestOIDCAllowLists: the allow-lists admit a verified email in a domain,
// or a group; an unverified email never counts; a refusal is a 403 that
// says why, and no session.
func TestOIDCAllowLists(t *testing.T) {
	c, _, up := startOIDCSite(t)
	tests := []struct {
		user, password string
		status         int
		why            string
	}{
		{"carol", "carol-pw", http.StatusSeeOther, ""}, // other.org, but in staff
		{"mallory", "mallory-pw", http.StatusForbidden, "is not verified"},
		{"bob", "bob-pw", http.StatusForbidden, "none of the groups"},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			cl := NewClient(t, c.Site)
			before := up.Requests.Load()
			r := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "", tt.user, tt.password))
			if r.StatusCode != tt.status || !strings.Contains(string(r.Body), tt.why) {
				t.Fatalf("%s: %d %s; want %d saying %q", tt.user, r.StatusCode, r.Body, tt.status, tt.why)
			}
			status, _ := cl.Whoami()
			if tt.status == http.StatusForbidden {
				if status != http.StatusUnauthorized || cl.SessionCookie() != "" {
					t.Errorf("refused %s has a session: whoami %d", tt.user, status)
				}
				if !strings.Contains(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'none'") {
					t.Errorf("refusal page headers %v", r.Header)
				}
			} else if status != http.StatusOK {
				t.Errorf("%s admitted but whoami %d", tt.user, status)
			}
			if up.Requests.Load() != before {
				t.Error("the login reached the upstream")
			}
		})
	}
	// An API client gets the reason as JSON.
	cl := NewClient(t, c.Site)
	cb := StartOIDCLogin(t, cl, "test", "", "bob", "bob-pw")
	r := cl.Get(strings.TrimPrefix(cb, c.Site), "Accept: application/json")
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.JSON(t)["error"].(string), "none of the groups") {
		t.Errorf("JSON refusal: %d %s", r.StatusCode, r.Body)
	}
	if !strings.Contains(c.Logs(), "oidc login refused") {
		t.Error("refusals are not logged")
	}
}

// TestOIDCState: the callback needs the state cookie of the browser that
// started the login, with the same state, once.
func TestOIDCState(t *testing.T) {
	c, _, _ := startOIDCSite(t)

	t.Run("another browser", func(t *testing.T) {
		a := NewClient(t, c.Site)
		cb := StartOIDCLogin(t, a, "test", "", "alice", "alice-pw")
		b := NewClient(t, c.Site)
		if r := FinishOIDCLogin(t, b, cb); r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Body), "another browser") {
			t.Errorf("callback in another browser: %d %s", r.StatusCode, r.Body)
		}
		if status, _ := b.Whoami(); status != http.StatusUnauthorized {
			t.Errorf("another browser got a session: %d", status)
		}
	})

	t.Run("wrong state", func(t *testing.T) {
		a := NewClient(t, c.Site)
		cb := StartOIDCLogin(t, a, "test", "", "alice", "alice-pw")
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Set("state", q.Get("state")+"x")
		u.RawQuery = q.Encode()
		if r := FinishOIDCLogin(t, a, u.String()); r.StatusCode != http.StatusBadRequest {
			t.Errorf("wrong state: %d %s", r.StatusCode, r.Body)
		}
		if status, _ := a.Whoami(); status != http.StatusUnauthorized {
			t.Errorf("wrong state gave a session: %d", status)
		}
	})

	t.Run("another login's state cookie", func(t *testing.T) {
		// Two logins in one browser; the second's state cookie is moved
		// under the first's name: it seals another state.
		a := NewClient(t, c.Site)
		cb1 := StartOIDCLogin(t, a, "test", "", "alice", "alice-pw")
		cb2 := StartOIDCLogin(t, a, "test", "", "alice", "alice-pw")
		u, _ := url.Parse(c.Site + "/.session/oidc/test/callback")
		cookies := a.Jar.Cookies(u)
		if len(cookies) != 2 {
			t.Fatalf("want a state cookie per login, got %v", cookies)
		}
		b := NewClient(t, c.Site)
		b.Jar.SetCookies(u, []*http.Cookie{{Name: cookies[0].Name, Value: cookies[1].Value, Path: "/.session/oidc/test/"},
			{Name: cookies[1].Name, Value: cookies[0].Value, Path: "/.session/oidc/test/"}})
		for _, cb := range []string{cb1, cb2} {
			if r := FinishOIDCLogin(t, b, cb); r.StatusCode != http.StatusBadRequest {
				t.Errorf("swapped state cookies: %d %s", r.StatusCode, r.Body)
			}
		}
		// Both logins still finish in the browser that began them.
		for _, cb := range []string{cb1, cb2} {
			if r := FinishOIDCLogin(t, a, cb); r.StatusCode != http.StatusSeeOther {
				t.Errorf("a login of two in one browser: %d %s", r.StatusCode, r.Body)
			}
		}
	})

	t.Run("replayed", func(t *testing.T) {
		a := NewClient(t, c.Site)
		cb := StartOIDCLogin(t, a, "test", "", "alice", "alice-pw")
		u, _ := url.Parse(c.Site + "/.session/oidc/test/callback")
		stateCookies := a.Jar.Cookies(u)
		if r := FinishOIDCLogin(t, a, cb); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d %s", r.StatusCode, r.Body)
		}
		// The browser replays the callback: its state cookie is gone.
		if r := FinishOIDCLogin(t, a, cb); r.StatusCode != http.StatusBadRequest {
			t.Errorf("replayed callback: %d %s", r.StatusCode, r.Body)
		}
		// Someone who copied the state cookie replays both: the code was
		// used, the provider refuses it, and no session comes of it.
		m := NewClient(t, c.Site)
		m.Jar.SetCookies(u, stateCookies)
		if r := FinishOIDCLogin(t, m, cb); r.StatusCode != http.StatusBadRequest {
			t.Errorf("replayed callback with a copied state cookie: %d %s", r.StatusCode, r.Body)
		}
		if status, _ := m.Whoami(); status != http.StatusUnauthorized {
			t.Errorf("replay gave a session: %d", status)
		}
	})

	t.Run("error from the provider", func(t *testing.T) {
		for _, tt := range []struct {
			err    string
			status int
		}{{"access_denied", http.StatusForbidden}, {"server_error", http.StatusBadGateway}, {"invalid_scope", http.StatusBadRequest}} {
			a := NewClient(t, c.Site)
			a.Allow5xx = true
			r := a.Get("/.session/login?provider=test", "Accept: text/html")
			loc, _ := url.Parse(r.Header.Get("Location"))
			state := loc.Query().Get("state")
			r = a.Get("/.session/oidc/test/callback?error="+tt.err+"&error_description=nope&state="+url.QueryEscape(state), "Accept: text/html")
			if r.StatusCode != tt.status || !strings.Contains(string(r.Body), "Sign-in failed") {
				t.Errorf("error=%s: %d %s", tt.err, r.StatusCode, r.Body)
			}
			if status, _ := a.Whoami(); status != http.StatusUnauthorized {
				t.Errorf("error=%s gave a session", tt.err)
			}
		}
	})
}

// TestOIDCStrictCookie: with a SameSite=Strict session cookie, the
// callback does not redirect (the browser would go on with the provider's
// cross-site navigation and leave the cookie out) but answers a page of
// its own that moves on.
func TestOIDCStrictCookie(t *testing.T) {
	c, _, _ := startOIDCSite(t, WithExtra("users", "cookie {\n\t\t\tsame_site strict\n\t\t}"))
	cl := NewClient(t, c.Site)
	r := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "/private", "alice", "alice-pw"))
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), `<meta http-equiv="refresh" content="0;url=/private">`) {
		t.Fatalf("callback with a strict cookie: %d %s", r.StatusCode, r.Body)
	}
	if set := strings.Join(r.Header.Values("Set-Cookie"), "\n"); !strings.Contains(set, "caddy_session=") || !strings.Contains(set, "SameSite=Strict") {
		t.Errorf("session cookie not set Strict:\n%s", set)
	}
	if _, user := cl.Whoami(); user != "test:alice" {
		t.Errorf("whoami %q", user)
	}
}
