// Back-channel logout attacks on the provider's signing keys: rotation and the key budget.

package tests

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// rotatingOP is the part of a provider that back-channel logout uses:
// discovery and a key set that the test rotates. (The example provider's
// key cannot be rotated.)
type rotatingOP struct {
	Issuer  string
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetches atomic.Int64
}

func startRotatingOP(t *testing.T) *rotatingOP {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rotatingOP{Issuer: "http://" + l.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": o.Issuer, "jwks_uri": o.Issuer + "/keys",
			"authorization_endpoint": o.Issuer + "/auth", "token_endpoint": o.Issuer + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"}, "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), o.keys...)}
		o.mu.Unlock()
		o.fetches.Add(1)
		json.NewEncoder(w).Encode(set)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return o
}

// publish adds key, under kid, to the published key set.
func (o *rotatingOP) publish(key *rsa.PrivateKey, kid string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.keys = append(o.keys, jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
}

// logoutToken signs a logout token by sub for client edge.
func (o *rotatingOP) logoutToken(t testing.TB, key *rsa.PrivateKey, kid string) string {
	return signJWT(t, jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", kid), map[string]any{
			"iss": o.Issuer, "aud": opClient, "iat": time.Now().Unix(), "jti": randomJTI(), "sub": "nobody",
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		})
}

const rotatingTemplate = `
[[.Site]] {
	session {
		store memory
		secret 0123456789abcdef0123456789abcdef
		oidc test {
			issuer [[.Extra.issuer]]
			client_id edge
			client_secret edge-client-secret
		}
	}
	reverse_proxy [[.Upstream]]
}
`

// TestAttackBCLogoutKeyBudgetRotation: an attacker spends the key-fetch
// budget with tokens under unknown key IDs, then the provider rotates its
// key. The provider's first logout token under the new key may be told to
// retry (503 with Retry-After), never refused for good (400: providers do
// not retry that); and once a fetch has happened since the rotation (the
// attacker's own junk makes one within keyFetchEvery), the provider's
// retry is accepted, while the attacker goes on spending.
func TestAttackBCLogoutKeyBudgetRotation(t *testing.T) {
	o := startRotatingOP(t)
	k1, k2 := otherKey(), rotationKey()
	o.publish(k1, "k1")
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, rotatingTemplate, WithExtra("issuer", o.Issuer))
	const path = "/.session/oidc/test/backchannel-logout"
	post := func(client *http.Client, token string) *http.Response {
		resp, err := client.PostForm(c.Site+path, url.Values{"logout_token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	provider, attacker := clientFrom("127.0.0.2"), clientFrom("127.0.0.1")
	if r := post(provider, o.logoutToken(t, k1, "k1")); r.StatusCode != http.StatusOK {
		t.Fatalf("a logout token under the published key: %d", r.StatusCode)
	}
	// The attacker spends the budget: junk until a 503.
	junk := func() int { return post(attacker, o.logoutToken(t, otherKeyB(), "kid-"+randomJTI())).StatusCode }
	for i := 0; ; i++ {
		if junk() == http.StatusServiceUnavailable {
			break
		}
		if i > 50 {
			t.Fatal("50 tokens under unknown keys, none answered 503: the fetch budget is not there")
		}
	}
	rotated := time.Now()
	fetchesAtRotation := o.fetches.Load()
	o.publish(k2, "k2")
	genuine := o.logoutToken(t, k2, "k2")
	r := post(provider, genuine)
	switch r.StatusCode {
	case http.StatusOK:
	case http.StatusServiceUnavailable:
		if ra := r.Header.Get("Retry-After"); ra == "" {
			t.Error("503 for the provider's token under its new key, without Retry-After")
		}
	default:
		t.Fatalf("the provider's token under its new key, the budget spent: %d, want 200 or 503 (retry), never 400", r.StatusCode)
	}
	// The attacker keeps spending; the keys are fetched again all the
	// same, within the budget's interval.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				junk()
			}
		}
	}()
	waitFor(t, 30*time.Second, "a key fetch after the rotation", func() bool { return o.fetches.Load() > fetchesAtRotation })
	t.Logf("first fetch after the rotation %v after it, the attacker flooding", time.Since(rotated).Round(time.Millisecond))
	// The provider's retry (the same token: it was not claimed).
	if r := post(provider, genuine); r.StatusCode != http.StatusOK {
		t.Errorf("the provider's retry after a fetch of its new keys, the attacker still flooding: %d, want 200", r.StatusCode)
	}
	close(stop)
	<-done
}

var rotationKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var otherKeyB = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})
