package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestOIDCProviderLogout: with provider_logout on, a logout ends the
// session here, then at the provider (RP-initiated logout, with the ID
// token as id_token_hint), which sends the browser back to the site.
func TestOIDCProviderLogout(t *testing.T) {
	c, o, _ := startOIDCSite(t, WithExtra("testopts", "provider_logout on"))
	cl := NewClient(t, c.Site)
	OIDCLogin(t, cl, "test", "alice", "alice-pw")

	// The logout page may post to a form whose answer redirects to the
	// provider.
	page := cl.Get("/.session/logout", "Accept: text/html")
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+o.Issuer) {
		t.Errorf("logout page CSP %q does not let the logout go to the provider", csp)
	}
	r := cl.Post("/.session/logout", "application/x-www-form-urlencoded", "", "Accept: text/html")
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
	}
	end, err := url.Parse(r.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(end.String(), o.Issuer+"/end_session?") {
		t.Fatalf("logout went to %q, want the provider's end_session", r.Header.Get("Location"))
	}
	q := end.Query()
	if q.Get("id_token_hint") == "" || q.Get("client_id") != opClient || q.Get("post_logout_redirect_uri") != c.Site+"/" {
		t.Errorf("end_session query %v", q)
	}
	if status, _ := cl.Whoami(); status != http.StatusUnauthorized {
		t.Errorf("session left after logout: %d", status)
	}
	// The provider accepts the hint and sends the browser back.
	resp, err := cl.Client.Get(end.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != c.Site+"/" {
		t.Errorf("provider's logout: %d to %q, want a redirect to %s/", resp.StatusCode, resp.Header.Get("Location"), c.Site)
	}
	// The hint cookie went with the session.
	u, _ := url.Parse(c.Site + "/.session/logout")
	for _, ck := range cl.Jar.Cookies(u) {
		if strings.HasSuffix(ck.Name, "_oidc_logout") {
			t.Errorf("hint cookie %s left after logout", ck.Name)
		}
	}

	// Without provider_logout, a logout stays here.
	other := NewClient(t, c.Site)
	OIDCLogin(t, other, "idclaims", "bob", "bob-pw")
	r = other.Post("/.session/logout", "application/x-www-form-urlencoded", "redirect=/bye", "Accept: text/html")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/bye" {
		t.Errorf("logout of a provider without provider_logout: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
}

// logoutClaims is a valid logout token's claims for the test provider.
func logoutClaims(o *OP, sub, sid string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": o.Issuer, "aud": opClient, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti":    "jti-" + sub + sid + now.Format(time.RFC3339Nano),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

func postLogoutToken(t *testing.T, c *Caddy, token string) *Response {
	t.Helper()
	cl := NewClient(t, c.Site)
	cl.Allow5xx = true
	return cl.Post("/.session/oidc/test/backchannel-logout", "application/x-www-form-urlencoded", url.Values{"logout_token": {token}}.Encode())
}

// TestOIDCBackchannelLogout: the provider ends sessions here with a logout
// token: every session of a sub, or the one of a sid. Tokens that do not
// verify end nothing.
func TestOIDCBackchannelLogout(t *testing.T) {
	forEachStore(t, testBackchannelLogout)
}

func testBackchannelLogout(t *testing.T, store string) {
	c, o, _ := startOIDCSite(t, WithExtra("store", "store "+store))
	alive := func(cl *Client) bool { status, _ := cl.Whoami(); return status == http.StatusOK }

	// alice in two browsers, carol in a third.
	a1, a2, carol := NewClient(t, c.Site), NewClient(t, c.Site), NewClient(t, c.Site)
	OIDCLogin(t, a1, "test", "alice", "alice-pw")
	OIDCLogin(t, a2, "test", "alice", "alice-pw")
	OIDCLogin(t, carol, "test", "carol", "carol-pw")

	for _, tt := range []struct {
		name   string
		change func(map[string]any)
		other  bool // signed with a key the provider never published
	}{
		{"bad signature", func(map[string]any) {}, true},
		{"another audience", func(c map[string]any) { c["aud"] = opOtherClient }, false},
		{"another issuer", func(c map[string]any) { c["iss"] = "http://127.0.0.1:1" }, false},
		{"expired", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, false},
		{"a nonce (an ID token is no logout token)", func(c map[string]any) { c["nonce"] = "n" }, false},
		{"no events", func(c map[string]any) { delete(c, "events") }, false},
		{"neither sub nor sid", func(c map[string]any) { delete(c, "sub") }, false},
	} {
		claims := logoutClaims(o, "alice", "")
		tt.change(claims)
		key := otherKey()
		if !tt.other {
			key = nil
		}
		if r := postLogoutToken(t, c, o.Sign(t, key, claims)); r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tt.name, r.StatusCode, r.Body)
		}
	}
	if !alive(a1) || !alive(a2) || !alive(carol) {
		t.Fatal("a logout token that does not verify ended a session")
	}
	if r := postLogoutToken(t, c, ""); r.StatusCode != http.StatusBadRequest {
		t.Errorf("no token: %d", r.StatusCode)
	}
	if r := NewClient(t, c.Site).Get("/.session/oidc/test/backchannel-logout"); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", r.StatusCode)
	}

	// By sub: both of alice's sessions, not carol's.
	if r := postLogoutToken(t, c, o.Sign(t, nil, logoutClaims(o, "alice", ""))); r.StatusCode != http.StatusOK {
		t.Fatalf("logout token: %d %s", r.StatusCode, r.Body)
	}
	if alive(a1) || alive(a2) {
		t.Error("alice still has a session after a back-channel logout by sub")
	}
	if !alive(carol) {
		t.Error("carol lost her session to alice's logout")
	}

	// By sid: the ID tokens of two logins carry sids (the example provider
	// sets none; they are added and re-signed with its key), and only the
	// session of the one named ends.
	s1, s2 := NewClient(t, c.Site), NewClient(t, c.Site)
	for _, l := range []struct {
		cl  *Client
		sid string
	}{{s1, "sid-1"}, {s2, "sid-2"}} {
		func() {
			o.mu.Lock()
			o.tamper = func(t testing.TB, idToken string) string {
				return o.Resign(t, idToken, nil, func(c map[string]any) { c["sid"] = l.sid })
			}
			o.mu.Unlock()
			defer func() { o.mu.Lock(); o.tamper = nil; o.mu.Unlock() }()
			OIDCLogin(t, l.cl, "test", "alice", "alice-pw")
		}()
	}
	if r := postLogoutToken(t, c, o.Sign(t, nil, logoutClaims(o, "", "sid-1"))); r.StatusCode != http.StatusOK {
		t.Fatalf("logout token by sid: %d %s", r.StatusCode, r.Body)
	}
	if alive(s1) {
		t.Error("the session of sid-1 is still there")
	}
	if !alive(s2) || !alive(carol) {
		t.Error("a logout by sid ended another session")
	}
	if !strings.Contains(c.Logs(), "oidc back-channel logout") || !strings.Contains(c.Logs(), "oidc logout token refused") {
		t.Error("back-channel logouts are not logged")
	}
}

// TestOIDCBackchannelLogoutCookieStore: the cookie store cannot find
// sessions to revoke, and says so: 501.
func TestOIDCBackchannelLogoutCookieStore(t *testing.T) {
	c, o, _ := startOIDCSite(t, WithExtra("store", "store cookie"))
	OIDCLogin(t, NewClient(t, c.Site), "test", "alice", "alice-pw")
	if r := postLogoutToken(t, c, o.Sign(t, nil, logoutClaims(o, "alice", ""))); r.StatusCode != http.StatusNotImplemented {
		t.Errorf("cookie store: %d %s, want 501", r.StatusCode, r.Body)
	}
}
