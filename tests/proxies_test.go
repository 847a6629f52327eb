package tests

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestProxyNginxAuthRequest(t *testing.T) {
	t.Parallel()
	auth := startAuthSite(t)
	addr := startNginx(t, auth)
	// nginx cannot remove the client's headers by a prefix: the
	// configuration sets each one the app reads (and drops any name with
	// '_', as nginx does by default); a client's X-Session-Data-Role or
	// X-Session-Anything passes, which the README says.
	testBehindProxy(t, auth, addr, []string{"X-Session-Data-Role", "X-Session-Anything", "X-Session-"})
}

func TestProxyTraefikForwardAuth(t *testing.T) {
	t.Parallel()
	auth := startAuthSite(t)
	testBehindProxy(t, auth, startTraefik(t, auth), nil)
}

func TestProxyCaddyForwardAuth(t *testing.T) {
	t.Parallel()
	auth := startAuthSite(t)
	testBehindProxy(t, auth, startForwardAuthCaddy(t, auth), nil)
}

// proxySpoofed are the trusted headers in the spellings a client might
// forge (as spoofedHeaders), for the names the proxies' configurations
// pass on.
var proxySpoofed = []string{
	"X-Session-User", "x-session-user", "X-SESSION-USER", "X_Session_User", "x_session_user",
	"X-Session_User", "x-SeSsIoN-uSeR", "X-Session-Groups", "x_session_groups", "X-Session-Source",
	"X_Session_Source", "X-Session-Data-Role", "x_session_data_role", "X-Session-Anything", "X-Session-",
	"X.Session.User", "X-Session.Groups", "x.session-source",
}

// testBehindProxy runs the browser's and the attacker's tour through the
// proxy at addr in front of auth: unpassed lists the spoofed names the
// proxy is known to pass on (and the README says so).
func testBehindProxy(t *testing.T, auth *authSite, addr string, unpassed []string) {
	var forged []string
	for _, name := range proxySpoofed {
		skip := false
		for _, u := range unpassed {
			skip = skip || name == u
		}
		if !skip {
			forged = append(forged, name+": mallory", name+": admin, mallory")
		}
	}
	// checkEcho: the upstream got exactly the endpoint's identity (none
	// for anonymous), and none of the client's.
	checkEcho := func(t *testing.T, e Echo, user, groups string) {
		t.Helper()
		for name, values := range e.Headers {
			// As CGI, WSGI and PHP read a name: '_' and '.' as '-'.
			n := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
			if !strings.HasPrefix(n, "x-session-") {
				continue
			}
			for _, v := range values {
				if strings.Contains(v, "mallory") {
					t.Errorf("the upstream got the client's %s: %q", name, v)
				}
			}
		}
		if got := e.Headers["X-Session-User"]; user == "" && len(got) != 0 || user != "" && (len(got) != 1 || got[0] != user) {
			t.Errorf("the upstream got X-Session-User %q, want %q", got, user)
		}
		if got := e.Headers["X-Session-Groups"]; groups == "" && len(got) != 0 || groups != "" && (len(got) != 1 || got[0] != groups) {
			t.Errorf("the upstream got X-Session-Groups %q, want %q", got, groups)
		}
		if user != "" && len(e.Headers["X-Session-Source"]) != 1 {
			t.Errorf("the upstream got X-Session-Source %q, want one", e.Headers["X-Session-Source"])
		}
	}
	up := auth.up
	html := "Accept: text/html,application/xhtml+xml"
	original := "/app/page?x=1&y=%2F"
	originalURL := "http://" + proxyHost + original

	browser := proxyClient(t, addr)

	t.Run("a browser is sent to log in and comes back", func(t *testing.T) {
		before := up.Requests.Load()
		r := browser.Get(original, html, "Sec-Fetch-Mode: navigate")
		if r.StatusCode != http.StatusFound {
			t.Fatalf("anonymous navigation: %d %s, want 302", r.StatusCode, r.Body)
		}
		loc, err := url.Parse(r.Header.Get("Location"))
		if err != nil || loc.Host != proxyHost || loc.Path != "/.session/login" || loc.Query().Get("redirect") != originalURL {
			t.Fatalf("anonymous navigation: Location %q, want the login page on %s with redirect=%s", r.Header.Get("Location"), proxyHost, originalURL)
		}
		if up.Requests.Load() != before {
			t.Fatal("an anonymous request reached the upstream")
		}
		page := browser.Get(loc.RequestURI(), html)
		if page.StatusCode != 200 || !strings.Contains(string(page.Body), "<form") {
			t.Fatalf("the login page through the proxy: %d %s", page.StatusCode, page.Body)
		}
		done := browser.LoginForm("bob", bobPassword, loc.Query().Get("redirect"), html, "Origin: http://"+proxyHost)
		if done.StatusCode != http.StatusSeeOther {
			t.Fatalf("login form: %d %s", done.StatusCode, done.Body)
		}
		back, err := url.Parse(done.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		if back = (&url.URL{Scheme: "http", Host: proxyHost, Path: "/.session/login"}).ResolveReference(back); back.String() != originalURL {
			t.Fatalf("after login the browser goes to %q, want %q", back, originalURL)
		}
		e := browser.Get(back.RequestURI(), html).Echo(t)
		if e.Path != "/app/page" || e.Query != "x=1&y=%2F" {
			t.Errorf("the upstream got %s?%s, want the original /app/page?x=1&y=%%2F", e.Path, e.Query)
		}
		checkEcho(t, e, "bob", "")
	})
	if t.Failed() {
		return
	}

	t.Run("a script is told 401", func(t *testing.T) {
		r := proxyClient(t, addr).Get("/app/page", "Accept: application/json")
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous script: %d %s, want 401", r.StatusCode, r.Body)
		}
	})

	t.Run("forged identity headers never reach the upstream", func(t *testing.T) {
		checkEcho(t, browser.Get("/app/page", forged...).Echo(t), "bob", "")
		checkEcho(t, proxyClient(t, addr).Get("/public/page", forged...).Echo(t), "", "")
		before := up.Requests.Load()
		if r := proxyClient(t, addr).Get("/app/page", append(forged, "Accept: application/json")...); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous with forged headers: %d %s, want 401", r.StatusCode, r.Body)
		}
		if up.Requests.Load() != before {
			t.Error("an anonymous request with forged headers reached the upstream")
		}
	})

	t.Run("a rule denies", func(t *testing.T) {
		before := up.Requests.Load()
		if r := browser.Get("/admin/x", "Accept: application/json"); r.StatusCode != http.StatusForbidden {
			t.Errorf("bob at /admin/x: %d %s, want 403", r.StatusCode, r.Body)
		}
		if up.Requests.Load() != before {
			t.Error("a denied request reached the upstream")
		}
		// Logging in with a redirect elsewhere (an open redirect through
		// the proxy's login page) comes back to the app's host.
		for _, evil := range []string{"http://evil.example.net/x", "//evil.example.net/x", "http://app.example.com.evil.example.net/", "http://app.example.com@evil.example.net/"} {
			alice := proxyClient(t, addr)
			r := alice.LoginForm("alice", alicePassword, evil, html, "Origin: http://"+proxyHost)
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("alice's login: %d %s", r.StatusCode, r.Body)
			}
			loc, err := url.Parse(r.Header.Get("Location"))
			if err != nil || (&url.URL{Scheme: "http", Host: proxyHost, Path: "/.session/login"}).ResolveReference(loc).Host != proxyHost {
				t.Errorf("login with redirect %q sends the browser to %q", evil, r.Header.Get("Location"))
			}
		}
		alice := proxyClient(t, addr)
		if r := alice.LoginForm("alice", alicePassword, "/", html, "Origin: http://"+proxyHost); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("alice's login: %d %s", r.StatusCode, r.Body)
		}
		checkEcho(t, alice.Get("/admin/x", forged...).Echo(t), "alice", "admin")
	})

	t.Run("the rules judge what the proxy reports, not what the client forges", func(t *testing.T) {
		forgedFwd := []string{
			"Accept: application/json",
			"X-Forwarded-Uri: /public/x", "X-Original-URI: /public/x", "X-Forwarded-Method: GET",
			"X-Forwarded-Host: other.example.com", "X-Forwarded-Proto: https", "X-Forwarded-For: 127.0.0.1",
			"X-Forwarded-Prefix: /public", "X-Rewrite-URL: /public/x", "X-Original-URL: /public/x",
		}
		// The endpoint refuses (400) a path whose readings disagree where a
		// rule applies; nginx's auth_request turns any answer but 2xx, 401
		// and 403 into a 500 of its own.
		browser.Allow5xx = true
		defer func() { browser.Allow5xx = false }()
		for _, p := range []string{"/admin/x", "/public/../admin/x", "/public/%2e%2e/admin/x", "/public/..%2fadmin/x", "//admin/x", "/ADMIN/x"} {
			before := up.Requests.Load()
			r := browser.Get(p, forgedFwd...)
			if r.StatusCode == 200 {
				var e Echo
				e = r.Echo(t)
				if clean := path.Clean("/" + strings.ToLower(e.Path)); strings.HasPrefix(clean, "/admin") {
					t.Errorf("bob's %s with forged X-Forwarded-*: the upstream got %s", p, e.Path)
				}
			} else if r.StatusCode != http.StatusForbidden && r.StatusCode != http.StatusBadRequest && r.StatusCode != http.StatusNotFound && r.StatusCode != http.StatusInternalServerError {
				t.Errorf("bob's %s with forged X-Forwarded-*: %d %s", p, r.StatusCode, r.Body)
			}
			if r.StatusCode != 200 && up.Requests.Load() != before {
				t.Errorf("bob's %s: refused, yet the upstream was asked", p)
			}
		}
	})

	t.Run("the endpoint refuses forged X-Forwarded-* from an untrusted address", func(t *testing.T) {
		cookie := "caddy_session=" + browser.SessionCookie()
		base := "http://" + auth.addr
		for _, h := range [][]string{
			{"X-Forwarded-Uri: /app/page", "X-Forwarded-Host: " + proxyHost, "X-Forwarded-Method: GET", "X-Forwarded-Proto: http"},
			{"X-Original-URI: /app/page", "X-Forwarded-Host: " + proxyHost},
		} {
			r := untrustedClient(t, base).Get("/.session/auth", append(h, "Cookie: "+cookie)...)
			if r.StatusCode != http.StatusBadRequest {
				t.Errorf("from 127.0.0.2 with %q: %d %s, want 400", h, r.StatusCode, r.Body)
			}
			if r.Header.Get("X-Session-User") != "" {
				t.Errorf("from 127.0.0.2: the answer names %q", r.Header.Get("X-Session-User"))
			}
		}
		// From the trusted proxy's address but without an original URI.
		if r := NewClient(t, base).Get("/.session/auth", "Cookie: "+cookie, "X-Forwarded-Host: "+proxyHost); r.StatusCode != http.StatusBadRequest {
			t.Errorf("no original URI from 127.0.0.1: %d %s, want 400", r.StatusCode, r.Body)
		}
	})

	t.Run("logout ends it", func(t *testing.T) {
		if r := browser.LogoutJSON(); r.StatusCode != http.StatusNoContent {
			t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
		}
		before := up.Requests.Load()
		if r := browser.Get(original, html); r.StatusCode != http.StatusFound || !strings.Contains(r.Header.Get("Location"), "/.session/login") {
			t.Errorf("after logout: %d %s (Location %q), want the login page", r.StatusCode, r.Body, r.Header.Get("Location"))
		}
		if up.Requests.Load() != before {
			t.Error("after logout a request reached the upstream")
		}
	})
}
