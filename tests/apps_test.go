package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Legacy apps as they are (SPEC §12): header names the app trusts, logout
// that reaches the app, HTTP Basic for clients that cannot fill in a form.

// expiresCookie reports whether r tells the browser to drop the cookie
// name set with path (and domain, "" for host-only): an empty value with
// Max-Age=0, and Expires, if there is one, in the past.
func expiresCookie(r *http.Response, name, path, domain string) bool {
	for _, line := range r.Header["Set-Cookie"] {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == name && c.Path == path && c.Domain == domain && c.Value == "" &&
			c.MaxAge < 0 && c.Expires.Before(time.Now()) {
			return true
		}
	}
	return false
}

// jarHas reports whether the client's jar would send the cookie name to
// path.
func jarHas(c *Client, path, name string) bool {
	_, ok := jarValue(c, path, name)
	return ok
}

// jarValue is the value of the cookie called name that the browser would
// send to path.
func jarValue(c *Client, path, name string) (string, bool) {
	u, _ := url.Parse(c.Base + path)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value, true
		}
	}
	return "", false
}

func TestMappedHeadersReachUpstreamAndNoClientCopy(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", `upstream_control on
		header X-Forwarded-Email data.email
		header X-WEBAUTH-EMAIL data.email
		header User-Name user`)
	spoofed := []string{
		"X-Forwarded-Email: mallory@evil", "x_forwarded_email: mallory@evil", "X-Webauth-Email: mallory@evil",
		"user-name: mallory", "USER_NAME: mallory", "User_Name: mallory",
	}
	mapped := map[string]string{"x-forwarded-email": "", "x-webauth-email": "", "user-name": ""}
	// check fails if any spelling of a mapped name reached the upstream
	// other than the one the handler wrote, with want.
	check := func(t *testing.T, headers map[string][]string, want map[string]string) {
		t.Helper()
		for name, values := range headers {
			n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
			if _, ok := mapped[n]; !ok {
				continue
			}
			if w, ok := want[name]; !ok || len(values) != 1 || values[0] != w {
				t.Errorf("the upstream got %s = %q", name, values)
			}
		}
		for name, w := range want {
			if got := headers[name]; len(got) != 1 || got[0] != w {
				t.Errorf("the upstream got %s = %q, want %q", name, got, w)
			}
		}
	}

	t.Run("anonymous", func(t *testing.T) {
		check(t, NewClient(t, c.Site).Get("/public/x", spoofed...).Echo(t).Headers, nil)
	})
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	t.Run("logged in, no email yet", func(t *testing.T) {
		check(t, cl.Get("/private", spoofed...).Echo(t).Headers, map[string]string{"User-Name": "alice"})
	})
	cl.Get("/private?h=X-Session-Set-Email:alice@example.com")
	want := map[string]string{"User-Name": "alice", "X-Forwarded-Email": "alice@example.com", "X-Webauth-Email": "alice@example.com"}
	t.Run("logged in", func(t *testing.T) {
		check(t, cl.Get("/private", spoofed...).Echo(t).Headers, want)
	})
	t.Run("named in Connection", func(t *testing.T) {
		cookie := "Cookie: caddy_session=" + cl.SessionCookie()
		for _, conn := range []string{"Connection: X-Forwarded-Email, user_name", "Connection: keep-alive, x-webauth-email"} {
			r := rawGet(t, c.Site, "/private", cookie, conn)
			var e Echo
			if r.StatusCode != 200 || json.Unmarshal(r.Body, &e) != nil {
				t.Fatalf("%s: %d %s", conn, r.StatusCode, r.Body)
			}
			check(t, e.Headers, want)
		}
	})
}

func TestLogoutExpiresAppCookies(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", `upstream_control on
		logout_cookies ttrss_sid {
			path /tt-rss/
		}
		logout_cookies sessionid
		clear_site_data cookies`)
	appExpired := func(t *testing.T, r *Response) {
		t.Helper()
		if !expiresCookie(r.Response, "ttrss_sid", "/tt-rss/", "") || !expiresCookie(r.Response, "sessionid", "/", "") {
			t.Errorf("%s: the app's cookies were not expired: %q", r.Request.URL.Path, r.Header["Set-Cookie"])
		}
	}
	// appLogin logs in as user and lets the app set its own cookies.
	appLogin := func(cl *Client, user, password string) {
		t.Helper()
		cl.MustLogin(user, password)
		set := url.Values{"h": {"Set-Cookie:ttrss_sid=" + user + "; Path=/tt-rss/", "Set-Cookie:sessionid=" + user + "; Path=/"}}
		cl.Get("/tt-rss/?" + set.Encode()).Echo(t)
		if !jarHas(cl, "/tt-rss/", "ttrss_sid") || !jarHas(cl, "/", "sessionid") {
			t.Fatal("the app's cookies did not stick")
		}
	}
	gone := func(t *testing.T, cl *Client) {
		t.Helper()
		if jarHas(cl, "/tt-rss/", "ttrss_sid") || jarHas(cl, "/", "sessionid") {
			t.Errorf("the browser still has the app's cookies")
		}
		if e := cl.Get("/public/x").Echo(t); strings.Contains(strings.Join(e.Headers["Cookie"], ";"), "sessionid") {
			t.Errorf("the app still gets its old cookie: %q", e.Headers["Cookie"])
		}
	}

	t.Run("logout endpoint", func(t *testing.T) {
		cl := NewClient(t, c.Site)
		appLogin(cl, "alice", alicePassword)
		r := cl.Post("/.session/logout", "application/x-www-form-urlencoded", "redirect=/")
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
		}
		appExpired(t, r)
		if got := r.Header.Get("Clear-Site-Data"); got != `"cookies"` {
			t.Errorf("Clear-Site-Data: %q", got)
		}
		gone(t, cl)
	})
	t.Run("upstream logout", func(t *testing.T) {
		cl := NewClient(t, c.Site)
		appLogin(cl, "alice", alicePassword)
		r := cl.Get("/private?h=X-Session-Logout:true")
		appExpired(t, r)
		if !expiresCookie(r.Response, "caddy_session", "/", "") || r.Header.Get("Clear-Site-Data") != `"cookies"` {
			t.Errorf("upstream logout: Set-Cookie %q, Clear-Site-Data %q", r.Header["Set-Cookie"], r.Header.Get("Clear-Site-Data"))
		}
		gone(t, cl)
	})
	t.Run("replaced by another user's login", func(t *testing.T) {
		cl := NewClient(t, c.Site)
		appLogin(cl, "alice", alicePassword)
		r := cl.LoginJSON("bob", bobPassword)
		if r.StatusCode != 200 {
			t.Fatalf("login as bob: %d", r.StatusCode)
		}
		appExpired(t, r)
		if r.Header.Get("Clear-Site-Data") != "" {
			t.Error("a login sent Clear-Site-Data, which would clear its own cookie")
		}
		gone(t, cl)
		if code, user := cl.Whoami(); code != 200 || user != "bob" {
			t.Errorf("after the switch: %d %q", code, user)
		}
	})
	t.Run("same user again", func(t *testing.T) {
		cl := NewClient(t, c.Site)
		appLogin(cl, "alice", alicePassword)
		if r := cl.LoginJSON("alice", alicePassword); expiresCookie(r.Response, "sessionid", "/", "") {
			t.Error("logging in again as the same user expired the app's session")
		}
	})
	// The session ends without the handler seeing it end: the app's
	// cookies go on the next request, public or not, and only once.
	endedUnseen := func(t *testing.T, end func(cl *Client)) {
		t.Helper()
		cl := NewClient(t, c.Site)
		appLogin(cl, "alice", alicePassword)
		if e := cl.Get("/private").Echo(t); strings.Contains(strings.Join(e.Headers["Cookie"], ";"), "signedin") {
			t.Errorf("the signed-in marker reached the upstream: %q", e.Headers["Cookie"])
		}
		if v, _ := jarValue(cl, "/", "caddy_session~signedin"); v != "1" {
			t.Errorf("the login set no signed-in marker (%q)", v)
		}
		end(cl)
		r := cl.Get("/public/x")
		appExpired(t, r)
		if v, _ := jarValue(cl, "/", "caddy_session~signedin"); v != "0" {
			t.Errorf("the signed-in marker is %q after the session ended, want 0 (ended, acted on)", v)
		}
		if strings.Contains(strings.Join(r.Echo(t).Headers["Cookie"], ";"), "sessionid") {
			t.Error("the app got the ended session's cookie")
		}
		gone(t, cl)
		// The app sets its cookie again for the anonymous visitor: it stays.
		set := url.Values{"h": {"Set-Cookie:sessionid=anonymous; Path=/"}}
		cl.Get("/public/x?" + set.Encode()).Echo(t)
		if r := cl.Get("/public/y"); expiresCookie(r.Response, "sessionid", "/", "") || !strings.Contains(strings.Join(r.Echo(t).Headers["Cookie"], ";"), "sessionid=anonymous") {
			t.Errorf("the app's new cookie was expired again: %q", r.Header["Set-Cookie"])
		}
	}
	t.Run("session cookie gone from the browser", func(t *testing.T) {
		endedUnseen(t, func(cl *Client) {
			u, _ := url.Parse(c.Site)
			cl.Jar.SetCookies(u, []*http.Cookie{{Name: "caddy_session", Path: "/", MaxAge: -1}})
			if cl.SessionCookie() != "" {
				t.Fatal("the session cookie is still in the jar")
			}
		})
	})
	t.Run("session cookie undecodable", func(t *testing.T) {
		endedUnseen(t, func(cl *Client) {
			cl.SetSessionCookie("MTc2NDY1MDAwMHxzZWFsZWQtd2l0aC1hbi1vbGQtc2VjcmV0fA")
		})
	})
	t.Run("app cookie of an anonymous visitor", func(t *testing.T) {
		// Set before any login here (a CSRF token in the app's session on
		// a public page): left alone, request after request.
		cl := NewClient(t, c.Site)
		set := url.Values{"h": {"Set-Cookie:sessionid=anonymous; Path=/"}}
		cl.Get("/public/login?" + set.Encode()).Echo(t)
		for range 2 {
			r := cl.Get("/public/login")
			if expiresCookie(r.Response, "sessionid", "/", "") || !strings.Contains(strings.Join(r.Echo(t).Headers["Cookie"], ";"), "sessionid=anonymous") {
				t.Fatalf("an anonymous visitor's app cookie was expired: %q", r.Header["Set-Cookie"])
			}
		}
	})
	t.Run("revoked elsewhere", func(t *testing.T) {
		cl := NewClient(t, c.Site)
		appLogin(cl, "alice", alicePassword)
		other := NewClient(t, c.Site)
		other.SetSessionCookie(cl.SessionCookie())
		other.LogoutJSON()
		r := cl.Get("/public/x")
		appExpired(t, r)
		if strings.Contains(strings.Join(r.Echo(t).Headers["Cookie"], ";"), "sessionid") {
			t.Error("the app got the ended session's cookie")
		}
	})
}

func TestHTTPBasicForNonBrowserClients(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", `http_basic on Calendar
		login_limit 3 1m`)
	const challenge = `Basic realm="Calendar", charset="UTF-8"`
	// A client like curl or a CalDAV client: no cookie jar.
	script := NewClient(t, c.Site)
	script.Jar = nil
	basic := func(method, user, password string, headers ...string) *Response {
		t.Helper()
		req := script.NewRequest(method, "/dav/calendars/", nil, headers...)
		req.SetBasicAuth(user, password)
		return script.Do(req)
	}

	r := basic("PROPFIND", "alice", alicePassword, "Depth: 1")
	e := r.Echo(t)
	if e.Method != "PROPFIND" || e.Headers["X-Session-User"][0] != "alice" || e.Headers["Remote-User"][0] != "alice" {
		t.Errorf("the upstream got %s %v", e.Method, e.Headers)
	}
	if _, ok := e.Headers["Authorization"]; ok {
		t.Errorf("the upstream got the credentials: %q", e.Headers["Authorization"])
	}
	if sc := r.Header["Set-Cookie"]; len(sc) != 0 {
		t.Errorf("a Basic request set cookies: %q", sc)
	}

	before := up.Requests.Load()
	if r := script.Get("/dav/calendars/"); r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") != challenge {
		t.Errorf("no credentials: %d, WWW-Authenticate %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	browser := NewClient(t, c.Site)
	if r := browser.Get("/dav/calendars/", "Accept: text/html"); r.StatusCode != http.StatusFound || r.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("a browser navigating: %d, WWW-Authenticate %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if r := browser.Get("/api", "Sec-Fetch-Mode: cors", "Sec-Fetch-Site: same-origin"); r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("a browser's script: %d, WWW-Authenticate %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}

	for i := range 3 {
		if r := basic("GET", "alice", "wrong"); r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") != challenge {
			t.Errorf("wrong password %d: %d, WWW-Authenticate %q", i, r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
	}
	for _, pw := range []string{"wrong", alicePassword} {
		if r := basic("GET", "alice", pw); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Errorf("after the limit (%s): %d, Retry-After %q", pw, r.StatusCode, r.Header.Get("Retry-After"))
		}
	}
	// The same throttle as the form: alice is locked out there too.
	if r := NewClient(t, c.Site).LoginJSON("alice", alicePassword); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("form login after Basic failures: %d", r.StatusCode)
	}
	if up.Requests.Load() != before {
		t.Error("a refused request reached the upstream")
	}
	if r := basic("GET", "bob", bobPassword); r.Echo(t).Headers["X-Session-User"][0] != "bob" {
		t.Error("bob was locked out with alice")
	}

	// A logged-in browser's own Authorization of another scheme is the
	// app's, and passes.
	browser.MustLogin("bob", bobPassword)
	e = browser.Get("/private", "Authorization: Bearer app-token").Echo(t)
	if got := e.Headers["Authorization"]; len(got) != 1 || got[0] != "Bearer app-token" {
		t.Errorf("Bearer: the upstream got %q", got)
	}
}
