package tests

import (
	"errors"
	"strings"
	"testing"
)

// decodeClaims reads a JWT's claims without verifying it.
func decodeClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	var claims map[string]any
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	return claims, decodeSegment(parts[1], &claims)
}

// twoAppsTemplate is two apps on one host, each with its own realm and
// users, and a third whose assertion's iss and aud are configured.
const twoAppsTemplate = `
[[.Site]] {
	handle_path /wiki/* {
		session {
			store memory
			realm wiki
			user admin [[.Extra.alice]] admin
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle_path /crm/* {
		session {
			store memory
			realm crm
			user admin [[.Extra.bob]] admin
			assertion
		}
		reverse_proxy [[.Upstream]]
	}
	handle_path /erp/* {
		session {
			store memory
			realm erp
			user admin [[.Extra.alice]]
			assertion {
				issuer https://id.example/erp
				audience erp-api
			}
		}
		reverse_proxy [[.Upstream]]
	}
}
`

// TestAssertionsNameTheirApp: two apps on one host (handle_path /wiki/*
// and /crm/*, a realm each, each with its own admin): the CRM's verifier,
// set up with the CRM's JWKS and the iss and aud of the CRM's own tokens,
// refuses the wiki admin's token, and so does a verifier that checks
// nothing but the signature with the CRM's keys. Configured iss and aud
// are used as given.
func TestAssertionsNameTheirApp(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, twoAppsTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	token := func(app, password string) string {
		t.Helper()
		cl := NewClient(t, c.Site)
		if r := cl.Post("/"+app+"/.session/login", "application/json", `{"username":"admin","password":"`+password+`"}`); r.StatusCode != 200 {
			t.Fatalf("login to %s: %d %s", app, r.StatusCode, r.Body)
		}
		got := cl.Get("/" + app + "/x").Echo(t).Headers["X-Session-Assertion"]
		if len(got) != 1 {
			t.Fatalf("%s's assertion: %q", app, got)
		}
		return got[0]
	}
	wiki, crm, erp := token("wiki", alicePassword), token("crm", bobPassword), token("erp", alicePassword)

	crmVerifier := &jwksVerifier{url: c.Site + "/crm/.session/jwks.json"}
	crmAud, crmIss := "127.0.0.1/crm", c.Site+"/crm/.session"
	if _, _, err := crmVerifier.verify(crm, crmAud, crmIss); err != nil {
		t.Errorf("the CRM's own token, with aud %s and iss %s: %v", crmAud, crmIss, err)
	}
	wikiVerifier := &jwksVerifier{url: c.Site + "/wiki/.session/jwks.json"}
	wikiAud, wikiIss := "127.0.0.1/wiki", c.Site+"/wiki/.session"
	claims, wikiKid, err := wikiVerifier.verify(wiki, wikiAud, wikiIss)
	if err != nil || claims["sub"] != "admin" {
		t.Errorf("the wiki's own token, with aud %s and iss %s: %v %v", wikiAud, wikiIss, claims, err)
	}
	if _, _, err := crmVerifier.verify(wiki, crmAud, crmIss); err == nil {
		t.Error("the CRM's verifier accepts the wiki admin's token")
	}
	// A verifier that checks only the signature (given the token's own
	// iss and aud): the wiki's key is not among the CRM's.
	if _, _, err := crmVerifier.verify(wiki, wikiAud, wikiIss); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("the CRM's keys verify the wiki's token (kid %s): %v", wikiKid, err)
	}
	if _, _, err := wikiVerifier.verify(crm, wikiAud, wikiIss); err == nil {
		t.Error("the wiki's verifier accepts the CRM's token")
	}
	// Configured iss and aud are used as given.
	erpVerifier := &jwksVerifier{url: c.Site + "/erp/.session/jwks.json"}
	if _, _, err := erpVerifier.verify(erp, "erp-api", "https://id.example/erp"); err != nil {
		t.Errorf("the ERP's token with its configured iss and aud: %v", err)
	}
}
