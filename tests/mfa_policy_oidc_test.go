package tests

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A provider's amr (SPEC §13), end to end with the example OpenID
// provider (zitadel's): the ID token's amr, re-signed with the provider's
// key as a provider that says how its user logged in would send it,
// becomes X-Session-Amr, and counts for a rule's mfa unless oidc_amr off.

const mfaOIDCTemplate = `
[[.Site]] {
	session {
		store memory
		secret 0123456789abcdef0123456789abcdef
		user alice [[.Extra.alice]]
		oidc idclaims {
			issuer [[.Extra.issuer]]
			client_id edge-id
			client_secret [[.Extra.secret]]
		}
		mfa [[.Extra.mfa]]
		allow user idclaims:carol {
			path /admin/*
			mfa
		}
	}
	reverse_proxy [[.Upstream]]
}
`

func TestMFAPolicyProviderAmr(t *testing.T) {
	for _, tt := range []struct {
		name, mfa string
		amr       []any
		wantAmr   []string // X-Session-Amr; nil: none
		admin     int      // GET /admin/x as a script
	}{
		{"provider's mfa", "", []any{"pwd", "otp", "mfa"}, []string{"pwd otp mfa"}, 200},
		{"password only (what the example provider says itself)", "", []any{"pwd"}, []string{"pwd"}, 401},
		{"none said", "", nil, nil, 401},
		{"two factors, mfa not said", "", []any{"pwd", "hwk"}, []string{"pwd hwk mfa"}, 200},
		{"oidc_amr off", "{\n\t\t\toidc_amr off\n\t\t}", []any{"pwd", "otp", "mfa"}, []string{"pwd otp"}, 401},
		{"values no header can carry are dropped", "", []any{"pwd", "x y", "a\r\nX-Session-User: alice", "", 7, "mfa"}, []string{"pwd mfa"}, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			o := StartOP(t, 0, "http://127.0.0.1:"+strconv.Itoa(port))
			up := StartUpstream(t)
			c := StartCaddy(t, up.Addr, mfaOIDCTemplate, WithSitePort(port), WithExtra("issuer", o.Issuer), WithExtra("secret", opSecret),
				WithExtra("alice", aliceHash), WithExtra("mfa", tt.mfa))
			cl, r := loginAs(t, c, o, "carol", func(claims map[string]any) {
				claims["preferred_username"] = "carol"
				claims["amr"] = tt.amr // the example provider says ["pwd"] itself
				if tt.amr == nil {
					delete(claims, "amr")
				}
			})
			if r.StatusCode != 303 {
				t.Fatalf("login: %d %s", r.StatusCode, r.Body)
			}
			e := cl.Get("/app").Echo(t)
			if got := e.Headers["X-Session-User"]; !slices.Equal(got, []string{"idclaims:carol"}) {
				t.Fatalf("user %q", got)
			}
			if got := e.Headers["X-Session-Amr"]; !slices.Equal(got, tt.wantAmr) {
				t.Errorf("X-Session-Amr %q, want %q", got, tt.wantAmr)
			}
			r = cl.Get("/admin/x", "Accept: application/json")
			if r.StatusCode != tt.admin || tt.admin == 401 && !strings.Contains(string(r.Body), "second factor required") {
				t.Errorf("GET /admin/x: %d %s, want %d", r.StatusCode, r.Body, tt.admin)
			}
		})
	}
}
