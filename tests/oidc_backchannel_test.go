package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Back-channel logout as certified providers send it (Ory Hydra v2.3.0:
// no exp, typ JWT, aud a list, a random jti, by sid), what is refused,
// replays across instances, and floods.

// hydraLogoutClaims are the claims of a logout token as Ory Hydra v2.3.0
// sends it: no exp, no sub, aud a list.
func hydraLogoutClaims(o *OP, sid string) map[string]any {
	return map[string]any{
		"iss": o.Issuer, "aud": []string{opClient}, "iat": time.Now().Unix(), "jti": randomJTI(),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		"sid":    sid,
	}
}

func randomJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loginWithSID logs cl in at the provider as alice, with sid in the ID
// token (the example provider sets none; it is added and re-signed with
// the provider's key).
func loginWithSID(t *testing.T, o *OP, cl *Client, sid string) {
	t.Helper()
	o.mu.Lock()
	o.tamper = func(t testing.TB, idToken string) string {
		return o.Resign(t, idToken, nil, func(c map[string]any) { c["sid"] = sid })
	}
	o.mu.Unlock()
	defer func() { o.mu.Lock(); o.tamper = nil; o.mu.Unlock() }()
	OIDCLogin(t, cl, "test", "alice", "alice-pw")
}

// TestOIDCBackchannelLogoutAsProvidersSend: a logout token without exp
// (as Hydra sends it, typ JWT) or typed logout+jwt ends the session of its
// sid; a stale one, one of another type, an ID token, and the same token
// again are refused with 400, and the log says why.
func TestOIDCBackchannelLogoutAsProvidersSend(t *testing.T) {
	c, o, _ := startOIDCSite(t)

	for _, typ := range []jose.ContentType{"JWT", "logout+jwt", "application/Logout+JWT"} {
		cl := NewClient(t, c.Site)
		sid := "sid-" + string(typ)
		loginWithSID(t, o, cl, sid)
		if r := postLogoutToken(t, c, o.sign(t, nil, typ, hydraLogoutClaims(o, sid))); r.StatusCode != http.StatusOK {
			t.Errorf("a logout token without exp, typ %s: %d %s, want 200", typ, r.StatusCode, r.Body)
		}
		if alive(t, cl) {
			t.Errorf("the session of %s is still there after its logout (typ %s)", sid, typ)
		}
	}

	cl := NewClient(t, c.Site)
	loginWithSID(t, o, cl, "sid-kept")
	var issued atomic.Pointer[string]
	o.Tamper(t, func(t testing.TB, tok string) string { issued.Store(&tok); return tok })
	OIDCLogin(t, NewClient(t, c.Site), "test", "alice", "alice-pw")
	idToken := *issued.Load()
	// Tokens wrong in one way each; the others carry an exp ahead, as
	// providers that send one do.
	typed := func() map[string]any {
		return with(hydraLogoutClaims(o, "sid-kept"), "exp", time.Now().Add(time.Minute).Unix())
	}
	for _, tt := range []struct {
		name  string
		token string
	}{
		{"issued 10 minutes ago (no exp)", o.Sign(t, nil, with(hydraLogoutClaims(o, "sid-kept"), "iat", time.Now().Add(-10*time.Minute).Unix()))},
		{"issued 10 minutes ago, exp still ahead", o.Sign(t, nil, with(typed(), "iat", time.Now().Add(-10*time.Minute).Unix()))},
		{"issued 10 minutes ahead", o.Sign(t, nil, with(typed(), "iat", time.Now().Add(10*time.Minute).Unix()))},
		{"no iat", o.Sign(t, nil, without(typed(), "iat"))},
		{"exp passed", o.Sign(t, nil, with(hydraLogoutClaims(o, "sid-kept"), "exp", time.Now().Add(-2*time.Minute).Unix()))},
		{"no jti", o.Sign(t, nil, without(typed(), "jti"))},
		{"typ at+jwt", o.sign(t, nil, "at+jwt", typed())},
		{"typ secevent+jwt", o.sign(t, nil, "application/secevent+jwt", typed())},
		{"events not an object", o.Sign(t, nil, with(typed(), "events", map[string]any{"http://schemas.openid.net/event/backchannel-logout": "yes"}))},
		{"an ID token (typ JWT)", idToken},
		{"an ID token re-signed with sid and no nonce", o.Resign(t, idToken, nil, func(c map[string]any) { c["sid"] = "sid-kept"; delete(c, "nonce") })},
	} {
		if r := postLogoutToken(t, c, tt.token); r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tt.name, r.StatusCode, r.Body)
		}
	}
	if !alive(t, cl) {
		t.Fatal("a refused logout token ended the session")
	}

	// Replay: the same token a second time, after a new login with the
	// same sid (as a provider that reuses its session ends another RP
	// session), ends nothing.
	token := o.Sign(t, nil, typed())
	if r := postLogoutToken(t, c, token); r.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
	}
	again := NewClient(t, c.Site)
	loginWithSID(t, o, again, "sid-kept")
	if r := postLogoutToken(t, c, token); r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Body), "replayed") {
		t.Errorf("replayed logout token: %d %s, want 400 (replayed)", r.StatusCode, r.Body)
	}
	if !alive(t, again) {
		t.Error("a replayed logout token ended a later session")
	}
	// The first refusal is logged as it comes, the others at the end of
	// the interval (10s), counted by reason.
	waitFor(t, 30*time.Second, "the report of refused logout tokens", func() bool {
		return strings.Contains(c.Logs(), "oidc logout tokens refused since the last report")
	})
	logs := c.Logs()
	for _, why := range []string{"stale", "type", "replayed", "claims"} {
		if !strings.Contains(logs, `"reason":"`+why+`"`) && !regexp.MustCompile(`"by_reason":\{[^}]*"`+why+`":[1-9]`).MatchString(logs) {
			t.Errorf("the log does not say %s:\n%s", why, logs)
		}
	}
}

func with(c map[string]any, k string, v any) map[string]any { c[k] = v; return c }
func without(c map[string]any, k string) map[string]any     { delete(c, k); return c }

// TestOIDCBackchannelLogoutReplayOtherInstance: two Caddy instances share
// Redis; a logout token accepted by one is refused by the other, and does
// not end a later session with the same sid.
func TestOIDCBackchannelLogoutReplayOtherInstance(t *testing.T) {
	store := "store " + storeConfig(t, "redis")
	a, o, up := startOIDCSite(t, WithExtra("store", store))
	b := StartCaddy(t, up.Addr, oidcTemplate, WithExtra("issuer", o.Issuer), WithExtra("secret", opSecret),
		WithExtra("users", ""), WithExtra("store", store), WithExtra("testopts", ""))

	first := NewClient(t, a.Site)
	loginWithSID(t, o, first, "sid-shared")
	token := o.Sign(t, nil, with(hydraLogoutClaims(o, "sid-shared"), "exp", time.Now().Add(time.Minute).Unix()))
	if r := postLogoutToken(t, a, token); r.StatusCode != http.StatusOK {
		t.Fatalf("logout at instance A: %d %s", r.StatusCode, r.Body)
	}
	if alive(t, first) {
		t.Fatal("the session is still there after its logout")
	}
	later := NewClient(t, a.Site)
	loginWithSID(t, o, later, "sid-shared")
	if r := postLogoutToken(t, b, token); r.StatusCode != http.StatusBadRequest {
		t.Errorf("the same token at instance B: %d %s, want 400", r.StatusCode, r.Body)
	}
	if !alive(t, later) {
		t.Error("a token replayed at another instance ended a later session")
	}
	if !strings.Contains(b.Logs(), `"reason":"replayed"`) {
		t.Errorf("instance B does not log why it refused the token:\n%s", b.Logs())
	}
}

// clientFrom returns an HTTP client whose connections come from the
// local address ip (any of 127.0.0.0/8 on Linux).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 8}}
}

// postFrom posts a logout token with client and returns the status.
func postFrom(t testing.TB, client *http.Client, c *Caddy, token string) int {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, c.Site+"/.session/oidc/test/backchannel-logout",
		strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// signUnknownKey signs claims as a logout token with a key and key ID the
// provider never published.
func signUnknownKey(t testing.TB, claims map[string]any, kid string) string {
	return signJWT(t, jose.SigningKey{Algorithm: jose.RS256, Key: otherKey()},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", kid), claims)
}

// TestOIDCBackchannelLogoutFlood: junk from one address (unparseable,
// wrong issuer, bad signatures, unknown keys) while the provider, from
// another address, ends a session: the provider's logout succeeds, the
// flooding address is held back, the provider's keys are fetched a
// bounded number of times, and the log stays short.
func TestOIDCBackchannelLogoutFlood(t *testing.T) {
	c, o, _ := startOIDCSite(t)
	victim := NewClient(t, c.Site)
	loginWithSID(t, o, victim, "sid-flood")
	start := time.Now()
	fetchesBefore := o.KeyFetches.Load()

	junk := []string{
		"not-a-jwt",
		o.Sign(t, nil, with(hydraLogoutClaims(o, "sid-flood"), "iss", "http://127.0.0.1:1")),
		o.Sign(t, otherKey(), hydraLogoutClaims(o, "sid-flood")),                // bad signature under the provider's kid
		signUnknownKey(t, hydraLogoutClaims(o, "sid-flood"), "never-published"), // unknown kid
	}
	const flooders, perFlooder = 4, 1000
	var sent, tooMany atomic.Int64
	midFlood := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	flood := clientFrom("127.0.0.1")
	for f := range flooders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perFlooder {
				if postFrom(t, flood, c, junk[(f+i)%len(junk)]) == http.StatusTooManyRequests {
					tooMany.Add(1)
				}
				if sent.Add(1) == 400 {
					once.Do(func() { close(midFlood) })
				}
			}
		}()
	}
	<-midFlood
	// The provider ends the victim's session, from its own address,
	// while the flood goes on (to its end: 4000 requests).
	status := postFrom(t, clientFrom("127.0.0.2"), c, o.Sign(t, nil, with(hydraLogoutClaims(o, "sid-flood"), "exp", time.Now().Add(time.Minute).Unix())))
	wg.Wait()
	elapsed := time.Since(start)
	if status != http.StatusOK {
		t.Errorf("the provider's logout during the flood: %d, want 200", status)
	}
	if alive(t, victim) {
		t.Error("the session survived its logout during a flood")
	}
	if tooMany.Load() == 0 {
		t.Errorf("%d junk requests from one address, none answered 429", sent.Load())
	}

	// Bad signatures and unknown keys from many addresses, each within
	// its own limit: the keys are fetched within the budget.
	// Those whose key could not be fetched are told to retry (503).
	var spread sync.WaitGroup
	var statuses sync.Map // status → *atomic.Int64
	for a := 3; a < 23; a++ {
		spread.Add(1)
		go func() {
			defer spread.Done()
			cl := clientFrom(fmt.Sprintf("127.0.0.%d", a))
			for i := range 20 {
				status := postFrom(t, cl, c, signUnknownKey(t, hydraLogoutClaims(o, "sid-flood"), fmt.Sprintf("kid-%d-%d", a, i)))
				n, _ := statuses.LoadOrStore(status, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		}()
	}
	spread.Wait()
	statuses.Range(func(status, n any) bool {
		if status != http.StatusBadRequest && status != http.StatusServiceUnavailable {
			t.Errorf("%d tokens with unknown keys answered %d, want 400 or 503", n.(*atomic.Int64).Load(), status)
		}
		return true
	})
	if n, ok := statuses.Load(http.StatusServiceUnavailable); !ok || n.(*atomic.Int64).Load() == 0 {
		t.Error("no token whose key could not be fetched was answered 503 (retry later)")
	}
	elapsed = time.Since(start)
	// At most the burst, one more per interval, and the genuine token's
	// first fetch.
	if fetches, most := o.KeyFetches.Load()-fetchesBefore, int64(2+elapsed/(5*time.Second)+2); fetches > most {
		t.Errorf("the provider's keys were fetched %d times in %v; want at most %d", fetches, elapsed.Round(time.Millisecond), most)
	}

	// A line for the first refusal, then one per 10 seconds at most.
	lines := 0
	for _, l := range strings.Split(c.Logs(), "\n") {
		if strings.Contains(l, "oidc logout token") {
			lines++
		}
	}
	if most := 2 + int(elapsed/(10*time.Second)) + 1; lines > most {
		t.Errorf("%d log lines about refused logout tokens for %d requests in %v; want at most %d", lines, sent.Load()+20*20, elapsed.Round(time.Millisecond), most)
	}
	t.Logf("%d junk requests (%d answered 429) and 400 with unknown keys in %v; %d key fetches; %d log lines",
		sent.Load(), tooMany.Load(), elapsed.Round(time.Millisecond), o.KeyFetches.Load()-fetchesBefore, lines)
}
