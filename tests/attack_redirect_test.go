// Mount attacks on redirects: open redirects and the Host header.

package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// rawHostGet is a GET of target (sent as is) with the Host header host
// (which no client library would send as is) and extra header lines.
func rawHostGet(t *testing.T, site, target, host string, headers ...string) *RawResponse {
	t.Helper()
	req := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	return rawRequest(t, site, req+"\r\n")
}

// checkLocalURL fails unless raw is a path on this site: one leading '/'
// (not "//" nor "/\"), no scheme or host, no control character.
func checkLocalURL(t *testing.T, where, raw string) {
	t.Helper()
	if raw == "" {
		return
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		t.Errorf("%s: %q has a control character", where, raw)
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		t.Errorf("%s: %q: %v", where, raw, err)
	case !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") || strings.HasPrefix(raw, "/\\") || u.Host != "" || u.Scheme != "":
		t.Errorf("%s: %q is not a path of this site", where, raw)
	}
}

// TestAttackMountNoOpenRedirect: the mount comes from the path the client
// sent. No path makes a Location, a login form's action or its redirect
// field, or a cookie's path point off the site or carry a header.
func TestAttackMountNoOpenRedirect(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, realmsTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	host := strings.TrimPrefix(c.Site, "http://")
	targets := []string{
		"//evil.example/wiki/x", "/wiki//evil.example/x", "///evil.example/wiki/x", "/%2F%2Fevil.example/wiki/x",
		"/%2f/evil.example/../../wiki/x", "/%5cevil.example/wiki/x", "/\\evil.example/wiki/x", "/wiki/\\evil.example",
		"/wiki\\/x", "/%09/wiki/x", "/wiki/%0d%0aSet-Cookie:%20x=1", "/%0d%0aLocation:%20//evil/../wiki/x",
		"/wiki%0d%0aX-Evil:%201/x", "/.%2e/wiki/x", "/%2e/wiki/x", "/wiki/..%5c..%5cx", "/WIKI/.session/login",
		"/%77iki/.session/login", "/wiki%2f.session/login", "/x/..%2fwiki/.session/login", "//wiki/.session/login",
		"/wiki/.session/logout", "/%2e%2e/wiki/x", "/wiki/%2e%2e/%2e%2e/evil.example/x", "/@evil.example/../wiki/x",
		"/wiki/x?redirect=//evil.example", "/wiki/.session/login?redirect=//evil.example",
		"/wiki/.session/login?redirect=/%5cevil.example", "/WIKI/.session/login?redirect=/wiki/%2e%2e//evil.example",
	}
	for _, target := range targets {
		r := rawHostGet(t, c.Site, target, host, browserNavigation...)
		where := "GET " + target
		if r.StatusCode >= 500 {
			t.Errorf("%s: %d", where, r.StatusCode)
		}
		for name := range r.Header {
			if strings.EqualFold(name, "X-Evil") {
				t.Errorf("%s: header injected: %v", where, r.Header)
			}
		}
		for _, line := range r.Header["Set-Cookie"] {
			if ck, err := http.ParseSetCookie(line); err == nil && ck.Name == "x" {
				t.Errorf("%s: cookie injected: %q", where, line)
			} else if err == nil {
				checkLocalURL(t, where+" cookie "+ck.Name+" path", ck.Path)
			}
		}
		loc := r.Header.Get("Location")
		checkLocalURL(t, where+" Location", loc)
		if strings.Contains(loc, ".session/login?") && !strings.HasPrefix(loc, "//") {
			// The login page it sends to, and a login there: the
			// redirect that the crafted path became lands on the site.
			cl := NewClient(t, c.Site)
			page := cl.Get(loc, browserNavigation...)
			forms, _ := parsePage(t, page.Body)
			for _, f := range forms {
				checkLocalURL(t, where+" → login form action", f.Action)
				if f.Fields.Get("redirect") == "" || !strings.HasPrefix(f.Action, "/") {
					continue
				}
				checkLocalURL(t, where+" → login form redirect field", f.Fields.Get("redirect"))
				f.Fields.Set("username", "admin")
				f.Fields.Set("password", alicePassword)
				lr := cl.Post(f.Action, "application/x-www-form-urlencoded", f.Fields.Encode(), browserFormPost...)
				checkLocalURL(t, where+" → Location after login", lr.Header.Get("Location"))
			}
		}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			forms, links := parsePage(t, r.Body)
			for _, f := range forms {
				checkLocalURL(t, where+" form action", f.Action)
				for _, v := range f.Fields["redirect"] {
					checkLocalURL(t, where+" form redirect field", v)
				}
			}
			for _, l := range links {
				checkLocalURL(t, where+" link", l)
			}
		}
	}

	// Signed in, the same paths land nowhere off the site either: a
	// login through a crafted mount, and the redirects after it.
	sessionForms, forbiddenForms := 0, 0
	for _, mount := range []string{"/WIKI", "/%77iki", "//wiki", "/x/../wiki", "/crm/..%2fwiki"} {
		cl := NewClient(t, c.Site)
		form := url.Values{"username": {"admin"}, "password": {alicePassword}}
		r := cl.Post(mount+"/.session/login", "application/x-www-form-urlencoded", form.Encode(), browserFormPost...)
		checkLocalURL(t, "login at "+mount, r.Header.Get("Location"))
		// The sessions page's forms and links, and where they go.
		page := cl.Get(mount+"/.session/sessions", browserNavigation...)
		forms, links := parsePage(t, page.Body)
		for _, l := range links {
			checkLocalURL(t, "sessions page at "+mount+" link", l)
		}
		sessionForms += len(forms)
		for _, f := range forms {
			checkLocalURL(t, "sessions page at "+mount+" form", f.Action)
			if f.Fields.Get("others") != "" && strings.HasPrefix(f.Action, "/") {
				r := cl.Post(f.Action, "application/x-www-form-urlencoded", f.Fields.Encode(), browserFormPost...)
				checkLocalURL(t, "sign out everywhere else at "+mount, r.Header.Get("Location"))
			}
		}
		r = cl.Post(mount+"/.session/logout", "application/x-www-form-urlencoded", "", browserFormPost...)
		checkLocalURL(t, "logout at "+mount, r.Header.Get("Location"))
		// The 403 page of a user the rule keeps out, under that mount.
		bob := NewClient(t, c.Site)
		form = url.Values{"username": {"bob"}, "password": {bobPassword}}
		bob.Post(mount+"/.session/login", "application/x-www-form-urlencoded", form.Encode(), browserFormPost...)
		page = bob.Get(mount+"/admin/x", browserNavigation...)
		if page.StatusCode != http.StatusForbidden {
			continue
		}
		forms, links = parsePage(t, page.Body)
		forbiddenForms += len(forms)
		for _, l := range links {
			checkLocalURL(t, "403 page at "+mount+" link", l)
		}
		for _, f := range forms {
			checkLocalURL(t, "403 page at "+mount+" form", f.Action)
			for _, v := range f.Fields["redirect"] {
				checkLocalURL(t, "403 page at "+mount+" redirect field", v)
			}
		}
	}
	if sessionForms < 8 || forbiddenForms < 4 {
		t.Errorf("the walk saw %d forms on sessions pages and %d on 403 pages: too few to mean anything", sessionForms, forbiddenForms)
	}
}

// TestAttackMountHostHeader: the default aud and iss take the Host the
// client sent. No Host header lets the wiki sign a token with the CRM's
// aud or iss, and a Host with a path in it is refused before the handler.
func TestAttackMountHostHeader(t *testing.T) {
	up := StartUpstream(t)
	// A catch-all site, as behind a load balancer: any Host reaches it.
	tmpl := strings.Replace(realmsTemplate, "[[.Site]]", "http://:[[.SitePort]]", 1)
	c := StartCaddy(t, up.Addr, tmpl, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	wiki := loginAt(t, c.Site, "/wiki", "admin", alicePassword)
	u, _ := url.Parse(c.Site)
	var cookie string
	for _, ck := range wiki.Jar.Cookies(u) {
		cookie += ck.Name + "=" + ck.Value + "; "
	}
	crmAud, crmIss := "127.0.0.1/crm", c.Site+"/crm/.session"
	for _, host := range []string{
		u.Host, "127.0.0.1", "127.0.0.1/crm", u.Host + "/crm", "127.0.0.1:1/crm", "127.0.0.1/crm:80", "127.0.0.1%2fcrm",
		"127.0.0.1#", "127.0.0.1?", "127.0.0.1.", "127.0.0.1/crm/.session", "[::1]/crm", "127.0.0.1\\crm",
	} {
		for _, target := range []string{"/wiki/y", "http://" + u.Host + "/wiki/y", "http://127.0.0.1/crm/../wiki/y"} {
			r := rawHostGet(t, c.Site, target, host, "Cookie: "+strings.TrimSuffix(cookie, "; "))
			if r.StatusCode >= 500 {
				t.Errorf("Host %q GET %s: %d", host, target, r.StatusCode)
			}
			if r.StatusCode != http.StatusOK {
				continue
			}
			var e Echo
			if json.Unmarshal(r.Body, &e) != nil || len(e.Headers["X-Session-Assertion"]) != 1 {
				continue
			}
			tok := e.Headers["X-Session-Assertion"][0]
			claims, _ := decodeClaims(tok)
			aud, _ := claims["aud"].(string)
			iss, _ := claims["iss"].(string)
			if aud == crmAud || iss == crmIss || strings.Contains(aud, "/crm") || strings.Contains(iss, "/crm") {
				t.Errorf("Host %q GET %s: the wiki signed aud %q iss %q", host, target, aud, iss)
			}
			if strings.ContainsAny(aud+iss, "#?\\ ") {
				t.Errorf("Host %q GET %s: aud %q iss %q", host, target, aud, iss)
			}
		}
	}
}
