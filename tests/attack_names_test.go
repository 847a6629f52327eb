package tests

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A hostile review of the names and hydra branches (issue 17 items 6,
// 12 and 13; SPEC §9): a provider's users are <provider>:<name>,
// X-Session-Source, names that paths clean, POST /session/revoke-all,
// the bounded state cookies, the allow-lists and email_verified. Each
// test asserts the safe behaviour: one that fails is a finding.

// startAttackNamesSite is startNamesSite with the upstream returned and
// upstream_control on.
func startAttackNamesSite(t *testing.T) (*Caddy, *OP, *Upstream) {
	t.Helper()
	port := freePort(t)
	o := StartOP(t, 0, "http://127.0.0.1:"+strconv.Itoa(port))
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, namesTemplate, WithSitePort(port), WithExtra("issuer", o.Issuer), WithExtra("secret", opSecret),
		WithExtra("alice", aliceHash), WithExtra("users", "upstream_control on"), WithExtra("testnames", ""), WithExtra("idnames", ""))
	return c, o, up
}

// loginAs signs a new browser in through idclaims (claims in the ID
// token) as user, with preferred_username (and anything else) as change
// leaves the ID token, and returns the browser and the callback's answer.
func loginAs(t *testing.T, c *Caddy, o *OP, user string, change func(claims map[string]any)) (*Client, *Response) {
	t.Helper()
	o.Tamper(t, func(t testing.TB, idToken string) string { return o.Resign(t, idToken, nil, change) })
	defer o.Tamper(t, func(t testing.TB, idToken string) string { return idToken })
	cl := NewClient(t, c.Site)
	r := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "idclaims", "", user, user+"-pw"))
	return cl, r
}

// TestAttackNamesFromClaims: whatever preferred_username a provider's
// user picks, the name the upstream gets is the provider's, not a local
// user's nor another provider's, and carries nothing a person reading it
// (logs, the admin API, the app's user list) would take for another
// name: no ':' look-alike makes test:alice, no control, bidi or
// invisible character rides along.
func TestAttackNamesFromClaims(t *testing.T) {
	c, o, _ := startAttackNamesSite(t)
	// A preferred_username that is there but is no valid name refuses
	// the login (403): falling back to the email would let another user
	// pick that email as username (TestAttackNamesFallbackNamesake). One
	// the provider does not send ("") falls back to the verified email.
	const fallback, refused = "idclaims:alice@example.com", ""

	for _, tt := range []struct {
		name, claim string
		want        string // the X-Session-User; refused: the login is refused
	}{
		{"another provider's qualified name", "test:alice", refused},
		{"a qualified local-looking name", ":alice", refused},
		{"the local name", "alice", "idclaims:alice"},
		{"fullwidth colon", "test\uFF1Aalice", "idclaims:test\uFF1Aalice"},
		{"modifier letter colon", "test\uA789alice", "idclaims:test\uA789alice"},
		{"ratio", "test\u2236alice", "idclaims:test\u2236alice"},
		{"NUL", "alice\x00", refused},
		{"CR LF header injection", "alice\r\nX-Session-Source: password", refused},
		{"tab", "ali\tce", refused},
		{"DEL", "alice\x7f", refused},
		{"C1 control", "alice\u0085", refused},
		{"leading space", " alice", refused},
		{"no-break space at the end", "alice\u00a0", refused},
		{"empty", "", fallback},
		{"301 bytes", strings.Repeat("a", 301), refused},
		{"256 bytes", strings.Repeat("b", 256), "idclaims:" + strings.Repeat("b", 256)},
		{"dot segment", "..", refused},
		{"percent", "%61lice", refused},
		// Characters that change how a name reads without being a
		// control character (Unicode Cf): a right-to-left override shows
		// "\u202Eecila:sdialcdi" as "idclaims:alice" reversed in a log
		// viewer; a zero-width space makes "ali\u200Bce" look like alice.
		{"right-to-left override", "\u202Eecila", refused},
		{"zero-width space", "ali\u200Bce", refused},
		{"left-to-right isolate", "alice\u2066", refused},
		{"byte order mark", "\uFEFFalice", refused},
		{"soft hyphen", "ali\u00ADce", refused},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cl, r := loginAs(t, c, o, "alice", func(claims map[string]any) { claims["preferred_username"] = tt.claim })
			if tt.want == refused {
				if r.StatusCode != http.StatusForbidden || !strings.Contains(string(r.Body), "cannot be used here") {
					t.Errorf("preferred_username %q: callback %d %s; want 403, the name cannot be used", tt.claim, r.StatusCode, r.Body)
				}
				if signedIn(t, cl) {
					t.Errorf("preferred_username %q: signed in as %q", tt.claim, first(who(t, cl)))
				}
				return
			}
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("callback: %d %s", r.StatusCode, r.Body)
			}
			u, s := who(t, cl)
			if u != tt.want || s != "oidc:idclaims" {
				t.Errorf("preferred_username %q: the upstream got user %q (source %q); want %q", tt.claim, u, s, tt.want)
			}
			if code := cl.Get("/corp/x").StatusCode; code != http.StatusForbidden {
				t.Errorf("preferred_username %q passes test:alice's rule: %d", tt.claim, code)
			}
			if code := cl.Get("/local/x").StatusCode; code != http.StatusForbidden {
				t.Errorf("preferred_username %q passes the local alice's rule: %d", tt.claim, code)
			}
			if string(cl.Get("/matcher").Body) == "matched test:alice" {
				t.Errorf("preferred_username %q is test:alice to the session matcher", tt.claim)
			}
		})
	}
}

// TestAttackNamesFallbackNamesake: a user whose preferred_username is
// unusable is refused (she used to be named by her verified email, and
// another user of the same provider who picked that email as
// preferred_username became the same user, saw her sessions and signed
// her out); a user the provider sends no preferred_username for is named
// by her verified email, and no other user can pick that name.
func TestAttackNamesFallbackNamesake(t *testing.T) {
	c, o, _ := startAttackNamesSite(t)
	// alice's username is one the names rules refuse (usual for
	// providers that name users by a path, e.g. DOMAIN\user or
	// org/user): she is refused, not named by something else.
	victim, r := loginAs(t, c, o, "alice", func(claims map[string]any) { claims["preferred_username"] = `CORP\alice` })
	if r.StatusCode != http.StatusForbidden || signedIn(t, victim) {
		t.Errorf("alice with an unusable preferred_username: %d %s; want 403, not signed in", r.StatusCode, r.Body)
	}

	// The provider sends alice no preferred_username (null): she is
	// named by her verified email.
	victim, r = loginAs(t, c, o, "alice", func(claims map[string]any) { claims["preferred_username"] = nil })
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("alice without preferred_username: %d %s", r.StatusCode, r.Body)
	}
	if u := first(who(t, victim)); u != "idclaims:alice@example.com" {
		t.Errorf("alice without preferred_username is %q; want idclaims:alice@example.com", u)
	}
	// bob (another sub, another verified email) picks alice's email as
	// his username, which the provider does not forbid.
	attacker, r := loginAs(t, c, o, "bob", func(claims map[string]any) { claims["preferred_username"] = "alice@example.com" })
	if r.StatusCode == http.StatusSeeOther {
		if vu, au := first(who(t, victim)), first(who(t, attacker)); vu == au {
			t.Errorf("two users of one provider (subs alice and bob) are both %q at the upstream", vu)
		}
		if hs := ownSessions(t, attacker); len(hs) != 1 {
			t.Errorf("bob's sessions page lists %d sessions (alice's among them); want his 1", len(hs))
		}
		attacker.Post("/.session/sessions", "application/x-www-form-urlencoded", "others=1", "Origin: "+c.Site)
	}
	if !signedIn(t, victim) {
		t.Error("bob signed alice out from his sessions page")
	}
	// Whose preferred_username is his own verified email is named by it.
	own, r := loginAs(t, c, o, "bob", func(claims map[string]any) {
		claims["preferred_username"] = "BOB@example.com"
		claims["email"], claims["email_verified"] = "bob@example.com", true
	})
	if u := first(who(t, own)); r.StatusCode != http.StatusSeeOther || u != "idclaims:BOB@example.com" {
		t.Errorf("bob with his own email as preferred_username: %d, %q", r.StatusCode, u)
	}

	// The same through sub: mallory's email is not verified, so with no
	// username she used to be named by her sub (an opaque ID at most
	// providers, "mallory" at the test provider), which bob could pick.
	// sub is no fallback: she is refused.
	victim, r = loginAs(t, c, o, "mallory", func(claims map[string]any) { claims["preferred_username"] = nil })
	if r.StatusCode != http.StatusForbidden || signedIn(t, victim) {
		t.Errorf("mallory with no preferred_username nor verified email: %d %s; want 403, not signed in", r.StatusCode, r.Body)
	}
	victim, r = loginAs(t, c, o, "mallory", func(claims map[string]any) { claims["preferred_username"] = "a/b" })
	if r.StatusCode != http.StatusForbidden || signedIn(t, victim) {
		t.Errorf("mallory with an unusable preferred_username: %d %s; want 403, not signed in", r.StatusCode, r.Body)
	}
}

func first(a, _ string) string { return a }

// TestAttackNamesSourceHeader: no client spelling of X-Session-Source (or
// -User) reaches the upstream, in headers, in the Connection header's
// list (which would make the proxy drop the handler's own), or in
// trailers.
func TestAttackNamesSourceHeader(t *testing.T) {
	c, _, up := startAttackNamesSite(t)
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	cookie := "Cookie: " + cl.Jar.Cookies(mustURL(t, c.Site+"/"))[0].String()

	// Spellings Go's client will not send, as raw lines.
	r := rawGet(t, c.Site, "/x", cookie,
		"X_Session_Source: upstream", "x-session-source: oidc:test", "X-SESSION-SOURCE: oidc:test", "X-Session_User: test:alice")
	e := r.Echo(t)
	if got := e.Headers["X-Session-Source"]; len(got) != 1 || got[0] != "password" {
		t.Errorf("X-Session-Source at the upstream: %q; want [password]", got)
	}
	for name := range e.Headers {
		if n := strings.ToLower(name); strings.Contains(n, "session_") {
			t.Errorf("the upstream got %s: %q", name, e.Headers[name])
		}
	}

	// Connection: the handler's trusted headers are not hop-by-hop.
	e = rawGet(t, c.Site, "/x", cookie, "Connection: X-Session-Source, X-Session-User, X-Session-Groups").Echo(t)
	if got := e.Headers["X-Session-User"]; len(got) != 1 || got[0] != "alice" {
		t.Errorf("with Connection naming it, X-Session-User at the upstream: %q; want [alice]", got)
	}
	if got := e.Headers["X-Session-Source"]; len(got) != 1 || got[0] != "password" {
		t.Errorf("with Connection naming it, X-Session-Source at the upstream: %q; want [password]", got)
	}

	// Trailers: an upstream that reads them (Go's r.Trailer) must find
	// no X-Session-* there.
	got := make(chan http.Header, 1)
	up.Hooks["/trailer"] = func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 512)
		for {
			if _, err := r.Body.Read(buf); err != nil {
				break
			}
		}
		got <- r.Trailer.Clone()
		w.WriteHeader(204)
	}
	host := strings.TrimPrefix(c.Site, "http://")
	rawRequest(t, c.Site, "POST /trailer HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n"+cookie+"\r\n"+
		"Transfer-Encoding: chunked\r\nTrailer: X-Session-Source, X-Session-User\r\n\r\n"+
		"2\r\nhi\r\n0\r\nX-Session-Source: oidc:test\r\nX-Session-User: test:alice\r\n\r\n")
	select {
	case tr := <-got:
		for name, v := range tr {
			if strings.HasPrefix(strings.ToLower(name), "x-session") {
				t.Errorf("the upstream got the trailer %s: %q", name, v)
			}
		}
	default:
		t.Error("the chunked POST did not reach the upstream")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Echo of a raw response.
func (r *RawResponse) Echo(t testing.TB) Echo {
	t.Helper()
	return (&Response{Response: r.Response, Body: r.Body}).Echo(t)
}

// TestAttackNamesConfig: names in the Caddyfile that would collide or be
// cleaned away are config errors: a provider called with ':' (its users
// would read as another provider's), '.' or '..' (its callback path
// /oidc/../callback is cleaned away, and its users are "..:alice"); rules
// and the matcher that name no possible user.
func TestAttackNamesConfig(t *testing.T) {
	c, _, _ := startAttackNamesSite(t)
	for _, tt := range []struct{ what, from, to string }{
		{"provider a:b", "oidc test {", "oidc a:b {"},
		{"provider ..", "oidc test {", "oidc .. {"},
		{"provider .", "oidc test {", "oidc . {"},
		{"provider with %", "oidc test {", "oidc te%74 {"},
		{"rule on test:..", "allow user test:alice {", "allow user test:.. {"},
		{"rule on :alice", "allow user test:alice {", "allow user :alice {"},
		{"rule on test:", "allow user test:alice {", "allow user test: {"},
		{"rule on a/b:alice", "allow user test:alice {", "allow user a/b:alice {"},
		{"matcher on test:a/b", "session user test:alice", "session user test:a/b"},
		{"local user test:alice", "user alice [[.Extra.alice]]", "user test:alice [[.Extra.alice]]"},
		{"names other", "[[.Extra.testnames]]", "names Local"},
		{"allow_domains with a trailing dot", "[[.Extra.testnames]]", "allow_domains example.com."},
		{"allow_domains in Unicode", "[[.Extra.testnames]]", "allow_domains bücher.example"},
		{"allow_domains with a look-alike", "[[.Extra.testnames]]", "allow_domains ex\u0430mple.com"},
		{"allow_domains with @", "[[.Extra.testnames]]", "allow_domains a@example.com"},
		{"allow_emails without a domain", "[[.Extra.testnames]]", "allow_emails alice@"},
	} {
		if _, err := c.TryReload(strings.Replace(namesTemplate, tt.from, tt.to, 1)); err == nil {
			t.Errorf("%s: the config loads", tt.what)
		}
	}
}

// Users of the Hydra login app for TestAttackHydraFallbackNamesake:
// carol's username is one the names rules refuse (a DOMAIN\user name);
// erin has no username (named by her verified email); dave picks
// carol's, then erin's email as his.
func init() {
	hydraUsers["u-2001"] = hydraUser{"carol-pw", map[string]any{"preferred_username": `CORP\carol`,
		"email": "carol@example.com", "email_verified": true}}
	hydraUsers["u-2002"] = hydraUser{"dave-pw", map[string]any{"preferred_username": "carol@example.com",
		"email": "dave@example.com", "email_verified": true}}
	hydraUsers["u-2003"] = hydraUser{"erin-pw", map[string]any{"email": "erin@example.com", "email_verified": true}}
	hydraUsers["u-2004"] = hydraUser{"dave-pw", map[string]any{"preferred_username": "erin@example.com",
		"email": "dave@example.com", "email_verified": true}}
}

// TestAttackHydraFallbackNamesake: TestAttackNamesFallbackNamesake
// against Ory Hydra (subjects u-2001 to u-2004): two subjects of one
// provider must not be one user. carol (unusable username) is refused;
// erin (no username) is hydra:erin@example.com; dave, who picks her
// email as username, is refused.
func TestAttackHydraFallbackNamesake(t *testing.T) {
	s := startHydraSites(t)
	carol, erin := s.newBrowser(t), s.newBrowser(t)
	if r := s.hydraCallback(t, carol.a, `CORP\carol`, "carol-pw"); r.StatusCode != http.StatusForbidden || signedIn(t, carol.a) {
		t.Errorf("carol (preferred_username CORP\\carol): %d; want 403, not signed in", r.StatusCode)
	}
	if r := s.hydraCallback(t, erin.a, "erin@example.com", "erin-pw"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("erin (no preferred_username): %d %s", r.StatusCode, r.Body)
	}
	if u := first(who(t, erin.a)); u != "hydra:erin@example.com" {
		t.Errorf("erin (no preferred_username) is %q; want hydra:erin@example.com", u)
	}
	for _, name := range []string{"carol@example.com", "erin@example.com"} {
		dave := s.newBrowser(t)
		r := s.hydraCallback(t, dave.a, name, "dave-pw")
		if r.StatusCode == http.StatusSeeOther {
			if du := first(who(t, dave.a)); du == first(who(t, erin.a)) {
				t.Errorf("Hydra's subjects u-2003 and u-2004 are both %q at the upstream", du)
			}
		} else if r.StatusCode != http.StatusForbidden {
			t.Errorf("dave as %s: %d %s", name, r.StatusCode, r.Body)
		}
	}
	if hs := ownSessions(t, erin.a); len(hs) != 1 {
		t.Errorf("erin's sessions page lists %d sessions; want her 1", len(hs))
	}
}

// TestAttackNamesProviderGroups: qualified names keep a provider's alice
// from being the local alice, and the provider's groups from being local
// groups: a provider whose users can make or join groups (GitLab's
// groups claim lists groups the user created) must not pass `allow group
// ops`. The provider says alice is in ops (the test provider's groups
// claim): with names qualified (the default) she is in test:ops.
func TestAttackNamesProviderGroups(t *testing.T) {
	c, _, _ := startAttackNamesSite(t)
	c.Reload(strings.Replace(namesTemplate, "allow user alice {", "allow group ops {\n\t\t\tpath /ops/*\n\t\t}\n\t\tallow group test:ops {\n\t\t\tpath /corp-ops/*\n\t\t}\n\t\tallow user alice {", 1))
	corp := NewClient(t, c.Site)
	OIDCLogin(t, corp, "test", "alice", "alice-pw")
	g := corp.Get("/x").Echo(t).Headers["X-Session-Groups"]
	if len(g) != 1 || slices.Contains(strings.Split(g[0], ", "), "ops") || !slices.Contains(strings.Split(g[0], ", "), "test:ops") {
		t.Errorf("test:alice reaches the upstream with X-Session-Groups %q; want test:ops, not the local group ops", g)
	}
	if code := corp.Get("/ops/x").StatusCode; code != http.StatusForbidden {
		t.Errorf("test:alice passes `allow group ops` on the provider's say-so: %d", code)
	}
	if code := corp.Get("/corp-ops/x").StatusCode; code != http.StatusOK {
		t.Errorf("test:alice does not pass `allow group test:ops`: %d", code)
	}
}
