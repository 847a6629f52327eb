package oidc

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestCheckLogoutType(t *testing.T) {
	for _, tt := range []struct {
		typ any
		ok  bool
	}{
		{nil, true},
		{"logout+jwt", true},
		{"Logout+JWT", true},
		{"application/logout+jwt", true},
		{"APPLICATION/logout+jwt", true},
		{"JWT", true}, // Ory Hydra's (fosite's default)
		{"application/jwt", true},
		{"at+jwt", false},
		{"application/at+jwt", false},
		{"secevent+jwt", false},
		{"logout+jwt ", false},
		{"application/application/logout+jwt", false},
		{"", false},
		{42, false},
		{[]any{"logout+jwt"}, false},
	} {
		if err := checkLogoutType(tt.typ); (err == nil) != tt.ok {
			t.Errorf("checkLogoutType(%#v) = %v; want ok %v", tt.typ, err, tt.ok)
		}
	}
}

func TestCheckLogoutClaims(t *testing.T) {
	p := &Client{Provider: Provider{Issuer: "https://op.example", ClientID: "edge"}}
	now := time.Unix(1_800_000_000, 0)
	valid := func() map[string]any {
		return map[string]any{
			"iss": "https://op.example", "aud": []string{"edge"}, "iat": now.Unix(), "jti": "j1", "sid": "s1",
			"events": map[string]any{backchannelLogoutEvent: map[string]any{}},
		}
	}
	for _, tt := range []struct {
		name   string
		change func(map[string]any)
		reason string // "" for accepted
	}{
		{"as Hydra sends it: no exp, no sub", func(map[string]any) {}, ""},
		{"aud a string", func(c map[string]any) { c["aud"] = "edge" }, ""},
		{"aud among others", func(c map[string]any) { c["aud"] = []string{"other", "edge"} }, ""},
		{"sub only", func(c map[string]any) { delete(c, "sid"); c["sub"] = "alice" }, ""},
		{"exp ahead", func(c map[string]any) { c["exp"] = now.Add(time.Minute).Unix() }, ""},
		{"exp just passed, within the leeway", func(c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() }, ""},
		{"issued at the edge of freshness", func(c map[string]any) { c["iat"] = now.Add(-logoutTokenMaxAge - logoutClockSkew).Unix() }, ""},
		{"issued a little ahead (clock skew)", func(c map[string]any) { c["iat"] = now.Add(30 * time.Second).Unix() }, ""},
		{"exp passed", func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() }, refusedStale},
		{"stale", func(c map[string]any) { c["iat"] = now.Add(-logoutTokenMaxAge - logoutClockSkew - time.Second).Unix() }, refusedStale},
		{"stale, exp ahead", func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(time.Hour).Unix()
		}, refusedStale},
		{"issued in the future", func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() }, refusedStale},
		{"not yet valid", func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() }, refusedStale},
		{"no iat", func(c map[string]any) { delete(c, "iat") }, refusedClaims},
		{"another issuer", func(c map[string]any) { c["iss"] = "https://op.example/" }, refusedClaims},
		{"another audience", func(c map[string]any) { c["aud"] = []string{"other"} }, refusedClaims},
		{"no events", func(c map[string]any) { delete(c, "events") }, refusedClaims},
		{"another event", func(c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		}, refusedClaims},
		{"event not an object", func(c map[string]any) { c["events"] = map[string]any{backchannelLogoutEvent: true} }, refusedClaims},
		{"event null", func(c map[string]any) { c["events"] = map[string]any{backchannelLogoutEvent: nil} }, refusedClaims},
		{"a nonce", func(c map[string]any) { c["nonce"] = "" }, refusedClaims},
		{"no jti", func(c map[string]any) { delete(c, "jti") }, refusedClaims},
		{"neither sub nor sid", func(c map[string]any) { delete(c, "sid") }, refusedClaims},
	} {
		c := valid()
		tt.change(c)
		b, _ := json.Marshal(c)
		var lt logoutToken
		if err := json.Unmarshal(b, &lt); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		reason, err := p.checkLogoutClaims(&lt, now)
		if reason != tt.reason || (err == nil) != (tt.reason == "") {
			t.Errorf("%s: reason %q, %v; want %q", tt.name, reason, err, tt.reason)
		}
	}
}

// A token's jti is remembered until the token could no longer pass as
// fresh: the end of its freshness, or its exp (with the leeway) if that
// comes first.
func TestLogoutTokenFreshUntil(t *testing.T) {
	iat := time.Unix(1_800_000_000, 0)
	lt := logoutToken{Claims: jwt.Claims{IssuedAt: jwt.NewNumericDate(iat)}}
	if got, want := lt.freshUntil(), iat.Add(logoutTokenMaxAge+logoutClockSkew); !got.Equal(want) {
		t.Errorf("without exp: %v, want %v", got, want)
	}
	lt.Expiry = jwt.NewNumericDate(iat.Add(30 * time.Second))
	if got, want := lt.freshUntil(), iat.Add(30*time.Second+logoutClockSkew); !got.Equal(want) {
		t.Errorf("with an early exp: %v, want %v", got, want)
	}
	lt.Expiry = jwt.NewNumericDate(iat.Add(time.Hour))
	if got, want := lt.freshUntil(), iat.Add(logoutTokenMaxAge+logoutClockSkew); !got.Equal(want) {
		t.Errorf("with a late exp: %v, want %v", got, want)
	}
}

// One address that spends its budget does not spend another's; an IPv6
// client counts as its /64; memory stays bounded.
func TestAddressLimits(t *testing.T) {
	a := newAddressLimits()
	now := time.Unix(1_800_000_000, 0)
	for i := range backchannelPerAddressBurst {
		if !a.allow("192.0.2.1", now) {
			t.Fatalf("request %d within the burst refused", i+1)
		}
	}
	if a.allow("192.0.2.1", now) {
		t.Fatal("a request beyond the burst allowed")
	}
	if !a.allow("192.0.2.2", now) || !a.allow("2001:db8::1", now) {
		t.Fatal("another address is refused for the first one's flood")
	}
	for range backchannelPerAddressBurst {
		a.allow("2001:db8::2", now)
	}
	if a.allow("2001:db8::3", now) {
		t.Fatal("another address of the same /64 has a budget of its own")
	}
	if !a.allow("192.0.2.1", now.Add(time.Second)) {
		t.Fatal("the budget does not come back with time")
	}
	for i := range 2 * maxLimitedAddresses {
		a.allow("10."+strings.Join([]string{strconv.Itoa(i >> 16 & 255), strconv.Itoa(i >> 8 & 255), strconv.Itoa(i & 255)}, "."), now)
	}
	if n := len(a.buckets); n > maxLimitedAddresses {
		t.Fatalf("%d addresses tracked, want at most %d", n, maxLimitedAddresses)
	}
}

// FuzzVerifyLogoutToken: whatever a client posts as a logout token, the
// check neither panics nor accepts a token the provider's key did not
// sign.
func FuzzVerifyLogoutToken(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	p := &Client{Provider: Provider{Issuer: "https://op.example", ClientID: "edge"}, keys: newKeyFetches()}
	d := &discovery{logoutVerifier: oidc.NewVerifier(p.Issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{key.Public()}}, &oidc.Config{ClientID: "edge", SkipExpiryCheck: true})}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": p.Issuer, "aud": "edge", "iat": now.Unix(), "jti": "j", "sid": "s",
		"events": map[string]any{backchannelLogoutEvent: map[string]any{}},
	})
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: other}, (&jose.SignerOptions{}).WithType("logout+jwt"))
	jws, _ := signer.Sign(claims)
	forged, _ := jws.CompactSerialize()
	f.Add(forged)
	f.Add("e30.e30.")
	f.Add("eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(claims) + ".")
	f.Add("not a jwt")
	f.Fuzz(func(t *testing.T, raw string) {
		if lt, _, err := p.verifyLogoutToken(context.Background(), d, raw, now); err == nil {
			t.Fatalf("accepted %q (%+v) without the provider's signature", raw, lt)
		}
	})
}

// A flood of refusals is one line as it starts, then one report per
// interval with the count by reason.
func TestRefusalLogIsBounded(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	l := newRefusalLog(zap.New(core), time.Hour) // the interval does not end during the test
	for i := range 1000 {
		reason := refusedTooMany
		if i%4 == 0 {
			reason = refusedSignature
		}
		l.refused(reason, "192.0.2.1", errors.New("bad"))
	}
	if n := logs.Len(); n != 1 {
		t.Fatalf("%d lines for 1000 refusals within the interval, want 1", n)
	}
	first := logs.All()[0].ContextMap()
	if first["reason"] != refusedSignature || first["remote_ip"] != "192.0.2.1" || first["error"] != "bad" {
		t.Errorf("first line %v", first)
	}
	l.flush() // as the interval ends
	if n := logs.Len(); n != 2 {
		t.Fatalf("%d lines after the interval, want 2", n)
	}
	report := logs.All()[1].ContextMap()
	if report["refused"] != int64(999) || report["last_remote_ip"] != "192.0.2.1" {
		t.Errorf("report %v, want 999 refused", report)
	}
	if by, _ := report["by_reason"].(map[string]int); by[refusedTooMany] != 750 || by[refusedSignature] != 249 {
		t.Errorf("by_reason %v", report["by_reason"])
	}
	l.flush() // an interval without refusals: nothing more
	if n := logs.Len(); n != 2 {
		t.Fatalf("%d lines after a quiet interval, want 2", n)
	}
}
