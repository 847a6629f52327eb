package tests

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// What browsers keep of one cookie (name and value), and what the tests
// hold edgesession to for the logins one browser has in progress.
const (
	browserCookieBytes  = 4096
	maxLoginsInProgress = 4
)

// stateCookies are the login state cookies c's browser would send to the
// callback of provider.
func stateCookies(c *Client, provider string) []*http.Cookie {
	u, _ := url.Parse(c.Base + "/.session/oidc/" + provider + "/callback")
	var out []*http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if strings.Contains(ck.Name, "_oidc_") && !strings.HasSuffix(ck.Name, "_oidc_logout") {
			out = append(out, ck)
		}
	}
	return out
}

// wantCookiesKept fails the test if a Set-Cookie of r is one a browser
// drops for its size.
func wantCookiesKept(t *testing.T, r *Response) {
	t.Helper()
	for _, ck := range r.Cookies() {
		if n := len(ck.Name) + 1 + len(ck.Value); n > browserCookieBytes {
			t.Errorf("cookie %s is %d bytes: browsers drop cookies over %d", ck.Name, n, browserCookieBytes)
		}
	}
}

// TestOIDCLoginInProgressFitsBrowsers: the login in progress stays within
// what browsers keep: a long redirect, a long Host and many logins
// started in one browser never give a 500, a 431 or a cookie the browser
// drops (SPEC §9).
func TestOIDCLoginInProgressFitsBrowsers(t *testing.T) {
	c, _, _ := startOIDCSite(t)

	t.Run("long redirect", func(t *testing.T) {
		cl := NewClient(t, c.Site)
		// A report link with 2 KB of filters: the login page keeps it
		// (a local path of at most 2 KB), the state cookie must not grow
		// past 4 KB.
		redirect := "/reports/2024?filter=" + strings.Repeat("region-north,", 155)
		redirect += strings.Repeat("x", 2040-len(redirect))
		r := cl.Get("/.session/login?provider=test&redirect="+url.QueryEscape(redirect), "Accept: text/html")
		if r.StatusCode != http.StatusFound {
			t.Fatalf("start with a %d-byte redirect: %d %s", len(redirect), r.StatusCode, r.Body)
		}
		wantCookiesKept(t, r)
		// The login goes through, and lands on the page without its query
		// (too long to keep), not on an error.
		cl2 := NewClient(t, c.Site)
		cb := StartOIDCLogin(t, cl2, "test", redirect, "alice", "alice-pw")
		for _, ck := range stateCookies(cl2, "test") {
			if n := len(ck.Name) + 1 + len(ck.Value); n > browserCookieBytes {
				t.Errorf("state cookie of %d bytes", n)
			}
		}
		r = FinishOIDCLogin(t, cl2, cb)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/reports/2024" {
			t.Errorf("callback: %d to %q; want 303 to /reports/2024", r.StatusCode, r.Header.Get("Location"))
		}
		if !strings.Contains(c.Logs(), "redirect too long to keep") {
			t.Error("the cut redirect is not logged")
		}
		// A redirect that fits is kept whole.
		short := "/reports/2024?filter=" + strings.Repeat("x", 500)
		cl3 := NewClient(t, c.Site)
		r = FinishOIDCLogin(t, cl3, StartOIDCLogin(t, cl3, "test", short, "alice", "alice-pw"))
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != short {
			t.Errorf("callback: %d to %q; want 303 to the whole redirect", r.StatusCode, r.Header.Get("Location"))
		}
	})

	t.Run("many logins in one browser", func(t *testing.T) {
		cl := NewClient(t, c.Site)
		// Logins started and abandoned (tabs closed at the provider).
		for i := range 60 {
			r := cl.Get("/.session/login?provider=test&redirect=/tab/"+strconv.Itoa(i), "Accept: text/html")
			if r.StatusCode != http.StatusFound {
				t.Fatalf("start %d: %d %s", i, r.StatusCode, r.Body)
			}
		}
		if n := len(stateCookies(cl, "test")); n > maxLoginsInProgress {
			t.Errorf("the browser holds %d state cookies after 60 logins; want at most %d", n, maxLoginsInProgress)
		}
		// Five more, each through the provider: the newest finish, the
		// oldest was dropped for them.
		var callbacks []string
		for range 5 {
			callbacks = append(callbacks, StartOIDCLogin(t, cl, "test", "", "alice", "alice-pw"))
		}
		if r := FinishOIDCLogin(t, cl, callbacks[0]); r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Body), "Sign-in expired") {
			t.Errorf("the oldest of five logins: %d %s; want 400, expired", r.StatusCode, r.Body)
		}
		for i, cb := range callbacks[1:] {
			if r := FinishOIDCLogin(t, cl, cb); r.StatusCode != http.StatusSeeOther {
				t.Errorf("login %d of the newest four: %d %s", i+2, r.StatusCode, r.Body)
			}
		}
		if status, user := cl.Whoami(); status != http.StatusOK || user != "test:alice" {
			t.Errorf("whoami after the logins: %d %q", status, user)
		}
	})
}

// anyHostTemplate is a site that answers any Host, with the test provider.
const anyHostTemplate = `
http://:[[.SitePort]] {
	session {
		store memory
		secret 0123456789abcdef0123456789abcdef
		oidc test {
			issuer [[.Extra.issuer]]
			client_id edge
			client_secret [[.Extra.secret]]
		}
	}
	reverse_proxy [[.Upstream]]
}
`

// TestOIDCLoginStartAnyHost: a site that answers any Host starts logins
// whose state cookie a browser keeps: with a 2 KB redirect under an
// ordinary host name, and for a Host of a few KB (no 500 either).
func TestOIDCLoginStartAnyHost(t *testing.T) {
	o := StartOP(t, 0)
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, anyHostTemplate, WithExtra("issuer", o.Issuer), WithExtra("secret", opSecret))
	cl := NewClient(t, c.Site)
	start := func(host, redirect string) {
		t.Helper()
		path := "/.session/login?provider=test"
		if redirect != "" {
			path += "&redirect=" + url.QueryEscape(redirect)
		}
		req := cl.NewRequest("GET", path, nil, "Accept: text/html")
		req.Host = host
		r := cl.Do(req)
		if r.StatusCode != http.StatusFound {
			t.Errorf("Host of %d bytes, redirect of %d: %d %s", len(host), len(redirect), r.StatusCode, r.Body)
			return
		}
		wantCookiesKept(t, r)
		loc, _ := url.Parse(r.Header.Get("Location"))
		if got := loc.Query().Get("redirect_uri"); got != "http://"+host+"/.session/oidc/test/callback" {
			t.Errorf("redirect_uri %q", got)
		}
	}
	redirect := "/reports/2024?filter=" + strings.Repeat("region-north,", 155)
	start("intranet.corp.example.com", redirect+strings.Repeat("x", 2040-len(redirect)))
	for _, n := range []int{1000, 3000} {
		labels := make([]string, 0, n/32+1)
		for len(strings.Join(labels, ".")) < n {
			labels = append(labels, strings.Repeat("h", 31))
		}
		start(strings.Join(labels, "."), "")
	}
}
