package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Attacks on back-channel logout, against a real Caddy and the example
// provider: each asserts the safe behaviour (a failing test is a finding).

// opSigningKey returns the provider's signing key and its key ID.
func opSigningKey(t testing.TB, o *OP) (*rsa.PrivateKey, string) {
	t.Helper()
	sk, err := o.storage.SigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	k, ok := sk.Key().(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("the provider's key is a %T, want *rsa.PrivateKey", sk.Key())
	}
	return k, sk.ID()
}

// rawJWT builds a compact JWT by hand from header and claims, with sig
// computed over the signing input by sign: what an attacker can send.
func rawJWT(header, claims map[string]any, sign func(input []byte) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
}

// TestAttackBCLogoutAlgConfusion: tokens whose claims are right but whose
// algorithm is not the provider's: HS256 keyed with the provider's public
// key (as PEM, as DER, as the JWKS), alg none (with and without a
// signature), ES256 under the provider's kid, RS256 with a key embedded in
// the header (jwk). All 400, and the session lives.
func TestAttackBCLogoutAlgConfusion(t *testing.T) {
	c, o, _ := startOIDCSite(t)
	cl := NewClient(t, c.Site)
	loginWithSID(t, o, cl, "sid-alg")
	priv, kid := opSigningKey(t, o)

	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwks := NewClient(t, o.Issuer).Get("/keys").Body
	hmacWith := func(secret []byte) func([]byte) []byte {
		return func(in []byte) []byte { m := hmac.New(sha256.New, secret); m.Write(in); return m.Sum(nil) }
	}
	claims := func() map[string]any {
		return with(hydraLogoutClaims(o, "sid-alg"), "exp", time.Now().Add(time.Minute).Unix())
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	esToken := signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: ec},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", kid), claims())
	embToken := signJWT(t, jose.SigningKey{Algorithm: jose.RS256, Key: otherKey()},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("logout+jwt"), claims())

	for _, tt := range []struct{ name, token string }{
		{"HS256 keyed with the public key as PEM", rawJWT(map[string]any{"alg": "HS256", "typ": "logout+jwt", "kid": kid}, claims(), hmacWith(pemKey))},
		{"HS256 keyed with the public key as DER", rawJWT(map[string]any{"alg": "HS256", "typ": "logout+jwt", "kid": kid}, claims(), hmacWith(der))},
		{"HS256 keyed with the JWKS", rawJWT(map[string]any{"alg": "HS256", "typ": "logout+jwt", "kid": kid}, claims(), hmacWith(jwks))},
		{"alg none, empty signature", rawJWT(map[string]any{"alg": "none", "typ": "logout+jwt"}, claims(), func([]byte) []byte { return nil })},
		{"alg None, kid, junk signature", rawJWT(map[string]any{"alg": "None", "typ": "logout+jwt", "kid": kid}, claims(), func([]byte) []byte { return []byte("x") })},
		{"ES256 under the provider's RSA kid", esToken},
		{"RS256 with its own key embedded (jwk header)", embToken},
		{"RS256 header, signature by a key never published, provider's kid", o.Sign(t, otherKey(), claims())},
	} {
		if r := postLogoutToken(t, c, tt.token); r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tt.name, r.StatusCode, r.Body)
		}
	}
	if !alive(t, cl) {
		t.Fatal("a forged logout token ended the session")
	}
	// The genuine token still works after all that.
	if r := postLogoutToken(t, c, o.Sign(t, nil, claims())); r.StatusCode != http.StatusOK {
		t.Fatalf("genuine logout token: %d %s", r.StatusCode, r.Body)
	}
	if alive(t, cl) {
		t.Error("the session is still there after a genuine logout token")
	}
}

// TestAttackBCLogoutPreclaimJTI: an attacker who learns (or guesses) the
// jti of a logout token to come sends junk with that jti first (right
// claims, bad signature; unknown kid; right claims but stale): the jti must
// not be claimed by a token whose signature did not verify, so the genuine
// token is then accepted, not refused as a replay.
func TestAttackBCLogoutPreclaimJTI(t *testing.T) {
	c, o, _ := startOIDCSite(t)
	cl := NewClient(t, c.Site)
	loginWithSID(t, o, cl, "sid-preclaim")
	genuine := with(hydraLogoutClaims(o, "sid-preclaim"), "exp", time.Now().Add(time.Minute).Unix())
	copyOf := func() map[string]any {
		m := map[string]any{}
		for k, v := range genuine {
			m[k] = v
		}
		return m
	}
	for _, tt := range []struct{ name, token string }{
		{"same jti, bad signature under the provider's kid", o.Sign(t, otherKey(), copyOf())},
		{"same jti, unknown kid", signUnknownKey(t, copyOf(), "attacker-kid")},
		{"same jti, alg none", rawJWT(map[string]any{"alg": "none"}, copyOf(), func([]byte) []byte { return nil })},
		{"same jti, aud another client", o.Sign(t, nil, with(copyOf(), "aud", []string{opOtherClient}))},
	} {
		if r := postLogoutToken(t, c, tt.token); r.StatusCode == http.StatusOK {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if !alive(t, cl) {
		t.Fatal("junk with the jti ended the session")
	}
	if r := postLogoutToken(t, c, o.Sign(t, nil, genuine)); r.StatusCode != http.StatusOK {
		t.Fatalf("the genuine token after junk with its jti: %d %s, want 200 (junk must not claim a jti)", r.StatusCode, r.Body)
	}
	if alive(t, cl) {
		t.Error("the genuine token did not end the session")
	}
}

// TestAttackBCLogoutCrossProvider: providers "test" (client edge) and
// "idclaims" (client edge-id) share one issuer. A token for one client is
// refused at the other's endpoint; a token for "test" naming the sid or
// sub of an "idclaims" session ends nothing there; a token whose aud
// lists both clients ends, at each endpoint, that provider's sessions only
// — and its jti, claimed per client, is accepted once at each.
func TestAttackBCLogoutCrossProvider(t *testing.T) {
	c, o, _ := startOIDCSite(t)
	post := func(provider, token string) *Response {
		cl := NewClient(t, c.Site)
		cl.Allow5xx = true
		return cl.Post("/.session/oidc/"+provider+"/backchannel-logout", "application/x-www-form-urlencoded", url.Values{"logout_token": {token}}.Encode())
	}
	tokenFor := func(aud []string, sub, sid string) string {
		claims := with(hydraLogoutClaims(o, sid), "aud", aud)
		if sid == "" {
			delete(claims, "sid")
		}
		if sub != "" {
			claims["sub"] = sub
		}
		return o.Sign(t, nil, claims)
	}

	onTest := NewClient(t, c.Site)
	loginWithSID(t, o, onTest, "sid-shared-name")
	onID := NewClient(t, c.Site)
	o.mu.Lock()
	o.tamper = func(t testing.TB, idToken string) string {
		return o.Resign(t, idToken, nil, func(c map[string]any) { c["sid"] = "sid-shared-name" })
	}
	o.mu.Unlock()
	OIDCLogin(t, onID, "idclaims", "alice", "alice-pw")
	o.mu.Lock()
	o.tamper = nil
	o.mu.Unlock()
	if !alive(t, onTest) || !alive(t, onID) {
		t.Fatal("logins failed")
	}

	// A token for edge-id at test's endpoint, and the other way round.
	if r := post("test", tokenFor([]string{opClientIDToken}, "", "sid-shared-name")); r.StatusCode != http.StatusBadRequest {
		t.Errorf("a token for edge-id at test's endpoint: %d %s, want 400", r.StatusCode, r.Body)
	}
	if r := post("idclaims", tokenFor([]string{opClient}, "alice", "")); r.StatusCode != http.StatusBadRequest {
		t.Errorf("a token for edge at idclaims' endpoint: %d %s, want 400", r.StatusCode, r.Body)
	}
	if !alive(t, onTest) || !alive(t, onID) {
		t.Fatal("a token for the other client ended a session")
	}

	// For test, by sub only: test's sessions of alice end, idclaims' stay.
	if r := post("test", tokenFor([]string{opClient}, "alice", "")); r.StatusCode != http.StatusOK {
		t.Fatalf("sub-only token at test: %d %s", r.StatusCode, r.Body)
	}
	if alive(t, onTest) {
		t.Error("a sub-only logout at test left test's session")
	}
	if !alive(t, onID) {
		t.Error("a sub-only logout at test ended the namesake's session on idclaims")
	}

	// aud both clients, by sid: at test it finds nothing left of test's;
	// idclaims' session stays until the same token reaches idclaims.
	both := tokenFor([]string{opClient, opClientIDToken}, "", "sid-shared-name")
	if r := post("test", both); r.StatusCode != http.StatusOK {
		t.Fatalf("a token for both clients at test: %d %s", r.StatusCode, r.Body)
	}
	if !alive(t, onID) {
		t.Error("a token at test's endpoint ended idclaims' session of the same sid")
	}
	if r := post("test", both); r.StatusCode != http.StatusBadRequest {
		t.Errorf("the same token again at test: %d %s, want 400 (replayed)", r.StatusCode, r.Body)
	}
	if r := post("idclaims", both); r.StatusCode != http.StatusOK {
		t.Fatalf("a token for both clients at idclaims: %d %s", r.StatusCode, r.Body)
	}
	if alive(t, onID) {
		t.Error("the token for both clients did not end idclaims' session")
	}
	if r := post("idclaims", both); r.StatusCode != http.StatusBadRequest {
		t.Errorf("the same token again at idclaims: %d %s, want 400 (replayed)", r.StatusCode, r.Body)
	}
}

// TestAttackBCLogoutRequestShapes: the token only in a POSTed form body is
// read. GET with it in the query, a POST with it in the query only, as
// JSON, as multipart, a body beyond the limit: none ends the session (400
// or 405, never 5xx), and none of them uses up the token's jti.
func TestAttackBCLogoutRequestShapes(t *testing.T) {
	c, o, _ := startOIDCSite(t)
	cl := NewClient(t, c.Site)
	loginWithSID(t, o, cl, "sid-shapes")
	token := o.Sign(t, nil, with(hydraLogoutClaims(o, "sid-shapes"), "exp", time.Now().Add(time.Minute).Unix()))
	const path = "/.session/oidc/test/backchannel-logout"
	q := url.Values{"logout_token": {token}}.Encode()

	send := func(method, target, contentType, body string) int {
		req, err := http.NewRequest(method, c.Site+target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	jsonBody, _ := json.Marshal(map[string]string{"logout_token": token})
	multipart := "--b\r\nContent-Disposition: form-data; name=\"logout_token\"\r\n\r\n" + token + "\r\n--b--\r\n"
	huge := q + "&pad=" + strings.Repeat("a", 2<<20)
	for _, tt := range []struct {
		name                        string
		method, target, ctype, body string
		want                        int
	}{
		{"GET with the token in the query", http.MethodGet, path + "?" + q, "", "", http.StatusMethodNotAllowed},
		{"PUT with the token in the body", http.MethodPut, path, "application/x-www-form-urlencoded", q, http.StatusMethodNotAllowed},
		{"POST with the token in the query only", http.MethodPost, path + "?" + q, "application/x-www-form-urlencoded", "", http.StatusBadRequest},
		{"POST with the token in the query, no content type", http.MethodPost, path + "?" + q, "", "", http.StatusBadRequest},
		{"POST as JSON", http.MethodPost, path, "application/json", string(jsonBody), http.StatusBadRequest},
		{"POST as multipart", http.MethodPost, path, "multipart/form-data; boundary=b", multipart, http.StatusBadRequest},
		{"POST with the token first in a 2 MB body", http.MethodPost, path, "application/x-www-form-urlencoded", huge, http.StatusBadRequest},
		{"POST with the token given twice, junk first", http.MethodPost, path, "application/x-www-form-urlencoded", "logout_token=junk&" + q, http.StatusBadRequest},
	} {
		if got := send(tt.method, tt.target, tt.ctype, tt.body); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
		if !alive(t, cl) {
			t.Fatalf("%s ended the session", tt.name)
		}
	}
	// The token was not used up by any of those.
	if got := send(http.MethodPost, path, "application/x-www-form-urlencoded", q); got != http.StatusOK {
		t.Fatalf("the token, sent right after: %d, want 200", got)
	}
	if alive(t, cl) {
		t.Error("the session is still there after its logout")
	}
}

// TestAttackBCLogoutForwardedFor: the per-address limit is by the
// connection's address (no trusted_proxies here): junk from one address
// that names a different client in X-Forwarded-For, X-Real-IP, Forwarded
// or True-Client-IP on each request is still held back (429).
func TestAttackBCLogoutForwardedFor(t *testing.T) {
	c, _, _ := startOIDCSite(t)
	client := clientFrom("127.0.0.1")
	tooMany := 0
	for i := range 1000 {
		fake := fmt.Sprintf("198.51.%d.%d", i/250, i%250+1)
		req, _ := http.NewRequest(http.MethodPost, c.Site+"/.session/oidc/test/backchannel-logout", strings.NewReader("logout_token=junk"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", fake)
		req.Header.Set("X-Real-IP", fake)
		req.Header.Set("True-Client-IP", fake)
		req.Header.Set("Forwarded", "for="+fake)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			tooMany++
		} else if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("junk request %d: %d, want 400 or 429", i, resp.StatusCode)
		}
	}
	// 1000 requests as fast as one client sends them: beyond the burst of
	// 200 plus what 20 a second refills while they are sent.
	if tooMany == 0 {
		t.Error("1000 junk requests from one address, each naming another client in forwarding headers: none answered 429")
	}
}
