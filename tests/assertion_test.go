package tests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// jwksVerifier checks ES256 JWTs against a JWKS URL with nothing but the
// standard library: an upstream's view, independent of go-jose. It fetches
// the keys again when a token names a key it does not have.
type jwksVerifier struct {
	url  string
	mu   sync.Mutex
	keys map[string]*ecdsa.PublicKey
}

func (v *jwksVerifier) fetch() error {
	resp, err := http.Get(v.url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.Contains(ct, "json") {
		return fmt.Errorf("JWKS: %d %s", resp.StatusCode, ct)
	}
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Kid, Alg, Use, D string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return err
	}
	keys := map[string]*ecdsa.PublicKey{}
	for _, k := range set.Keys {
		if k.D != "" {
			return errors.New("the JWKS publishes a private key")
		}
		if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || k.Use != "sig" || k.Kid == "" {
			return fmt.Errorf("unexpected key %+v", k)
		}
		x, err1 := base64.RawURLEncoding.DecodeString(k.X)
		y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
		if err1 != nil || err2 != nil {
			return errors.New("bad key coordinates")
		}
		keys[k.Kid] = &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
	}
	v.mu.Lock()
	v.keys = keys
	v.mu.Unlock()
	return nil
}

func (v *jwksVerifier) key(kid string) *ecdsa.PublicKey {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keys[kid]
}

// verify checks the token's signature, exp, iat, aud and iss, and returns
// its claims and key ID.
func (v *jwksVerifier) verify(token, aud, iss string) (map[string]any, string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, "", errors.New("not a compact JWS")
	}
	var hdr struct{ Alg, Kid, Typ string }
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return nil, "", err
	}
	if hdr.Alg != "ES256" || hdr.Typ != "JWT" {
		return nil, "", fmt.Errorf("header %+v", hdr)
	}
	key := v.key(hdr.Kid)
	if key == nil {
		if err := v.fetch(); err != nil {
			return nil, "", err
		}
		if key = v.key(hdr.Kid); key == nil {
			return nil, "", fmt.Errorf("no key %q in the JWKS", hdr.Kid)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, "", errors.New("bad signature encoding")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(key, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, "", errors.New("bad signature")
	}
	var claims map[string]any
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, "", err
	}
	now := float64(time.Now().Unix())
	exp, _ := claims["exp"].(float64)
	iat, _ := claims["iat"].(float64)
	if exp <= now || iat > now+5 || exp-iat > 3600 {
		return nil, "", fmt.Errorf("iat %v exp %v now %v", iat, exp, now)
	}
	if claims["aud"] != aud || claims["iss"] != iss {
		return nil, "", fmt.Errorf("aud %v iss %v, want %s %s", claims["aud"], claims["iss"], aud, iss)
	}
	return claims, hdr.Kid, nil
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

const assertionTemplate = `
[[.Site]] {
	session {
		store bolt
		user alice [[.Extra.alice]] staff admin
		user bob [[.Extra.bob]]
		public {
			path /public/*
		}
		assertion {
			header X-Jwt-Assertion
			lifetime [[.Extra.lifetime]]
			rotate_every 1m
		}
	}
	reverse_proxy [[.Upstream]]
}
`

// TestAssertionVerifiedByTheUpstream: an upstream that trusts nothing but
// the signature verifies who the user is with the keys at
// <prefix>/jwks.json, through a key rotation, a reload and a restart; a
// client's copy of the header never reaches it; a session's token is
// signed once and reused.
func TestAssertionVerifiedByTheUpstream(t *testing.T) {
	up := StartUpstream(t)
	var c *Caddy
	verifier := &jwksVerifier{}
	type verified struct {
		Status int            `json:"status"`
		Error  string         `json:"error"`
		Claims map[string]any `json:"claims"`
		Kid    string         `json:"kid"`
		Token  string         `json:"token"`
	}
	up.Hooks["/verify"] = func(w http.ResponseWriter, r *http.Request) {
		got := r.Header["X-Jwt-Assertion"]
		res := verified{Status: 200}
		for name := range r.Header {
			if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), "X-Jwt-Assertion") && name != "X-Jwt-Assertion" {
				got = append(got, name) // a client's copy under another spelling
			}
		}
		if len(got) != 1 {
			res = verified{Status: 401, Error: fmt.Sprintf("%d tokens", len(got))}
		} else if claims, kid, err := verifier.verify(got[0], "127.0.0.1", c.Site+"/.session"); err != nil {
			res = verified{Status: 401, Error: err.Error()}
		} else {
			res.Claims, res.Kid, res.Token = claims, kid, got[0]
		}
		json.NewEncoder(w).Encode(res)
	}
	up.Hooks["/public/verify"] = up.Hooks["/verify"]
	c = StartCaddy(t, up.Addr, assertionTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash), WithExtra("lifetime", "5m"))
	verifier.url = c.Site + "/.session/jwks.json"

	get := func(cl *Client, path string, headers ...string) verified {
		t.Helper()
		r := cl.Get(path, headers...)
		var v verified
		if r.StatusCode != 200 || json.Unmarshal(r.Body, &v) != nil {
			t.Fatalf("GET %s: %d %s", path, r.StatusCode, r.Body)
		}
		return v
	}
	forged := "X-Jwt-Assertion: eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."
	alice := NewClient(t, c.Site)
	alice.MustLogin("alice", alicePassword)
	first := get(alice, "/verify", forged, "X_Jwt_Assertion: x")
	if first.Status != 200 {
		t.Fatalf("alice's token: %s", first.Error)
	}
	cl := first.Claims
	if cl["sub"] != "alice" || !slices.Equal(toStrings(cl["groups"]), []string{"admin", "staff"}) || cl["jti"] == "" {
		t.Errorf("alice's claims: %v", cl)
	}
	sid, _ := cl["sid"].(string)
	if len(sid) < 16 || strings.Contains(alice.SessionCookie(), sid) {
		t.Errorf("sid %q", sid)
	}
	if exp, iat := cl["exp"].(float64), cl["iat"].(float64); exp-iat != 300 {
		t.Errorf("exp - iat = %v, want 300", exp-iat)
	}
	// Signed once: the next request carries the same token.
	if again := get(alice, "/verify"); again.Token != first.Token {
		t.Error("a second request of the session got a new token")
	}
	bob := NewClient(t, c.Site)
	bob.MustLogin("bob", bobPassword)
	b := get(bob, "/verify")
	if b.Status != 200 || b.Claims["sub"] != "bob" || len(toStrings(b.Claims["groups"])) != 0 || b.Claims["sid"] == sid {
		t.Errorf("bob's token: %+v", b)
	}
	// Anonymous on a public path: no token, and not the client's either.
	if v := get(NewClient(t, c.Site), "/public/verify", forged); v.Status != 401 || v.Error != "0 tokens" {
		t.Errorf("anonymous with a forged token: %+v", v)
	}
	// The JWKS is public, and a GET only.
	if r := NewClient(t, c.Site).Post("/.session/jwks.json", "application/json", "{}"); r.StatusCode != 405 {
		t.Errorf("POST jwks.json: %d", r.StatusCode)
	}

	// Rotation: the key is due (its creation moved back past
	// rotate_every in storage), and a reload rotates it. The old token
	// still verifies; new ones come from the new key.
	keysFile := filepath.Join(c.Dir, "data", "caddy", "edgesession", "assertion-keys.json")
	var stored struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(readFile(t, keysFile)), &stored); err != nil || len(stored.Keys) != 1 {
		t.Fatalf("stored keys: %v %d", err, len(stored.Keys))
	}
	stored.Keys[0]["created"] = time.Now().Add(-2 * time.Minute).Format(time.RFC3339Nano)
	b2, _ := json.Marshal(stored)
	if err := os.WriteFile(keysFile, b2, 0o600); err != nil {
		t.Fatal(err)
	}
	c.Reload(strings.Replace(assertionTemplate, "[[.Extra.lifetime]]", "4m", 1))
	rotated := get(alice, "/verify")
	if rotated.Status != 200 || rotated.Kid == first.Kid {
		t.Fatalf("after rotation: %+v (kid was %s)", rotated, first.Kid)
	}
	if exp, iat := rotated.Claims["exp"].(float64), rotated.Claims["iat"].(float64); exp-iat != 240 {
		t.Errorf("after the reload, exp - iat = %v, want 240", exp-iat)
	}
	if _, kid, err := verifier.verify(first.Token, "127.0.0.1", c.Site+"/.session"); err != nil || kid != first.Kid {
		t.Errorf("the token of the retired key no longer verifies: %v", err)
	}
	if rotated.Claims["sid"] != sid {
		t.Errorf("the session's sid changed with the key")
	}

	// A restart keeps the keys: the same key signs.
	c.Restart()
	if v := get(alice, "/verify"); v.Status != 200 || v.Kid != rotated.Kid {
		t.Errorf("after a restart: %+v, want kid %s", v, rotated.Kid)
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := []string{}
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
