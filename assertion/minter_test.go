package assertion

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func testMinter(t testing.TB, issuer string, audience []string) *Minter {
	k, _ := testKeyring(t, 0)
	return NewMinter(k, issuer, audience, 0, "/.session")
}

// verified checks token's signature against the keyring's JWKS, as an
// upstream would, and returns its claims.
func verified(t *testing.T, m *Minter, token string) claims {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(m.ring.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("the token's key %q is not published", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMinterCache: a session's token is reused, and signed again when its
// groups change, for another host, or near its end.
func TestMinterCache(t *testing.T) {
	m := testMinter(t, "", nil)
	now := time.Now()
	key := Key{Created: now.UnixNano(), User: "alice", Host: "example.com"}
	sub := Subject{Site: "example.com"}
	token := func(key Key, sub Subject, now time.Time) string {
		tok, err := m.Token(key, sub, now)
		if err != nil || tok == "" {
			t.Fatalf("no token: %v", err)
		}
		return tok
	}
	first := token(key, sub, now)
	if token(key, sub, now.Add(time.Second)) != first {
		t.Fatal("the token was not reused")
	}
	otherHost := key
	otherHost.Host = "other.example"
	if token(otherHost, sub, now) == first {
		t.Fatal("another host got the same token (its aud is another)")
	}
	sub.Groups, sub.GroupsKey = []string{"admin"}, "admin"
	withGroups := token(key, sub, now)
	if withGroups == first {
		t.Fatal("new groups, same token")
	}
	c := verified(t, m, withGroups)
	if c.Subject != "alice" || c.Audience != "example.com" || c.Issuer != "http://example.com/.session" ||
		len(c.Groups) != 1 || c.Groups[0] != "admin" || c.Expiry-c.IssuedAt != 300 || c.SID == "" || c.ID == "" {
		t.Errorf("claims %+v", c)
	}
	// Near its end (past four fifths of its life): signed again.
	if token(key, sub, now.Add(4*time.Minute-time.Second)) != withGroups {
		t.Fatal("a token was signed again before its renewal time")
	}
	if token(key, sub, now.Add(4*time.Minute)) == withGroups {
		t.Fatal("a token past its renewal time was reused")
	}
}

// TestMinterClaims: the default iss and aud carry the mount, the scheme
// and the host without its port; configured ones are used as they are;
// the sid names the session without its ID and is the same in every
// token of it.
func TestMinterClaims(t *testing.T) {
	now := time.Now()
	key := Key{Session: [32]byte{1}, Created: now.UnixNano(), User: "alice", Host: "App.Example.com:8443", TLS: true, Mount: "/wiki"}
	m := testMinter(t, "", nil)
	if !m.UsesMount() {
		t.Fatal("the default iss and aud do not need the mount")
	}
	tok, _ := m.Token(key, Subject{}, now)
	c := verified(t, m, tok)
	if c.Issuer != "https://App.Example.com:8443/wiki/.session" || c.Audience != "app.example.com/wiki" {
		t.Errorf("iss %q aud %v", c.Issuer, c.Audience)
	}
	if c.Groups == nil {
		t.Error("groups is null, want []")
	}

	// The same session, another host: another token, the same sid.
	other := key
	other.Host = "app.example.com"
	tok2, _ := m.Token(other, Subject{}, now)
	if c2 := verified(t, m, tok2); c2.SID != c.SID || c2.ID == c.ID {
		t.Errorf("sid %q then %q, jti %q then %q", c.SID, c2.SID, c.ID, c2.ID)
	}
	// Another session of the same user: another sid.
	another := key
	another.Session = [32]byte{2}
	tok3, _ := m.Token(another, Subject{}, now)
	if c3 := verified(t, m, tok3); c3.SID == c.SID {
		t.Error("two sessions have one sid")
	}

	fixed := testMinter(t, "https://id.example", []string{"app", "api"})
	if fixed.UsesMount() {
		t.Fatal("a configured iss and aud need the mount")
	}
	tok, _ = fixed.Token(key, Subject{}, now)
	c = verified(t, fixed, tok)
	if aud, ok := c.Audience.([]any); c.Issuer != "https://id.example" || !ok || len(aud) != 2 || aud[0] != "app" || aud[1] != "api" {
		t.Errorf("iss %q aud %v", c.Issuer, c.Audience)
	}
}

// TestMinterFollowsRotation: a token signed by a key that has since been
// retired is signed again with the new key.
func TestMinterFollowsRotation(t *testing.T) {
	k, t0 := testKeyring(t, time.Hour)
	m := NewMinter(k, "", nil, 0, "/.session")
	key := Key{User: "alice", Host: "example.com"}
	first, _ := m.Token(key, Subject{}, t0)
	if err := k.Sync(context.Background(), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	second, _ := m.Token(key, Subject{}, t0.Add(time.Second))
	if second == first {
		t.Fatal("a token of the retired key was reused")
	}
	if jws, err := jose.ParseSigned(second, []jose.SignatureAlgorithm{jose.ES256}); err != nil {
		t.Fatal(err)
	} else if _, kid := k.current(); jws.Signatures[0].Header.KeyID != kid {
		t.Fatalf("signed by %s, not the active key %s", jws.Signatures[0].Header.KeyID, kid)
	}
}

// TestMinterSweep: expired tokens leave the cache.
func TestMinterSweep(t *testing.T) {
	m := testMinter(t, "", nil)
	now := time.Now()
	m.Token(Key{User: "alice", Host: "example.com"}, Subject{}, now)
	m.Sweep(now.Add(DefaultLifetime - time.Second))
	if len(m.cache) != 1 {
		t.Fatal("a live token was swept")
	}
	m.Sweep(now.Add(DefaultLifetime + time.Second))
	if len(m.cache) != 0 {
		t.Fatal("an expired token was kept")
	}
}
