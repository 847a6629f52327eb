package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"slices"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// TestOIDCAmr: the session's amr is the provider's, values checked; "mfa"
// counts (is kept, or added for a knowledge and a possession factor, or
// a multi-factor acr) only when the handler lets a provider's count.
func TestOIDCAmr(t *testing.T) {
	p := testProvider(t, Provider{})
	list := func(v ...any) []any { return v }
	tests := []struct {
		name     string
		amr, acr any
		on, off  []string
	}{
		{"none", nil, nil, nil, nil},
		{"password", list("pwd"), nil, []string{"pwd"}, []string{"pwd"}},
		{"provider's mfa", list("pwd", "otp", "mfa"), nil, []string{"pwd", "otp", "mfa"}, []string{"pwd", "otp"}},
		{"mfa alone", list("mfa"), nil, []string{"mfa"}, []string{}},
		{"two factors, no mfa said", list("pwd", "hwk"), nil, []string{"pwd", "hwk", "mfa"}, []string{"pwd", "hwk"}},
		{"pin and sms", list("pin", "sms"), nil, []string{"pin", "sms", "mfa"}, []string{"pin", "sms"}},
		{"two possession factors", list("otp", "hwk"), nil, []string{"otp", "hwk"}, []string{"otp", "hwk"}},
		{"multi-factor acr", list("pwd"), "http://schemas.openid.net/pape/policies/2007/06/multi-factor", []string{"pwd", "mfa"}, []string{"pwd"}},
		{"phr acr without amr", nil, "phr", []string{"mfa"}, nil},
		{"other acr", list("pwd"), "urn:mace:incommon:iap:silver", []string{"pwd"}, []string{"pwd"}},
		{"acr not a string", list("pwd"), list("phr"), []string{"pwd"}, []string{"pwd"}},
		{"a string, not a list", "mfa", nil, nil, nil},
		{"bad values skipped", list("pwd", "", "x y", "mf\u00e4", 7, "a\x00", "0123456789012345678901234567890123", "otp"), nil, []string{"pwd", "otp", "mfa"}, []string{"pwd", "otp"}},
		{"duplicates once", list("pwd", "pwd", "mfa", "mfa"), nil, []string{"pwd", "mfa"}, []string{"pwd"}},
		{"at most 8", list("a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "mfa"), nil, []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"}, []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"}},
		{"8 with two factors: mfa takes the last place", list("pwd", "otp", "a3", "a4", "a5", "a6", "a7", "a8"), nil, []string{"pwd", "otp", "a3", "a4", "a5", "a6", "a7", "mfa"}, []string{"pwd", "otp", "a3", "a4", "a5", "a6", "a7", "a8"}},
		{"an object", map[string]any{"mfa": true}, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.amrOf(tt.amr, tt.acr, true); !slices.Equal(got, tt.on) {
				t.Errorf("oidc_amr on: %q, want %q", got, tt.on)
			}
			if got := p.amrOf(tt.amr, tt.acr, false); !slices.Equal(got, tt.off) {
				t.Errorf("oidc_amr off: %q, want %q", got, tt.off)
			}
		})
	}
}

// TestOIDCAmrFromVerifiedToken: the amr read is the verified ID token's
// (go-oidc checks its signature), and userinfo's cannot add one.
func TestOIDCAmrFromVerifiedToken(t *testing.T) {
	p := testProvider(t, Provider{})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	verifier := gooidc.NewVerifier(p.Issuer, &gooidc.StaticKeySet{PublicKeys: []crypto.PublicKey{key.Public()}}, &gooidc.Config{ClientID: p.ClientID, SupportedSigningAlgs: []string{gooidc.ES256}})
	sign := func(claims map[string]any) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(claims)
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
	claims := map[string]any{
		"iss": p.Issuer, "aud": p.ClientID, "sub": "u1", "nonce": "n", "exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix(),
		"preferred_username": "carol", "email": "c@example.com", "name": "Carol", "groups": []string{},
		"amr": []string{"pwd", "otp", "mfa"}, "acr": "phr",
	}
	tok := (&oauth2.Token{AccessToken: "at"}).WithExtra(map[string]any{"id_token": sign(claims)})
	v, err := p.verify(context.Background(), &discovery{verifier: verifier}, tok, "n")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.amrOf(v.amr, v.acr, true); !slices.Equal(got, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("amr %q", got)
	}
	if got := p.amrOf(v.amr, v.acr, false); !slices.Equal(got, []string{"pwd", "otp"}) {
		t.Errorf("oidc_amr off: amr %q", got)
	}
	if _, err := p.verify(context.Background(), &discovery{verifier: verifier}, (&oauth2.Token{}).WithExtra(map[string]any{"id_token": sign(claims)[:40] + "x" + sign(claims)[41:]}), "n"); err == nil {
		t.Error("a token changed after signing was verified")
	}
}
