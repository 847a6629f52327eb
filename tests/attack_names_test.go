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

// TestAttackNamesAdminAPI: the admin API for qualified names and their
// encodings, and revoke-all through every path, method and browser
// request an attacker could make: only the confirmed POST from a
// non-browser revokes anything.
func TestAttackNamesAdminAPI(t *testing.T) {
	c, _, _ := startAttackNamesSite(t)
	local, corp := NewClient(t, c.Site), NewClient(t, c.Site)
	local.MustLogin("alice", alicePassword)
	OIDCLogin(t, corp, "test", "alice", "alice-pw")

	for _, p := range []string{"test:alice", "test%3Aalice", "test%3aalice", "%74est:alice"} {
		if ss := adminList(t, c, p); len(ss) != 1 || ss[0].Source != "oidc:test" {
			t.Errorf("GET /session/users/%s: %+v; want test:alice's one session", p, ss)
		}
	}
	if ss := adminList(t, c, "alice"); len(ss) != 1 || ss[0].Source != "password" {
		t.Errorf("GET /session/users/alice: %+v", ss)
	}

	for _, tt := range []struct{ method, path, body string }{
		{"DELETE", "/session/users/test%3A..", ""},
		{"DELETE", "/session/users/test:..%2F", ""},
		{"DELETE", "/session/users/..%2Ftest:alice", ""},
		{"DELETE", "/session/users/test%253Aalice", ""},
		{"DELETE", "/session/users/test:alice%00", ""},
		{"DELETE", "/session/users/:alice", ""},
		{"DELETE", "/session/users/test:", ""},
		{"DELETE", "/session/users/test:alice/revoke-all", ""},
		{"GET", "/session/revoke-all", ""},
		{"DELETE", "/session/revoke-all", ""},
		{"PUT", "/session/revoke-all", `{"confirm":"every session"}`},
		{"POST", "/session/revoke-all", ""},
		{"POST", "/session/revoke-all", `{"confirm":"every session "}`},
		{"POST", "/session/revoke-all", `{"confirm":"Every Session"}`},
		{"POST", "/session/revoke-all", `{"Confirm":"every  session"}`},
		{"POST", "/session/revoke-all", `["every session"]`},
		{"POST", "/session/revoke-all/", `{"confirm":"every session"}`},
		{"POST", "/session/revoke%2Dall", `{"confirm":"every session"}`},
		{"POST", "/session/REVOKE-ALL", `{"confirm":"every session"}`},
		{"POST", "/session/users/x/..%2F..%2Frevoke-all", `{"confirm":"every session"}`},
		{"POST", "/session/users/%2E%2E/revoke-all", `{"confirm":"every session"}`},
		{"POST", "/session/all", `{"confirm":"every session"}`},
	} {
		if code, body := c.Admin(tt.method, tt.path, tt.body); code/100 == 2 {
			t.Errorf("%s %s %s: %d %s; want a refusal", tt.method, tt.path, tt.body, code, body)
		}
	}
	// One user's handle under another's name revokes nothing.
	lh, ch := adminList(t, c, "alice")[0].Handle, adminList(t, c, "test:alice")[0].Handle
	for _, p := range []string{"/session/users/test:alice/" + lh, "/session/users/alice/" + ch, "/session/users/test%3Aalice/" + lh} {
		if code, body := c.Admin("DELETE", p); code != http.StatusNotFound {
			t.Errorf("DELETE %s (the other alice's handle): %d %s; want 404", p, code, body)
		}
	}
	if !signedIn(t, local) || !signedIn(t, corp) {
		t.Fatal("a handle under the other alice's name revoked her session")
	}
	// A user may be called revoke-all: asking about her is asking about
	// her alone.
	if code, body := c.Admin("DELETE", "/session/users/revoke-all"); code != 200 || !strings.Contains(string(body), `"revoked":0`) {
		t.Errorf("DELETE /session/users/revoke-all: %d %s; want 200, none revoked", code, body)
	}
	// Dot segments go through Caddy's admin mux as sent.
	admin := "http://127.0.0.1:" + strconv.Itoa(c.AdminPort)
	for _, target := range []string{"/session/./revoke-all", "/session/users/../revoke-all", "/session//revoke-all", "/session/users/a/../../revoke-all"} {
		body := `{"confirm":"every session"}`
		r := rawRequest(t, admin, "POST "+target+" HTTP/1.1\r\nHost: 127.0.0.1:"+strconv.Itoa(c.AdminPort)+"\r\nConnection: close\r\n"+
			"Content-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		if r.StatusCode/100 == 2 {
			t.Errorf("POST %s: %d %s; want no revocation", target, r.StatusCode, r.Body)
		}
	}
	// A web page the admin visits: a cross-site form POST (text/plain
	// encoding makes the body JSON-like) or a no-cors fetch.
	formBody := `{"confirm":"every session","x":"="}` + "\r\n"
	for _, hs := range [][]string{
		{"Origin: http://evil.example", "Content-Type: text/plain"},
		{"Origin: null", "Content-Type: text/plain"},
		{"Origin: http://evil.example", "Sec-Fetch-Mode: no-cors", "Content-Type: text/plain"},
		{"Sec-Fetch-Mode: navigate", "Sec-Fetch-Site: cross-site", "Content-Type: text/plain"},
	} {
		req := "POST /session/revoke-all HTTP/1.1\r\nHost: 127.0.0.1:" + strconv.Itoa(c.AdminPort) + "\r\nConnection: close\r\n" +
			strings.Join(hs, "\r\n") + "\r\nContent-Length: " + strconv.Itoa(len(formBody)) + "\r\n\r\n" + formBody
		if r := rawRequest(t, admin, req); r.StatusCode/100 == 2 {
			t.Errorf("a browser's cross-site POST (%s): %d %s; want a refusal", strings.Join(hs, "; "), r.StatusCode, r.Body)
		}
	}
	if !signedIn(t, local) || !signedIn(t, corp) {
		t.Fatal("a refused request revoked sessions")
	}

	// caddy session: revoke-all without --yes refuses; qualified names
	// are listed as the API has them.
	addr := "127.0.0.1:" + strconv.Itoa(c.AdminPort)
	if out, err := sessionCmd(t, "revoke-all", "--address", addr); err == nil {
		t.Errorf("caddy session revoke-all without --yes: %s", out)
	}
	for _, bad := range []string{"test:..", "test:a/b", ":alice", "test%3Aalice", "../session/revoke-all"} {
		if out, err := sessionCmd(t, "revoke", bad, "--address", addr); err == nil {
			t.Errorf("caddy session revoke %s: %s", bad, out)
		}
	}
	if !signedIn(t, local) || !signedIn(t, corp) {
		t.Fatal("a refused caddy session command revoked sessions")
	}
	if out, err := sessionCmd(t, "list", "test:alice", "--address", addr); err != nil || !strings.Contains(out, "oidc:test") {
		t.Errorf("caddy session list test:alice: %v\n%s", err, out)
	}
	// What a client writes in its User-Agent reaches the admin's
	// terminal through caddy session list: no escape sequence (C1 CSI;
	// Go's server refuses C0 ESC in a header) nor bidi override may.
	body := `{"username":"alice","password":"` + alicePassword + `"}`
	ua := "User-Agent: Mozilla \u009b2J\u009b31m red \u202Eevil"
	r := rawRequest(t, c.Site, "POST /.session/login HTTP/1.1\r\nHost: "+strings.TrimPrefix(c.Site, "http://")+"\r\nConnection: close\r\n"+ua+
		"\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	if r.StatusCode != 200 {
		t.Fatalf("login with a User-Agent of C1 and bidi characters: %d %s", r.StatusCode, r.Body)
	}
	out, err := sessionCmd(t, "list", "alice", "--address", addr)
	if err != nil || !strings.Contains(out, "Mozilla") {
		t.Errorf("caddy session list alice: %v\n%s", err, out)
	}
	if strings.ContainsAny(out, "\u009b\u202E") {
		t.Errorf("caddy session list prints the client's C1 or bidi characters: %q", out)
	}
	// The upstream cannot log in a provider's user, nor a look-alike of
	// one that reads as qualified.
	for _, name := range []string{"test:alice", "TEST:alice", " test:alice", "test:alice "} {
		local.Get("/x?h=" + url.QueryEscape("X-Session-Login:"+name)).Echo(t)
		if u, s := who(t, local); u != "alice" || s != "password" {
			t.Errorf("the upstream logged in %q: now %q from %q", name, u, s)
		}
	}
}

// TestAttackOIDCStateGames: a callback with another browser's state, a
// state cookie tossed at / by a sibling app, a redirect cut to a
// dangerous prefix, a Host header in redirect_uri.
func TestAttackOIDCStateGames(t *testing.T) {
	c, _, _ := startAttackNamesSite(t)

	t.Run("another browser's state", func(t *testing.T) {
		attacker, victim := NewClient(t, c.Site), NewClient(t, c.Site)
		victim.Get("/.session/login?provider=test", "Accept: text/html") // a login of her own in progress
		cb := StartOIDCLogin(t, attacker, "test", "", "bob", "bob-pw")
		if r := FinishOIDCLogin(t, victim, cb); r.StatusCode/100 != 4 {
			t.Errorf("the attacker's callback in the victim's browser: %d; want a 4xx", r.StatusCode)
		}
		if signedIn(t, victim) {
			t.Error("the victim is signed in as the attacker (login CSRF)")
		}
		// Nor does it switch a signed-in victim's account.
		signedInVictim := NewClient(t, c.Site)
		signedInVictim.MustLogin("alice", alicePassword)
		FinishOIDCLogin(t, signedInVictim, cb)
		if u, s := who(t, signedInVictim); u != "alice" || s != "password" {
			t.Errorf("the attacker's callback made the signed-in victim %q from %q", u, s)
		}
		// The attacker's own browser can still finish: the victim's visit
		// did not spend it, but then it is used once.
		if r := FinishOIDCLogin(t, attacker, cb); r.StatusCode != http.StatusSeeOther {
			t.Errorf("the attacker's own callback: %d", r.StatusCode)
		}
		if r := FinishOIDCLogin(t, attacker, cb); r.StatusCode/100 != 4 {
			t.Errorf("the same callback twice: %d; want a 4xx", r.StatusCode)
		}
	})

	t.Run("tossed junk state cookies", func(t *testing.T) {
		cl := NewClient(t, c.Site)
		// A sibling app on the host sets cookies named like state
		// cookies at / (they cannot be expired at <prefix>/), more than
		// the bound.
		root := mustURL(t, c.Site+"/")
		var tossed []*http.Cookie
		for i := range 6 {
			tossed = append(tossed, &http.Cookie{Name: "caddy_session_oidc_" + strings.Repeat(strconv.Itoa(i), 12), Value: "junk", Path: "/"})
		}
		cl.Jar.SetCookies(root, tossed)
		r := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "/after", "alice", "alice-pw"))
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/after" {
			t.Errorf("a login past tossed state cookies: %d to %q", r.StatusCode, r.Header.Get("Location"))
		}
	})

	t.Run("redirects cut to a prefix", func(t *testing.T) {
		long := strings.Repeat("a", 1100)
		for _, redirect := range []string{
			"/" + long + "//evil.example",
			"/" + strings.Repeat("a", 1000) + "?" + long + "//evil.example",
			"/%2F%2Fevil.example?" + long,
			"/%5Cevil.example?" + long,
			"/%09/evil.example?" + long,
			"/.." + "?" + long,
			"/" + strings.Repeat("a", 1022) + "/" + "/evil.example",
			"/" + strings.Repeat("/", 1020) + "evil.example?x=" + long,
		} {
			cl := NewClient(t, c.Site)
			r := cl.Get("/.session/login?provider=test&redirect="+url.QueryEscape(redirect), "Accept: text/html")
			if r.StatusCode != http.StatusFound {
				continue // refused at the start: nothing to land on
			}
			cl2 := NewClient(t, c.Site)
			r = FinishOIDCLogin(t, cl2, StartOIDCLogin(t, cl2, "test", redirect, "alice", "alice-pw"))
			loc := r.Header.Get("Location")
			to := mustURL(t, c.Site+"/x").ResolveReference(mustURL(t, loc))
			if r.StatusCode != http.StatusSeeOther || to.Host != mustURL(t, c.Site).Host || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`) {
				t.Errorf("redirect %q… lands on %q (%d), host %q", redirect[:40], shortenT(loc, 80), r.StatusCode, to.Host)
			}
		}
	})
}

func shortenT(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// TestAttackOIDCHostInRedirectURI: on a site that answers any Host, a
// login started with a forged Host sends the provider a redirect_uri at
// that host; the provider must refuse it, and the start must not be
// cached for others.
func TestAttackOIDCHostInRedirectURI(t *testing.T) {
	o := StartOP(t, 0)
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, anyHostTemplate, WithExtra("issuer", o.Issuer), WithExtra("secret", opSecret))
	cl := NewClient(t, c.Site)
	req := cl.NewRequest("GET", "/.session/login?provider=test", nil, "Accept: text/html")
	req.Host = "evil.example"
	r := cl.Do(req)
	if r.StatusCode != http.StatusFound {
		t.Fatalf("start: %d %s", r.StatusCode, r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") && !strings.Contains(cc, "private") {
		t.Errorf("the login start with a Host of the client's choosing is cacheable: Cache-Control %q", cc)
	}
	resp, err := cl.Client.Get(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); loc != nil && loc.Host == "evil.example" {
		t.Errorf("the provider sends the browser to %s", loc)
	}
}

// TestAttackOIDCAllowLists: allow_domains example.com; mallory's email is
// set by the provider (verified) to look-alikes of an example.com
// address. Only exact, ASCII-case-insensitive, verified matches pass.
func TestAttackOIDCAllowLists(t *testing.T) {
	c, o, _ := startOIDCSite(t)
	login := func(t *testing.T, change func(claims map[string]any)) int {
		t.Helper()
		o.TamperUserinfo(t, change)
		cl := NewClient(t, c.Site)
		return FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "", "mallory", "mallory-pw")).StatusCode
	}
	for _, tt := range []struct {
		email string
		want  int
	}{
		{"mallory@example.com", http.StatusSeeOther},
		{"mallory@EXAMPLE.com", http.StatusSeeOther},
		{"mallory@example.com.", http.StatusForbidden},
		{"mallory@sub.example.com", http.StatusForbidden},
		{"mallory@evilexample.com", http.StatusForbidden},
		{"mallory@ex\u0430mple.com", http.StatusForbidden},         // Cyrillic а
		{"mallory@\uFF45xample.com", http.StatusForbidden},         // fullwidth e
		{"mallory@example.com\u0000", http.StatusForbidden},        // NUL
		{"mallory@example.com ", http.StatusForbidden},             // space
		{"mallory@evil.example@example.com", http.StatusForbidden}, // not one address
		{"mallory@example.com@evil.example", http.StatusForbidden},
		{"@example.com", http.StatusForbidden},
	} {
		t.Run(tt.email, func(t *testing.T) {
			if got := login(t, func(claims map[string]any) { claims["email"] = tt.email; claims["email_verified"] = true }); got != tt.want {
				t.Errorf("verified email %q against allow_domains example.com: %d; want %d", tt.email, got, tt.want)
			}
		})
	}
	for _, v := range []any{"TRUE", " true", "true ", "yes", 1, 1.0, map[string]any{"value": true}} {
		t.Run("email_verified "+strings.TrimSpace(strings.ReplaceAll(strconv.Quote(strings.TrimSpace(toString(v))), `"`, "'")), func(t *testing.T) {
			if got := login(t, func(claims map[string]any) { claims["email_verified"] = v }); got != http.StatusForbidden {
				t.Errorf("email_verified %#v: %d; want 403", v, got)
			}
		})
	}
	// Userinfo fetched by us: its sub must be the ID token's.
	t.Run("userinfo for another sub", func(t *testing.T) {
		o.TamperUserinfo(t, func(claims map[string]any) { claims["sub"] = "alice"; claims["email_verified"] = true })
		cl := NewClient(t, c.Site)
		cl.Allow5xx = true // a provider's answer that does not verify is a 502
		r := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "", "mallory", "mallory-pw"))
		if r.StatusCode != http.StatusBadGateway || !strings.Contains(string(r.Body), "could not be verified") {
			t.Errorf("userinfo naming another sub: %d; want 502, not verified", r.StatusCode)
		}
		if status, u := cl.Whoami(); status == http.StatusOK {
			t.Errorf("userinfo naming another sub was taken: signed in as %q", u)
		}
	})
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return "object"
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

// TestAttackOIDCAllowEmailsUnicode: allow_emails compares exactly but for
// ASCII case: an upper-case non-ASCII letter, or the Unicode form of an
// IDN listed in its xn-- form, is another address (refused), never a
// look-alike that passes.
func TestAttackOIDCAllowEmailsUnicode(t *testing.T) {
	c, o, _ := startOIDCSite(t, WithExtra("testopts", "allow_emails åsa@other.example a@xn--bcher-kva.example"))
	for _, tt := range []struct {
		email string
		want  int
	}{
		{"åsa@other.example", http.StatusSeeOther},
		{"åsa@OTHER.example", http.StatusSeeOther},
		{"ÅSA@other.example", http.StatusForbidden},
		{"a\u030asa@other.example", http.StatusForbidden}, // å decomposed
		{"a@xn--bcher-kva.example", http.StatusSeeOther},
		{"a@XN--BCHER-KVA.example", http.StatusSeeOther},
		{"a@bücher.example", http.StatusForbidden},
		{"a@xn--bcher-kva.example.", http.StatusForbidden},
	} {
		t.Run(tt.email, func(t *testing.T) {
			o.TamperUserinfo(t, func(claims map[string]any) { claims["email"] = tt.email; claims["email_verified"] = true })
			cl := NewClient(t, c.Site)
			if got := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "", "mallory", "mallory-pw")).StatusCode; got != tt.want {
				t.Errorf("verified email %q against allow_emails åsa@other.example a@xn--bcher-kva.example: %d; want %d", tt.email, got, tt.want)
			}
		})
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
