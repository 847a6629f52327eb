// OIDC tests of what the provider says: ID token checks, the provider down, sessions following it.

package tests

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOIDCIDTokenChecks: ID tokens that a provider or an attacker could
// hand over, re-signed with the provider's own key unless said otherwise,
// never make a session.
func TestOIDCIDTokenChecks(t *testing.T) {
	c, o, _ := startOIDCSite(t)
	now := time.Now()
	tests := []struct {
		name   string
		key    bool // sign with a key the provider never published
		change func(map[string]any)
		ok     bool
		log    string
	}{
		{"untouched, re-signed", false, func(map[string]any) {}, true, ""},
		{"bad signature", true, func(map[string]any) {}, false, "signature"},
		{"another audience", false, func(c map[string]any) { c["aud"] = []string{opOtherClient} }, false, "audience"},
		{"another issuer", false, func(c map[string]any) { c["iss"] = "http://127.0.0.1:1" }, false, "issued by a different provider"},
		{"expired", false, func(c map[string]any) {
			c["exp"] = now.Add(-time.Hour).Unix()
			c["iat"] = now.Add(-2 * time.Hour).Unix()
		}, false, "expired"},
		{"wrong nonce", false, func(c map[string]any) { c["nonce"] = "not-the-nonce" }, false, "nonce"},
		{"no nonce", false, func(c map[string]any) { delete(c, "nonce") }, false, "nonce"},
		{"several audiences, no azp", false, func(c map[string]any) { c["aud"] = []string{opClient, opOtherClient}; delete(c, "azp") }, false, "azp"},
		{"azp another client", false, func(c map[string]any) { c["aud"] = []string{opClient, opOtherClient}; c["azp"] = opOtherClient }, false, "azp"},
		{"several audiences, azp this client", false, func(c map[string]any) { c["aud"] = []string{opClient, opOtherClient}; c["azp"] = opClient }, true, ""},
		{"at_hash of another token", false, func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }, false, "access token hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o.Tamper(t, func(t testing.TB, idToken string) string {
				var key = otherKey()
				if !tt.key {
					key = nil
				}
				return o.Resign(t, idToken, key, tt.change)
			})
			cl := NewClient(t, c.Site)
			cl.Allow5xx = true
			logged := len(c.Logs())
			r := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "", "alice", "alice-pw"))
			status, _ := cl.Whoami()
			if tt.ok {
				if r.StatusCode != http.StatusSeeOther || status != http.StatusOK {
					t.Fatalf("refused: %d %s", r.StatusCode, r.Body)
				}
				return
			}
			if r.StatusCode != http.StatusBadGateway || status != http.StatusUnauthorized {
				t.Fatalf("accepted or wrong answer: %d %s, whoami %d", r.StatusCode, r.Body, status)
			}
			if logs := c.Logs()[logged:]; !strings.Contains(logs, "oidc id token refused") || !strings.Contains(logs, tt.log) {
				t.Errorf("the log does not say %q:\n%s", tt.log, logs)
			}
		})
	}
}

// TestOIDCProviderDown: a provider that is down when Caddy starts does not
// stop Caddy; a login meanwhile gets a 503 page; once it is up, logins
// work without a reload.
func TestOIDCProviderDown(t *testing.T) {
	port := freePort(t)
	site := "http://127.0.0.1:" + strconv.Itoa(port)
	opPort := freePort(t)
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, oidcTemplate, WithSitePort(port),
		WithExtra("issuer", "http://127.0.0.1:"+strconv.Itoa(opPort)), WithExtra("secret", opSecret), WithExtra("users", ""),
		WithExtra("store", "store memory"), WithExtra("testopts", ""))
	cl := NewClient(t, c.Site)
	cl.Allow5xx = true
	r := cl.Get("/.session/login?provider=test", "Accept: text/html")
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "cannot be reached") {
		t.Fatalf("provider down: %d %s", r.StatusCode, r.Body)
	}
	if !strings.Contains(c.Logs(), "oidc discovery failed") {
		t.Error("discovery failure not logged")
	}
	StartOP(t, opPort, site)
	waitFor(t, 20*time.Second, "a login once the provider is up", func() bool {
		return cl.Get("/.session/login?provider=test", "Accept: text/html").StatusCode == http.StatusFound
	})
	OIDCLogin(t, NewClient(t, c.Site), "test", "alice", "alice-pw")
}

// TestOIDCSessionsFollowTheProvider: a provider re-pointed to another
// client no longer accepts the sessions it issued.
func TestOIDCSessionsFollowTheProvider(t *testing.T) {
	c, _, _ := startOIDCSite(t)
	cl := NewClient(t, c.Site)
	OIDCLogin(t, cl, "test", "alice", "alice-pw")
	if status, _ := cl.Whoami(); status != http.StatusOK {
		t.Fatal("no session")
	}
	c.Reload(strings.Replace(oidcTemplate, "client_id edge\n", "client_id other\n", 1))
	if status, _ := cl.Whoami(); status != http.StatusUnauthorized {
		t.Errorf("session of the old client still accepted: %d", status)
	}
}
