package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// A name belongs to one identity source (SPEC §9). These tests sign in
// through the test provider (zitadel's example OP) users whose names are
// a local password user's, or another provider's, and check what every
// reader of the name sees: the upstream, the sessions page, the admin
// API, rules and the session matcher.

// namesTemplate: a local password user alice, and two providers whose
// users are named by preferred_username (so both have an alice);
// [[.Extra.testnames]] and [[.Extra.idnames]] are their names settings.
// Rules: /local/* is the local alice's, /corp/* the test provider's
// alice's; /matcher answers for test:alice through the session matcher.
const namesTemplate = `
[[.Site]] {
	session {
		store memory
		secret 0123456789abcdef0123456789abcdef
		user alice [[.Extra.alice]]
		[[.Extra.users]]
		oidc test {
			issuer [[.Extra.issuer]]
			client_id edge
			client_secret [[.Extra.secret]]
			[[.Extra.testnames]]
		}
		oidc idclaims {
			issuer [[.Extra.issuer]]
			client_id edge-id
			client_secret [[.Extra.secret]]
			[[.Extra.idnames]]
		}
		allow user alice {
			path /local/*
		}
		allow user test:alice {
			path /corp/*
		}
	}
	@corp {
		path /matcher
		session user test:alice
	}
	respond @corp "matched test:alice" 200
	reverse_proxy [[.Upstream]] {
		header_up X-Placeholder-Source {http.session.source}
	}
}
`

func startNamesSite(t *testing.T, opts ...Option) (*Caddy, *OP) {
	t.Helper()
	port := freePort(t)
	o := StartOP(t, 0, "http://127.0.0.1:"+strconv.Itoa(port))
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, namesTemplate, append([]Option{WithSitePort(port), WithExtra("issuer", o.Issuer), WithExtra("secret", opSecret),
		WithExtra("alice", aliceHash), WithExtra("users", ""), WithExtra("testnames", ""), WithExtra("idnames", "")}, opts...)...)
	return c, o
}

// who is what the upstream was told about the user of cl.
func who(t *testing.T, cl *Client) (user, source string) {
	t.Helper()
	e := cl.Get("/x").Echo(t)
	return strings.Join(e.Headers["X-Session-User"], "|"), strings.Join(e.Headers["X-Session-Source"], "|")
}

// ownSessions is the sessions page's list, as JSON.
func ownSessions(t *testing.T, cl *Client) []string {
	t.Helper()
	r := cl.Get("/.session/sessions", "Accept: application/json")
	var page struct {
		Sessions []struct {
			Handle string `json:"handle"`
		} `json:"sessions"`
	}
	if r.StatusCode != 200 || json.Unmarshal(r.Body, &page) != nil {
		t.Fatalf("the sessions page: %d %s", r.StatusCode, r.Body)
	}
	var hs []string
	for _, s := range page.Sessions {
		hs = append(hs, s.Handle)
	}
	return hs
}

func signedIn(t *testing.T, cl *Client) bool {
	t.Helper()
	code, _ := cl.Whoami()
	return code == http.StatusOK
}

// TestNamesProviderUserIsNotTheLocalUser: the provider's alice is
// test:alice, not the local alice: the upstream, the sessions page, the
// admin API, rules and the matcher all tell them apart, and neither can
// see or sign out the other's sessions.
func TestNamesProviderUserIsNotTheLocalUser(t *testing.T) {
	c, _ := startNamesSite(t)
	local, corp := NewClient(t, c.Site), NewClient(t, c.Site)
	if r := local.LoginJSON("alice", alicePassword, "User-Agent: Local/1.0"); r.StatusCode != 200 {
		t.Fatalf("local login: %d %s", r.StatusCode, r.Body)
	}
	OIDCLogin(t, corp, "test", "alice", "alice-pw")

	// The upstream.
	if u, s := who(t, local); u != "alice" || s != "password" {
		t.Errorf("local alice reaches the upstream as %q from %q", u, s)
	}
	if u, s := who(t, corp); u != "test:alice" || s != "oidc:test" {
		t.Errorf("the provider's alice reaches the upstream as %q from %q; want test:alice from oidc:test", u, s)
	}
	if got := corp.Get("/x").Echo(t).Headers["X-Placeholder-Source"]; len(got) != 1 || got[0] != "oidc:test" {
		t.Errorf("{http.session.source} is %q", got)
	}
	if w := corp.Get("/.session/whoami").JSON(t); w["user"] != "test:alice" || w["source"] != "oidc:test" {
		t.Errorf("whoami says %v", w)
	}
	// No client can name the source: every spelling of the header is
	// dropped, the handler's own is the only one.
	e := corp.Get("/x", "X-Session-Source: password", "x-session-source: upstream", "X-Session_Source: password", "X-Session-User: alice").Echo(t)
	for name, v := range e.Headers {
		n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		if (n == "x-session-source" && (name != "X-Session-Source" || len(v) != 1 || v[0] != "oidc:test")) ||
			(n == "x-session-user" && (len(v) != 1 || v[0] != "test:alice")) {
			t.Errorf("the upstream got %s: %q", name, v)
		}
	}

	// Rules and the matcher.
	for _, tt := range []struct {
		cl   *Client
		path string
		code int
	}{{local, "/local/x", 200}, {corp, "/local/x", 403}, {corp, "/corp/x", 200}, {local, "/corp/x", 403}} {
		if r := tt.cl.Get(tt.path); r.StatusCode != tt.code {
			t.Errorf("%s as %s: %d, want %d", tt.path, map[*Client]string{local: "alice", corp: "test:alice"}[tt.cl], r.StatusCode, tt.code)
		}
	}
	if r := corp.Get("/matcher"); string(r.Body) != "matched test:alice" {
		t.Errorf("the matcher did not match test:alice: %d %s", r.StatusCode, r.Body)
	}
	if r := local.Get("/matcher"); string(r.Body) == "matched test:alice" {
		t.Error("the matcher took the local alice for test:alice")
	}

	// The sessions page: each sees their own session only, and cannot
	// sign out the other's.
	localHandles, corpHandles := ownSessions(t, local), ownSessions(t, corp)
	if len(localHandles) != 1 || len(corpHandles) != 1 {
		t.Fatalf("the sessions pages list %d and %d sessions, want 1 each", len(localHandles), len(corpHandles))
	}
	corp.Post("/.session/sessions", "application/x-www-form-urlencoded", "others=1", "Origin: "+c.Site)
	corp.Post("/.session/sessions", "application/x-www-form-urlencoded", "handle="+localHandles[0], "Origin: "+c.Site)
	if !signedIn(t, local) || !signedIn(t, corp) {
		t.Fatal("the provider's alice signed out the local alice (or herself)")
	}

	// The admin API.
	ls, cs := adminList(t, c, "alice"), adminList(t, c, "test:alice")
	if len(ls) != 1 || ls[0].Source != "password" || ls[0].Handle != localHandles[0] {
		t.Errorf("the admin API lists alice's sessions as %+v", ls)
	}
	if len(cs) != 1 || cs[0].Source != "oidc:test" || cs[0].Handle != corpHandles[0] {
		t.Errorf("the admin API lists test:alice's sessions as %+v", cs)
	}
	if code, body := c.Admin("DELETE", "/session/users/"+url.PathEscape("test:alice")); code != 200 || !strings.Contains(string(body), `"revoked":1`) {
		t.Fatalf("revoking test:alice: %d %s", code, body)
	}
	if !signedIn(t, local) || signedIn(t, corp) {
		t.Error("revoking test:alice did not end her session alone")
	}
}

// TestNamesTwoProviders: two providers' alice are two users, unless both
// say they vouch for local names; changing what a provider's names are
// ends the sessions it issued under the other setting, which is also how
// sessions from before names were qualified end.
func TestNamesTwoProviders(t *testing.T) {
	c, _ := startNamesSite(t)
	a, b, local := NewClient(t, c.Site), NewClient(t, c.Site), NewClient(t, c.Site)
	OIDCLogin(t, a, "test", "alice", "alice-pw")
	OIDCLogin(t, b, "idclaims", "alice", "alice-pw")
	if u, s := who(t, a); u != "test:alice" || s != "oidc:test" {
		t.Errorf("test's alice is %q from %q", u, s)
	}
	if u, s := who(t, b); u != "idclaims:alice" || s != "oidc:idclaims" {
		t.Errorf("idclaims' alice is %q from %q", u, s)
	}
	if n := len(ownSessions(t, a)); n != 1 {
		t.Errorf("test:alice's sessions page lists %d sessions, want her 1", n)
	}
	a.Post("/.session/sessions", "application/x-www-form-urlencoded", "others=1", "Origin: "+c.Site)
	if !signedIn(t, b) {
		t.Fatal("test's alice signed idclaims' alice out")
	}
	if r := b.Get("/corp/x"); r.StatusCode != 403 {
		t.Errorf("idclaims:alice passed test:alice's rule: %d", r.StatusCode)
	}

	// Both providers vouch for local names: their alice is the local
	// alice. The sessions they issued as their own names end.
	c.Reload(strings.NewReplacer("[[.Extra.testnames]]", "names local", "[[.Extra.idnames]]", "names local").Replace(namesTemplate))
	if signedIn(t, a) || signedIn(t, b) {
		t.Fatal("sessions issued under qualified names outlived names local")
	}
	OIDCLogin(t, a, "test", "alice", "alice-pw")
	OIDCLogin(t, b, "idclaims", "alice", "alice-pw")
	local.MustLogin("alice", alicePassword)
	if u, s := who(t, a); u != "alice" || s != "oidc:test" {
		t.Errorf("with names local, test's alice is %q from %q", u, s)
	}
	if u, s := who(t, b); u != "alice" || s != "oidc:idclaims" {
		t.Errorf("with names local, idclaims' alice is %q from %q", u, s)
	}
	if n := len(ownSessions(t, local)); n != 3 {
		t.Errorf("alice's sessions page lists %d sessions, want 3 (password, test, idclaims)", n)
	}
	if r := a.Get("/local/x"); r.StatusCode != 200 {
		t.Errorf("with names local, test's alice is refused the local alice's rule: %d", r.StatusCode)
	}

	// Back to the default, as after an upgrade from a version whose
	// provider users had bare names: those sessions are no login.
	c.Reload(namesTemplate)
	if signedIn(t, a) || signedIn(t, b) {
		t.Fatal("a provider's bare-name sessions outlived qualified names")
	}
	if !signedIn(t, local) {
		t.Fatal("the password session ended with the providers' setting")
	}
}

// TestNamesThatPathsClean: no source issues a name that a path cleans
// away ("." and "..", '/', '\', '%'); the admin API refuses to be asked
// about one, and what a client that cleans a per-user path would send is
// never "revoke everything".
func TestNamesThatPathsClean(t *testing.T) {
	c, o := startNamesSite(t, WithExtra("users", "upstream_control on"))

	// A provider that says preferred_username is ".." (or the like):
	// the login is refused (not named by the email, which another user
	// could pick as username: TestAttackNamesFallbackNamesake).
	for _, bad := range []string{"..", ".", "a/../b", "%2E%2E", `a\b`} {
		o.Tamper(t, func(t testing.TB, idToken string) string {
			return o.Resign(t, idToken, nil, func(claims map[string]any) { claims["preferred_username"] = bad })
		})
		cl := NewClient(t, c.Site)
		r := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "idclaims", "", "alice", "alice-pw"))
		if r.StatusCode != http.StatusForbidden || signedIn(t, cl) {
			t.Errorf("preferred_username %q: callback %d, signed in %v; want 403, not signed in", bad, r.StatusCode, signedIn(t, cl))
		}
	}
	o.Tamper(t, func(t testing.TB, idToken string) string { return idToken })

	// A local user of such a name is a config error.
	if _, err := c.TryReload(strings.Replace(namesTemplate, "[[.Extra.users]]", "user .. [[.Extra.alice]]", 1)); err == nil || !strings.Contains(err.Error(), "dot segment") {
		t.Errorf("a local user named ..: %v", err)
	}

	// The admin API refuses names no source can issue; a normalising
	// client's DELETE /session/users/%2E%2E/all is not revoking all.
	someone := NewClient(t, c.Site)
	someone.MustLogin("alice", alicePassword)
	for _, tt := range []struct{ method, path string }{
		{"GET", "/session/users/%2E%2E"},
		{"DELETE", "/session/users/%2E%2E"},
		{"DELETE", "/session/users/%2e"},
		{"DELETE", "/session/users/%2E%2E/all"},
		{"DELETE", "/session/all"},
		{"DELETE", "/session/users/a%2F..%2F..%2Fall"},
	} {
		if code, body := c.Admin(tt.method, tt.path); code/100 != 4 {
			t.Errorf("%s %s: %d %s, want a 4xx", tt.method, tt.path, code, body)
		}
	}
	if !signedIn(t, someone) {
		t.Fatal("a request about a dot name revoked a session")
	}

	// Nor can the upstream log in such a name, or a provider's user.
	for _, bad := range []string{"..", ".", "a/b", "%2e%2e", "test:alice"} {
		someone.Get("/x?h=" + url.QueryEscape("X-Session-Login:"+bad)).Echo(t)
		if u, s := who(t, someone); u != "alice" || s != "password" {
			t.Errorf("the upstream logged in %q: the user is now %q from %q", bad, u, s)
		}
	}

	// caddy session refuses such names before it asks.
	addr := "127.0.0.1:" + strconv.Itoa(c.AdminPort)
	for _, args := range [][]string{{"revoke", ".."}, {"revoke", "."}, {"list", ".."}, {"revoke", "a/../.."}} {
		out, err := sessionCmd(t, append(args, "--address", addr)...)
		if err == nil || !strings.Contains(out, "no session can have this name") {
			t.Errorf("caddy session %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if !signedIn(t, someone) {
		t.Fatal("caddy session revoke .. revoked a session")
	}
	out, err := sessionCmd(t, "revoke", "test:alice", "--address", addr)
	if err != nil || strings.TrimSpace(out) != "revoked 0 sessions of test:alice" {
		t.Errorf("caddy session revoke test:alice: %v\n%s", err, out)
	}
}
