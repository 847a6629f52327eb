package oidc

import (
	"testing"

	"github.com/edgesession/edgesession/sessionstore"
)

// TestOIDCNames: a provider's users get its own qualified names unless it
// vouches for local names; a session of the other kind (from before the
// setting changed, or before names were qualified) is no login.
func TestOIDCNames(t *testing.T) {
	own := testProvider(t, Provider{Name: "corp"})
	own.fingerprint = own.configFingerprint()
	local := testProvider(t, Provider{Name: "corp", Names: "local"})
	local.fingerprint = local.configFingerprint()
	if own.Names != "qualified" {
		t.Fatalf("default names %q", own.Names)
	}
	if got := own.userName("admin"); got != "corp:admin" {
		t.Errorf("qualified name %q", got)
	}
	if got := local.userName("admin"); got != "admin" {
		t.Errorf("local name %q", got)
	}
	for _, tt := range []struct {
		p    *Client
		user string
		want bool
	}{
		{own, "corp:admin", true},
		{own, "admin", false}, // issued before names were qualified
		{own, "other:admin", false},
		{own, "corpx:admin", false},
		{own, "corp:", false},
		{local, "admin", true},
		{local, "corp:admin", false},
	} {
		rec := sessionstore.Record{User: tt.user, Source: "oidc:corp", Fingerprint: tt.p.fingerprint}
		if got := tt.p.Accepts(rec); got != tt.want {
			t.Errorf("names %s accepts %q = %v, want %v", tt.p.Names, tt.user, got, tt.want)
		}
	}
}
