package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// unknownMountTemplate: the wiki under a mount with the default iss and
// aud, the ERP under a mount with both pinned, and an app at the root
// with no assertion.
const unknownMountTemplate = `
[[.Site]] {
	handle_path /wiki/* {
		session {
			store memory
			secret 0123456789abcdef0123456789abcdef
			user admin [[.Extra.alice]] admin
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle_path /erp/* {
		session {
			store memory
			secret 0123456789abcdef0123456789abcdef
			user admin [[.Extra.alice]] admin
			assertion {
				issuer https://id.example/erp
				audience erp-api
			}
		}
		reverse_proxy [[.Upstream]]
	}
	handle {
		session {
			store memory
			secret 0123456789abcdef0123456789abcdef
			user admin [[.Extra.alice]] admin
		}
		reverse_proxy [[.Upstream]]
	}
}
`

// TestUnknownMountIsRefused: on a path where Caddy's routing and its
// strip_prefix disagree (a dot segment or an encoded '/' before or in
// the mount), the handler cannot know its mount. What needs it (its own
// pages, the login redirect, an assertion with the default iss and aud)
// is refused with 400 and a log line; what does not (an assertion with
// both pinned, a signed-in request on a handler without an assertion) goes
// on to the upstream as before; a path whose strip worked is served.
func TestUnknownMountIsRefused(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, unknownMountTemplate, WithExtra("alice", aliceHash))
	cookieOf := func(cl *Client) string {
		u, _ := url.Parse(c.Site)
		var parts []string
		for _, ck := range cl.Jar.Cookies(u) {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
		return "Cookie: " + strings.Join(parts, "; ")
	}
	wiki := cookieOf(loginAt(t, c.Site, "/wiki", "admin", alicePassword))
	erp := cookieOf(loginAt(t, c.Site, "/erp", "admin", alicePassword))
	root := cookieOf(loginAt(t, c.Site, "", "admin", alicePassword))

	refused := func(where string, r *RawResponse) {
		t.Helper()
		var body struct{ Error string }
		if r.StatusCode != http.StatusBadRequest || json.Unmarshal(r.Body, &body) != nil || !strings.Contains(body.Error, "ambiguous path") {
			t.Errorf("%s: %d %s, want 400 ambiguous path", where, r.StatusCode, r.Body)
		}
		if r.Header.Get("Location") != "" {
			t.Errorf("%s: sent to %s", where, r.Header.Get("Location"))
		}
	}
	before := up.Requests.Load()
	for _, p := range []string{"/x/..%2fwiki/y", "/x/%2e%2e/wiki/y", "/wiki%2fy", "/wiki%2Fcrm/y", "/wiki%2f/y"} {
		refused("signed in to the wiki, GET "+p, rawGet(t, c.Site, p, wiki))
		refused("anonymous browser, GET "+p, rawGet(t, c.Site, p, browserNavigation...))
	}
	for _, p := range []string{"/wiki%2f.session/sessions", "/wiki%2F.session/login", "/x/..%2fwiki/.session/whoami", "/wiki%2f.session/jwks.json"} {
		refused("GET "+p, rawGet(t, c.Site, p, append([]string{wiki}, browserNavigation...)...))
	}
	if up.Requests.Load() != before {
		t.Errorf("%d refused requests reached the upstream", up.Requests.Load()-before)
	}
	if logs := c.Logs(); !strings.Contains(logs, "does not tell under which path this handler is mounted") || !strings.Contains(logs, `"original_path":"/wiki%2fy"`) {
		t.Errorf("no log line names the refused requests")
	}

	// Where the strip worked, the wiki serves and signs for the wiki.
	for _, p := range []string{"/wiki/y", "/WIKI/y", "//wiki/y", "/crm/../wiki/y", "/wiki/a%2Fb"} {
		r := rawGet(t, c.Site, p, wiki)
		var e Echo
		if r.StatusCode != http.StatusOK || json.Unmarshal(r.Body, &e) != nil || len(e.Headers["X-Session-Assertion"]) != 1 {
			t.Errorf("signed in to the wiki, GET %s: %d %s", p, r.StatusCode, r.Body)
			continue
		}
		if claims, _ := decodeClaims(e.Headers["X-Session-Assertion"][0]); !isMountOf(strings.TrimPrefix(claims["aud"].(string), "127.0.0.1"), "/wiki") {
			t.Errorf("GET %s: aud %v", p, claims["aud"])
		}
	}
	// A token that does not depend on the path goes on.
	for _, p := range []string{"/x/..%2ferp/y", "/erp%2fy"} {
		r := rawGet(t, c.Site, p, erp)
		var e Echo
		if r.StatusCode != http.StatusOK || json.Unmarshal(r.Body, &e) != nil || len(e.Headers["X-Session-Assertion"]) != 1 {
			t.Errorf("signed in to the ERP (issuer and audience pinned), GET %s: %d %s", p, r.StatusCode, r.Body)
		}
	}
	// And the root app, without an assertion, leaves a signed-in user's
	// odd path to its upstream (SPEC §2).
	if r := rawGet(t, c.Site, "/a/..%2fb", root); r.StatusCode != http.StatusOK {
		t.Errorf("signed in to the root app, GET /a/..%%2fb: %d %s", r.StatusCode, r.Body)
	}
}
