package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A hostile review of issue 17 items 9 (assertions name their app), 10
// (every URL keeps the mount) and 11 (logout_cookies and the signed-in
// marker), against a real Caddy. Each test asserts the safe behaviour: a
// failing one is a finding.

// attackPaths are spellings of a request for /wiki/y that Caddy routes to
// the wiki's `handle_path /wiki/*` (case, escapes, dot segments, doubled
// slashes, encoded '/'), and some that it routes elsewhere.
var attackPaths = []string{
	"/wiki/y", "/WIKI/y", "/Wiki/y", "/%77iki/y", "/wi%6Bi/y", "//wiki/y", "/wiki//y",
	"/./wiki/y", "/wiki/./y", "/x/../wiki/y", "/crm/../wiki/y", "/wiki/.session/../y",
	"/x/..%2fwiki/y", "/x/%2e%2e/wiki/y", "/crm/..%2fwiki/y", "/crm/%2e%2e/wiki/y",
	"/wiki%2fy", "/wiki%2f/y", "/wiki%2Fcrm/y", "/wiki/%2e%2e/crm/y", "/wiki/..%2fcrm/y",
}

// tokenVia sends GET path as cl and returns the assertion the upstream
// got, or "" when the request did not reach the upstream signed in.
func tokenVia(t *testing.T, cl *Client, path string) (string, Echo) {
	t.Helper()
	r := cl.Get(path)
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return "", Echo{}
	}
	e := r.Echo(t)
	tok := e.Headers["X-Session-Assertion"]
	if len(tok) != 1 {
		return "", e
	}
	return tok[0], e
}

// loginAt logs in with the JSON API of the app under mount.
func loginAt(t *testing.T, site, mount, user, password string) *Client {
	t.Helper()
	cl := NewClient(t, site)
	b, _ := json.Marshal(map[string]string{"username": user, "password": password})
	if r := cl.Post(mount+"/.session/login", "application/json", string(b)); r.StatusCode != http.StatusOK {
		t.Fatalf("login as %s at %s: %d %s", user, mount, r.StatusCode, r.Body)
	}
	return cl
}

// isMountOf reports whether the escaped mount prefix of a URL is a
// spelling of want (case and percent-encoding aside).
func isMountOf(mount, want string) bool {
	d, err := url.PathUnescape(mount)
	return err == nil && strings.EqualFold(d, want)
}

// realmlessTemplate is two apps on one host, neither with a realm (the
// configuration of before realms, and the one the upgrade notes keep
// for handlers without one): the wiki under /wiki and another app at the
// root, each with its own users, both asserting with the shared keys. Their
// tokens are told apart by aud and iss alone.
const realmlessTemplate = `
[[.Site]] {
	handle_path /wiki/* {
		session {
			store memory
			secret 0123456789abcdef0123456789abcdef
			title "Wiki"
			user admin [[.Extra.alice]] admin
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle {
		session {
			store memory
			secret 0123456789abcdef0123456789abcdef
			title "Root"
			user admin [[.Extra.bob]] admin
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
}
`

// TestAttackMountTokenOfTheWikiForTheRoot: the wiki's admin (not the root
// app's admin: another password, another person) must never get a token
// that the root app's verifier accepts. Without realms the keys are shared,
// so the mount in aud and iss is the only thing that tells the apps apart:
// whatever the spelling of the path, a token the wiki handler signs must
// name the wiki, not the root app. And a browser the wiki handler sends to
// a login page goes to the wiki's, not to the root app's.
func TestAttackMountTokenOfTheWikiForTheRoot(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, realmlessTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	wiki := loginAt(t, c.Site, "/wiki", "admin", alicePassword)
	rootAud, rootIss := "127.0.0.1", c.Site+"/.session"
	root := &jwksVerifier{url: c.Site + "/.session/jwks.json"}
	// The root's own token verifies (so that a refusal below means
	// something).
	rootAdmin := loginAt(t, c.Site, "", "admin", bobPassword)
	if tok, _ := tokenVia(t, rootAdmin, "/y"); tok == "" {
		t.Fatal("the root app's admin got no token")
	} else if _, _, err := root.verify(tok, rootAud, rootIss); err != nil {
		t.Fatalf("the root app's own token: %v", err)
	}
	signed := 0
	for _, p := range attackPaths {
		tok, e := tokenVia(t, wiki, p)
		if tok == "" {
			continue
		}
		signed++
		claims, _ := decodeClaims(tok)
		if _, _, err := root.verify(tok, rootAud, rootIss); err == nil {
			t.Errorf("GET %s: the wiki admin's token (upstream path %q, aud %v, iss %v) is accepted by the root app's verifier as %v",
				p, e.Path, claims["aud"], claims["iss"], claims["sub"])
		}
	}
	if signed < 10 {
		t.Fatalf("only %d of the paths reached the wiki signed in", signed)
	}

	// Anonymous: the wiki handler's login redirect leads to the wiki's
	// login page, never to the root app's.
	anon := NewClient(t, c.Site)
	for _, p := range attackPaths {
		r := anon.Get(p, browserNavigation...)
		loc := r.Header.Get("Location")
		if r.StatusCode != http.StatusFound || !strings.Contains(loc, ".session/login") {
			continue
		}
		// Which app answered: its login page's title.
		page := anon.Get(loc, browserNavigation...)
		if !strings.Contains(string(page.Body), "Root") {
			continue // the root app sent it to its own login: fine
		}
		// The root app's login page: was it the wiki handler that sent
		// the browser there? The redirect field names the page asked for.
		target := (&url.URL{Path: strings.SplitN(loc, "?", 2)[0]}).Path
		if wikiWouldServe(t, wiki, p) {
			t.Errorf("GET %s, which the wiki handler serves: sent to %s, the root app's login page (%s)", p, loc, target)
		}
	}
}

// wikiWouldServe reports whether the signed-in wiki client's request for
// path reaches the upstream through the wiki handler (the root app does
// not know the wiki's admin session: it would answer 401).
func wikiWouldServe(t *testing.T, wiki *Client, path string) bool {
	t.Helper()
	r := wiki.Get(path)
	return r.StatusCode == http.StatusOK && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
}

// realmsTemplate is two apps with a realm each under a mount, and one
// without a realm at the root.
const realmsTemplate = `
[[.Site]] {
	handle_path /wiki/* {
		session {
			store memory
			realm wiki
			title "Wiki"
			user admin [[.Extra.alice]] admin
			user bob [[.Extra.bob]]
			allow group admin {
				path /admin/*
			}
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle_path /crm/* {
		session {
			store memory
			realm crm
			title "CRM"
			user admin [[.Extra.bob]] admin
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle {
		session {
			store memory
			title "Root"
			user admin [[.Extra.bob]] admin
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
}
`

// TestAttackMountRealmsKeepTokensApart: with a realm each, no spelling of
// a path gets the wiki's admin a token that the CRM's or the root app's
// verifier accepts, even a verifier that checks only the signature; each
// JWKS, under any spelling of its mount, publishes its own realm's keys
// and no other's.
func TestAttackMountRealmsKeepTokensApart(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, realmsTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	wiki := loginAt(t, c.Site, "/wiki", "admin", alicePassword)
	crmV := &jwksVerifier{url: c.Site + "/crm/.session/jwks.json"}
	rootV := &jwksVerifier{url: c.Site + "/.session/jwks.json"}
	// Own tokens verify: a refusal below is not a broken verifier.
	crm := loginAt(t, c.Site, "/crm", "admin", bobPassword)
	if tok, _ := tokenVia(t, crm, "/crm/y"); tok == "" {
		t.Fatal("no CRM token")
	} else if _, _, err := crmV.verify(tok, "127.0.0.1/crm", c.Site+"/crm/.session"); err != nil {
		t.Fatalf("the CRM's own token: %v", err)
	}
	signed := 0
	for _, p := range attackPaths {
		tok, e := tokenVia(t, wiki, p)
		if tok == "" {
			continue
		}
		signed++
		claims, _ := decodeClaims(tok)
		aud, _ := claims["aud"].(string)
		iss, _ := claims["iss"].(string)
		// Signature only, with the token's own aud and iss.
		for name, v := range map[string]*jwksVerifier{"CRM": crmV, "root": rootV} {
			if _, _, err := v.verify(tok, aud, iss); err == nil || !strings.Contains(err.Error(), "no key") {
				t.Errorf("GET %s (upstream %q): the %s's keys verify the wiki's token: %v", p, e.Path, name, err)
			}
		}
		if _, _, err := crmV.verify(tok, "127.0.0.1/crm", c.Site+"/crm/.session"); err == nil {
			t.Errorf("GET %s: the CRM's verifier accepts the wiki admin's token", p)
		}
	}
	if signed < 10 {
		t.Fatalf("only %d of the paths reached the wiki signed in", signed)
	}

	kids := func(path string) []string {
		t.Helper()
		r := NewClient(t, c.Site).Get(path)
		if r.StatusCode != http.StatusOK {
			return nil
		}
		var set struct{ Keys []struct{ Kid string } }
		if err := json.Unmarshal(r.Body, &set); err != nil {
			t.Fatalf("%s: %v: %s", path, err, r.Body)
		}
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.Kid)
		}
		slices.Sort(out)
		return out
	}
	wikiKids, crmKids, rootKids := kids("/wiki/.session/jwks.json"), kids("/crm/.session/jwks.json"), kids("/.session/jwks.json")
	if len(wikiKids) == 0 || len(crmKids) == 0 || len(rootKids) == 0 {
		t.Fatalf("JWKS: wiki %v crm %v root %v", wikiKids, crmKids, rootKids)
	}
	for _, k := range wikiKids {
		if slices.Contains(crmKids, k) || slices.Contains(rootKids, k) {
			t.Errorf("the wiki's key %s is published by another app too", k)
		}
	}
	if slices.ContainsFunc(crmKids, func(k string) bool { return slices.Contains(rootKids, k) }) {
		t.Error("the CRM and the root app share a key")
	}
	for _, p := range []string{"/WIKI/.session/jwks.json", "/%77iki/.session/jwks.json", "//wiki/.session/jwks.json", "/crm/../wiki/.session/jwks.json", "/crm/..%2fwiki/.session/jwks.json", "/wiki%2f.session/jwks.json"} {
		got := kids(p)
		if got == nil {
			continue
		}
		if !slices.Equal(got, wikiKids) && !slices.Equal(got, crmKids) && !slices.Equal(got, rootKids) {
			t.Errorf("%s publishes %v: the keys of no app", p, got)
		}
		if slices.Equal(got, crmKids) && strings.Contains(strings.ToLower(p), "/wiki/.session") && !strings.Contains(p, "%2f") {
			t.Errorf("%s publishes the CRM's keys", p)
		}
	}
}

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

// dotRealmsTemplate: realm names are letters, digits, '.', '_' and '-':
// "..", "." and "x.json" are valid. Their keys must stay in files of their
// own under edgesession/, apart from the keys of handlers without a realm.
const dotRealmsTemplate = `
[[.Site]] {
	handle_path /a/* {
		session {
			store memory
			realm ..
			user admin [[.Extra.alice]]
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle_path /b/* {
		session {
			store memory
			realm .
			user admin [[.Extra.alice]]
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle_path /c/* {
		session {
			store memory
			realm x.json
			user admin [[.Extra.alice]]
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle {
		session {
			store memory
			user admin [[.Extra.alice]]
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
}
`

// TestAttackRealmNamesInTheStorageKey: realms named with dots do not
// escape Caddy's storage directory, nor share a key file with another
// realm or with the handlers without a realm.
func TestAttackRealmNamesInTheStorageKey(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, dotRealmsTemplate, WithExtra("alice", aliceHash))
	published := map[string]string{}
	for _, mount := range []string{"/a", "/b", "/c", ""} {
		r := NewClient(t, c.Site).Get(mount + "/.session/jwks.json")
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s JWKS: %d", mount, r.StatusCode)
		}
		var set struct{ Keys []struct{ Kid string } }
		if err := json.Unmarshal(r.Body, &set); err != nil || len(set.Keys) == 0 {
			t.Fatalf("%s JWKS: %v %s", mount, err, r.Body)
		}
		for _, k := range set.Keys {
			if other, ok := published[k.Kid]; ok {
				t.Errorf("the apps at %q and %q publish the same key %s", other, mount, k.Kid)
			}
			published[k.Kid] = mount
		}
	}
	var files []string
	err := filepath.WalkDir(c.Dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), "assertion-keys") {
			rel, _ := filepath.Rel(c.Dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Errorf("key files: %q, want 4", files)
	}
	for _, f := range files {
		if !strings.Contains(f, "/edgesession/assertion-keys") {
			t.Errorf("a key file outside edgesession/: %s", f)
		}
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

// markerTemplate is an app with logout_cookies under a mount, with a
// realm, and another app whose realm makes its session cookie the first
// app's marker name would be if it had no realm: collisions are checked
// with realmlessMarkerTemplate.
const markerTemplate = `
[[.Site]] {
	handle_path /app/* {
		session {
			store memory
			realm app
			user alice [[.Extra.alice]]
			logout_cookies sessionid
			public {
				path /public/*
			}
		}
		reverse_proxy [[.Upstream]]
	}
}
`

// TestAttackMarkerNeverReachesTheUpstream: the marker is the handler's, in
// every spelling a browser or a client sends it, on public and signed-in
// requests; an app cookie of another name goes through.
func TestAttackMarkerNeverReachesTheUpstream(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, markerTemplate, WithExtra("alice", aliceHash))
	const marker = "caddy_session_app~signedin"
	alice := loginAt(t, c.Site, "/app", "alice", alicePassword)
	if !jarHas(alice, "/app/x", marker) {
		t.Fatal("no marker after the login")
	}
	cookies := func(e Echo) []*http.Cookie {
		return (&http.Request{Header: http.Header{"Cookie": e.Headers["Cookie"]}}).Cookies()
	}
	for _, extra := range [][]string{
		{"Cookie: " + marker + "=1"},
		{"Cookie: " + marker + "=1; " + marker + "=2"},
		{"Cookie: a=1", "Cookie: " + marker + "=1"},
		{"Cookie: " + marker + "=\"1\""},
		{"Cookie: " + marker + " = 1"},
		{"Cookie: a=1;" + marker + "=1;b=2"},
	} {
		for name, cl := range map[string]*Client{"anonymous": NewClient(t, c.Site), "signed in": alice} {
			for _, p := range []string{"/app/public/x", "/app/x"} {
				r := cl.Get(p, extra...)
				if r.StatusCode != http.StatusOK {
					continue
				}
				for _, ck := range cookies(r.Echo(t)) {
					if ck.Name == marker {
						t.Errorf("%s GET %s with %q: the upstream got the marker (%v)", name, p, extra, r.Echo(t).Headers["Cookie"])
					}
				}
			}
		}
	}
	// Its name may not be one of the app's cookies to expire.
	for _, cfg := range []string{
		"logout_cookies " + marker, "logout_cookies caddy_session_app",
		// The cookie named after logout_cookies: the check must see it.
		"logout_cookies sess~signedin\n\t\t\tcookie {\n\t\t\t\tname sess\n\t\t\t}",
		"cookie {\n\t\t\t\tname sess\n\t\t\t}\n\t\t\tlogout_cookies sess~signedin",
	} {
		if out, err := validateConfig(t, strings.Replace(markerTemplate, "logout_cookies sessionid", cfg, 1)); err == nil {
			t.Errorf("%s is accepted: %s", cfg, out)
		}
	}
}

// validateConfig runs `caddy validate` on the Caddyfile template tmpl.
func validateConfig(t *testing.T, tmpl string) (string, error) {
	t.Helper()
	c := &Caddy{t: t, Dir: t.TempDir(), Extra: map[string]any{"alice": aliceHash, "bob": bobHash}}
	c.choosePorts()
	c.file = filepath.Join(c.Dir, "Caddyfile")
	c.writeConfig(tmpl)
	cmd := exec.Command(caddyBin, "validate", "--config", c.file, "--adapter", "caddyfile")
	cmd.Env = c.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// collidingMarkerTemplate: an app without a realm that sets the marker
// (it was caddy_session_signedin; it is now caddy_session~signedin, a name
// no realm gives), and another app whose realm is "signedin": its session
// cookie is caddy_session_signedin, with the same path.
const collidingMarkerTemplate = `
[[.Site]] {
	handle_path /app/* {
		session {
			store memory
			user alice [[.Extra.alice]]
			logout_cookies sessionid
		}
		reverse_proxy [[.Upstream]]
	}
	handle_path /other/* {
		session {
			store memory
			realm signedin
			user alice [[.Extra.alice]]
		}
		reverse_proxy [[.Upstream]]
	}
}
`

// TestAttackMarkerCollidesWithAnotherAppsCookie: the marker's name was the
// session cookie's name with "_signedin"; a realm's cookie is
// caddy_session_<realm>. Two apps on one host must not share a cookie
// name: either Caddy refuses the configuration, or signing in to one app
// does not sign the user out of the other.
func TestAttackMarkerCollidesWithAnotherAppsCookie(t *testing.T) {
	if _, err := validateConfig(t, collidingMarkerTemplate); err != nil {
		return // refused: safe
	}
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, collidingMarkerTemplate, WithExtra("alice", aliceHash))
	cl := NewClient(t, c.Site)
	for _, mount := range []string{"/other", "/app"} {
		b, _ := json.Marshal(map[string]string{"username": "alice", "password": alicePassword})
		if r := cl.Post(mount+"/.session/login", "application/json", string(b)); r.StatusCode != http.StatusOK {
			t.Fatalf("login at %s: %d %s", mount, r.StatusCode, r.Body)
		}
	}
	for _, p := range []string{"/app/x", "/other/x"} {
		if r := cl.Get(p); r.StatusCode != http.StatusOK {
			t.Errorf("signed in to both apps, then GET %s: %d %s (the marker of /app took the name of /other's session cookie)", p, r.StatusCode, r.Body)
		}
	}
}

// TestAttackMarkerPlantedElsewhere: a cookie the handler did not set (a
// cookie tossed with a path of its own, as a sibling subdomain's Domain
// cookie or a plain-HTTP injection would be) arriving without a session:
// the marker, or a session cookie that does not decode. The handler expires
// the app's cookies and its own once; the planted cookie, which it cannot
// expire, must not make it keep the app's anonymous session (a CSRF token,
// an upstream_control login form, both of which the docs promise to leave
// alone) from the app on every request after that.
func TestAttackMarkerPlantedElsewhere(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, markerTemplate, WithExtra("alice", aliceHash))
	for name, planted := range map[string]*http.Cookie{
		"marker":                     {Name: "caddy_session_app~signedin", Value: "1", Path: "/app/public"},
		"undecodable session cookie": {Name: "caddy_session_app", Value: "garbage", Path: "/app/public"},
	} {
		t.Run(name, func(t *testing.T) {
			cl := NewClient(t, c.Site)
			u, _ := url.Parse(c.Site + "/app/")
			// With a path of its own: sent first, and not the cookie
			// that a Path=/ expiry removes.
			cl.Jar.SetCookies(u, []*http.Cookie{planted})
			// The app starts its anonymous session on a public page, and
			// the browser keeps it (the app's Set-Cookie comes last).
			setApp := "/app/public/x?h=" + url.QueryEscape("Set-Cookie:sessionid=anon; Path=/")
			cl.Get(setApp).Echo(t)
			if !jarHas(cl, "/app/public/x", "sessionid") {
				t.Fatalf("the app's cookie is not in the browser")
			}
			kept := 0
			for range 3 {
				e := cl.Get("/app/public/x").Echo(t)
				for _, ck := range (&http.Request{Header: http.Header{"Cookie": e.Headers["Cookie"]}}).Cookies() {
					if ck.Name == "sessionid" {
						kept++
					}
				}
			}
			if kept != 3 {
				t.Errorf("the app got its anonymous session cookie on %d of 3 requests after the first: the planted %s, which the handler cannot expire, ends the app's session on every request", kept, name)
			}
		})
	}
}

// TestAttackMountSessionsPageThroughAnEncodedSlash: item 10's own scenario
// (a user who fears a stolen session signs out everywhere else), reached
// through a link that spells the mount with an encoded '/'. Whatever
// spelling serves the wiki's sessions page, its "Sign out everywhere
// else" form must sign the wiki's other sessions out; or the page must
// not be served under that spelling.
func TestAttackMountSessionsPageThroughAnEncodedSlash(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, realmsTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	for _, p := range []string{"/wiki/.session/sessions", "/WIKI/.session/sessions", "/wiki%2f.session/sessions", "/wiki%2F.session/sessions", "/x/..%2fwiki/.session/sessions"} {
		t.Run(strings.ReplaceAll(p, "/", "_"), func(t *testing.T) {
			victim := loginAt(t, c.Site, "/wiki", "admin", alicePassword)
			thief := loginAt(t, c.Site, "/wiki", "admin", alicePassword)
			page := victim.Get(p, browserNavigation...)
			if page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
				return // not served under this spelling: safe
			}
			forms, _ := parsePage(t, page.Body)
			var others *htmlForm
			for i, f := range forms {
				if f.Fields.Get("others") != "" {
					others = &forms[i]
				}
			}
			if others == nil {
				return // nothing to click
			}
			r := victim.Post(others.Action, "application/x-www-form-urlencoded", others.Fields.Encode(), browserFormPost...)
			if thief.Get("/wiki/x").StatusCode == http.StatusOK {
				t.Errorf("GET %s served the wiki's sessions page; its \"sign out everywhere else\" form posts to %s (answered %d, Location %q), and the other session of the wiki lives on",
					p, others.Action, r.StatusCode, r.Header.Get("Location"))
			}
		})
	}
}

// TestAttackMountRulesUnderEverySpelling: the rule `allow group admin {
// path /admin/* }` of the wiki holds under every spelling of the mount and
// of the separator after it (an encoded '/', a doubled one): bob, not in
// admin, never reaches the wiki's /admin/ (as the upstream reads the path:
// Go's, which does not merge slashes, or one that does, as Werkzeug's).
func TestAttackMountRulesUnderEverySpelling(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, realmsTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	bob := loginAt(t, c.Site, "/wiki", "bob", bobPassword)
	if r := bob.Get("/wiki/admin/x"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("bob at /wiki/admin/x: %d", r.StatusCode)
	}
	for _, p := range []string{
		"/WIKI/admin/x", "/%77iki/admin/x", "/wiki%2fadmin/x", "/wiki%2Fadmin/x", "/wiki%2f/admin/x", "/wiki//admin/x",
		"/wiki/%2fadmin/x", "/wiki%2f%2fadmin/x", "/wiki/.//admin/x", "/x/..%2fwiki/admin/x", "/wiki/%61dmin/x",
		"/wiki/ADMIN/x", "/wiki/admin%2fx", "/wiki%2fadmin%2fx",
	} {
		r := bob.Get(p)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			continue
		}
		e := r.Echo(t)
		merged := "/" + strings.TrimLeft(e.Path, "/")
		if strings.HasPrefix(strings.ToLower(merged), "/admin/") || strings.EqualFold(merged, "/admin") {
			t.Errorf("bob GET %s: the wiki's upstream served %q (user %v)", p, e.Path, e.Headers["X-Session-User"])
		}
	}
}
