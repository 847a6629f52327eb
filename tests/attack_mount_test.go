package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
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
