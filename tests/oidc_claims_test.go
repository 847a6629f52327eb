package tests

import (
	"net/http"
	"strings"
	"testing"
)

// TestOIDCAllowListLookalikes: allow_emails and allow_domains compare an
// email exactly but for ASCII case. kelvin's verified email at the
// provider is k@Kelvin.example with the Kelvin sign (U+212A), which
// Unicode case folding takes for k@kelvin.example.
func TestOIDCAllowListLookalikes(t *testing.T) {
	c, _, _ := startOIDCSite(t, WithExtra("testopts", "allow_emails k@kelvin.example"))
	cl := NewClient(t, c.Site)
	r := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "", "kelvin", "kelvin-pw"))
	if r.StatusCode != http.StatusForbidden || !strings.Contains(string(r.Body), "may not sign in here") {
		t.Errorf("k@\u212Aelvin.example against allow_emails k@kelvin.example: %d %s; want 403", r.StatusCode, r.Body)
	}
	if status, _ := cl.Whoami(); status != http.StatusUnauthorized {
		t.Errorf("the look-alike email got a session: whoami %d", status)
	}
}

// TestOIDCEmailVerifiedForms: providers write email_verified their own
// way. true and "true" are verified, false and "false" are not, and
// anything else is not verified either, with a log line: never a 502.
// mallory's email is in the allowed domain; only email_verified decides.
func TestOIDCEmailVerifiedForms(t *testing.T) {
	c, o, _ := startOIDCSite(t)
	for _, tt := range []struct {
		name   string
		value  any
		status int
		logged bool
	}{
		{"true", true, http.StatusSeeOther, false},
		{`"true"`, "true", http.StatusSeeOther, false},
		{`"false"`, "false", http.StatusForbidden, false},
		{`"True"`, "True", http.StatusForbidden, true},
		{`"1"`, "1", http.StatusForbidden, true},
		{"1", 1, http.StatusForbidden, true},
		{"null", nil, http.StatusForbidden, true},
		{"a list", []any{true}, http.StatusForbidden, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o.TamperUserinfo(t, func(claims map[string]any) { claims["email_verified"] = tt.value })
			before := strings.Count(c.Logs(), "email_verified is neither true nor false")
			cl := NewClient(t, c.Site)
			r := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "", "mallory", "mallory-pw"))
			if r.StatusCode != tt.status {
				t.Fatalf("email_verified %s: %d %s; want %d", tt.name, r.StatusCode, r.Body, tt.status)
			}
			if tt.status == http.StatusForbidden && !strings.Contains(string(r.Body), "is not verified") {
				t.Errorf("refusal does not say the email is not verified: %s", r.Body)
			}
			if logged := strings.Count(c.Logs(), "email_verified is neither true nor false") > before; logged != tt.logged {
				t.Errorf("logged %v; want %v", logged, tt.logged)
			}
		})
	}
}
