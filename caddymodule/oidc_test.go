package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestOIDCCaddyfile(t *testing.T) {
	t.Setenv("EDGESESSION_TEST_OIDC_SECRET", "s3cret")
	out, err := adapt(t, `oidc google {
		issuer https://accounts.google.com
		client_id 123.apps.googleusercontent.com
		client_secret {env.EDGESESSION_TEST_OIDC_SECRET}
		allow_domains example.com
		label "Sign in with Google"
	}
	oidc corp {
		issuer https://sso.example.com/realms/corp
		client_id app
		scopes openid email profile groups
		username_claim email
		groups_claim roles
		claims preferred_username roles
		allow_emails a@x.org b@y.org
		allow_groups staff admins
		redirect_url https://app.example.com/.session/oidc/corp/callback
		names local
	}`)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseAdapted(t, out)
	var h Handler
	found := false
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, r := range srv.Routes {
			for _, sub := range r.Handle {
				for _, sr := range sub.Routes {
					for _, raw := range sr.Handle {
						if strings.Contains(string(raw), `"handler":"session"`) {
							found = json.Unmarshal(raw, &h) == nil
						}
					}
				}
			}
		}
	}
	if !found {
		t.Fatalf("no session handler in %s", out)
	}
	if len(h.OIDC) != 2 {
		t.Fatalf("want 2 providers, got %+v", h.OIDC)
	}
	g, c := h.OIDC[0], h.OIDC[1]
	if g.Name != "google" || g.Issuer != "https://accounts.google.com" || g.ClientSecret != "{env.EDGESESSION_TEST_OIDC_SECRET}" || g.Label != "Sign in with Google" || g.AllowDomains[0] != "example.com" {
		t.Errorf("google: %+v", g)
	}
	if c.Names != "local" || g.Names != "" {
		t.Errorf("names: google %q, corp %q", g.Names, c.Names)
	}
	if c.UsernameClaim != "email" || c.GroupsClaim != "roles" || len(c.Scopes) != 4 || len(c.AllowEmails) != 2 || len(c.AllowGroups) != 2 || c.RedirectURL == "" {
		t.Errorf("corp: %+v", c)
	}
}

func TestOIDCCaddyfileErrorsNameTheLine(t *testing.T) {
	assertCaddyfileErrors(t, []caddyfileError{
		{"no name", "oidc {\nissuer https://a.example\n}", 3, "oidc needs a name"},
		{"bad name", "oidc go/ogle {\n}", 3, "oidc name"},
		{"twice", "oidc a {\nissuer https://a.example\nclient_id x\n}\noidc a {\n}", 7, "oidc a given twice"},
		{"option twice", "oidc a {\nissuer https://a.example\nissuer https://b.example\n}", 5, "issuer given twice"},
		{"unknown option", "oidc a {\nflavour x\n}", 4, `unknown option "flavour"`},
		{"bad issuer", "oidc a {\nissuer accounts.google.com\n}", 4, "issuer"},
		{"issuer with query", "oidc a {\nissuer https://a.example/?x=1\n}", 4, "no query"},
		{"missing client_id", "oidc a {\nissuer https://a.example\n}", 3, "issuer and client_id are required"},
		{"secret env without a name", "oidc a {\nclient_secret {env.}\n}", 4, "client_secret: {env.} does not name an environment variable"},
		{"bad domain", "oidc a {\nallow_domains @\n}", 4, "allow_domains"},
		{"Unicode domain", "oidc a {\nallow_domains \u212Aelvin.example\n}", 4, "xn--"},
		{"look-alike domain", "oidc a {\nallow_domains ex\u0430mple.com\n}", 4, "ASCII form"},
		{"bad email", "oidc a {\nallow_emails bob\n}", 4, "allow_emails"},
		{"bad group", "oidc a {\nallow_groups a,b\n}", 4, "comma"},
		{"bad claim", "oidc a {\nclaims https://x/y\n}", 4, "claim"},
		{"bad redirect_url", "oidc a {\nredirect_url /cb\n}", 4, "redirect_url"},
		{"empty scopes", "oidc a {\nscopes\n}", 4, "scopes needs at least one value"},
		{"label two values", "oidc a {\nlabel Sign in\n}", 4, "label needs exactly one value"},
		{"bad names", "oidc a {\nnames bare\n}", 4, `names "bare"`},
	})
}
