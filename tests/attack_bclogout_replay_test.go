// Back-channel logout replays: after reload and restart, across configs, IPv6 prefixes, concurrent.

package tests

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAttackBCLogoutReplayAfterReloadAndRestart: a logout token accepted
// once is refused again after a config reload (memory store), and after a
// restart (bolt store, which keeps its claims on disk): the replay ends
// nothing, not even a session begun since with the same sid.
func TestAttackBCLogoutReplayAfterReloadAndRestart(t *testing.T) {
	for _, tt := range []struct {
		store   string
		restart bool
	}{{"memory", false}, {"bolt", false}, {"bolt", true}} {
		name := tt.store + " reload"
		if tt.restart {
			name = tt.store + " restart"
		}
		t.Run(name, func(t *testing.T) {
			c, o, _ := startOIDCSite(t, WithExtra("store", "store "+tt.store))
			first := NewClient(t, c.Site)
			loginWithSID(t, o, first, "sid-replay")
			token := o.Sign(t, nil, with(hydraLogoutClaims(o, "sid-replay"), "exp", time.Now().Add(time.Minute).Unix()))
			if r := postLogoutToken(t, c, token); r.StatusCode != http.StatusOK {
				t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
			}
			if tt.restart {
				c.Restart()
			} else {
				c.Extra["testopts"] = "provider_logout on"
				c.Reload(oidcTemplate)
			}
			later := NewClient(t, c.Site)
			loginWithSID(t, o, later, "sid-replay")
			if r := postLogoutToken(t, c, token); r.StatusCode != http.StatusBadRequest {
				t.Errorf("the token replayed after the %s: %d %s, want 400", name, r.StatusCode, r.Body)
			}
			if !alive(t, later) {
				t.Errorf("the token replayed after the %s ended a later session", name)
			}
		})
	}
}

// TestAttackBCLogoutWhileConfigDiffers: a provider's sessions are its own
// only while it is configured as at login (its fingerprint): a session
// issued under one config is not a login under another. A back-channel
// logout that arrives while the config differs (a change later reverted,
// or an instance of a rolling deploy with the other config sharing the
// store) must still end it: the user logged out at the provider, and the
// session must not come back when the config does.
func TestAttackBCLogoutWhileConfigDiffers(t *testing.T) {
	c, o, _ := startOIDCSite(t, WithExtra("store", "store bolt"))
	cl := NewClient(t, c.Site)
	loginWithSID(t, o, cl, "sid-config")
	if !alive(t, cl) {
		t.Fatal("login failed")
	}
	c.Extra["testopts"] = "username_claim email"
	c.Reload(oidcTemplate)
	if r := postLogoutToken(t, c, o.Sign(t, nil, with(hydraLogoutClaims(o, "sid-config"), "exp", time.Now().Add(time.Minute).Unix()))); r.StatusCode != http.StatusOK {
		t.Fatalf("logout under the changed config: %d %s", r.StatusCode, r.Body)
	}
	c.Extra["testopts"] = ""
	c.Reload(oidcTemplate)
	if alive(t, cl) {
		t.Error("a session logged out at the provider (back-channel logout while the provider's config differed) is alive again once the config is back")
	}
}

// TestAttackBCLogoutIPv6Prefix: behind a trusted proxy, clients named by
// X-Forwarded-For: an attacker who rotates through the addresses of one
// IPv6 /64 shares one limit (429), while another /64 and the provider (at
// its own address) go on.
func TestAttackBCLogoutIPv6Prefix(t *testing.T) {
	c, _, _ := startOIDCSite(t, WithGlobals("servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}"))
	proxy := clientFrom("127.0.0.1")
	send := func(client *http.Client, xff string) int {
		req, _ := http.NewRequest(http.MethodPost, c.Site+"/.session/oidc/test/backchannel-logout", strings.NewReader("logout_token=junk"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The limit is a token bucket per /64 (a burst of 200, then 20 a
	// second): however slow the machine, what one /64 gets answered is
	// bounded by the burst and the time the flood took, and every
	// address of the /64 draws on the same bucket. (One request right
	// after the flood may find a token refilled: the bound, not its
	// answer, is the guarantee.)
	start := time.Now()
	answered, tooMany := 0, 0
	count := func(code int) {
		switch code {
		case http.StatusTooManyRequests:
			tooMany++
		case http.StatusBadRequest:
			answered++
		default:
			t.Fatalf("junk answered %d, neither 400 nor 429", code)
		}
	}
	for i := range 1000 {
		count(send(proxy, fmt.Sprintf("2001:db8:1:2:%x:%x::1", i/256+1, i%256+1)))
	}
	for range 10 { // yet another address of the same /64
		count(send(proxy, "2001:db8:1:2:ffff:ffff:ffff:ffff"))
	}
	if tooMany == 0 {
		t.Fatal("1010 junk requests from addresses of one IPv6 /64: none answered 429")
	}
	if limit := 200 + int(20*time.Since(start).Seconds()) + 1; answered > limit {
		t.Fatalf("one /64 got %d junk requests answered in %v; its limit allows %d", answered, time.Since(start), limit)
	}
	if got := send(proxy, "2001:db8:1:3::1"); got != http.StatusBadRequest {
		t.Errorf("an address of the next /64: %d, want 400 (its own limit)", got)
	}
	if got := send(clientFrom("127.0.0.2"), ""); got != http.StatusBadRequest {
		t.Errorf("the provider at its own address: %d, want 400 (its own limit)", got)
	}
}

// TestAttackBCLogoutConcurrentReplay: the same token sent 20 times at once
// to two instances sharing Redis is accepted exactly once.
func TestAttackBCLogoutConcurrentReplay(t *testing.T) {
	store := "store " + storeConfig(t, "redis")
	a, o, up := startOIDCSite(t, WithExtra("store", store))
	b := StartCaddy(t, up.Addr, oidcTemplate, WithExtra("issuer", o.Issuer), WithExtra("secret", opSecret),
		WithExtra("users", ""), WithExtra("store", store), WithExtra("testopts", ""))
	cl := NewClient(t, a.Site)
	loginWithSID(t, o, cl, "sid-race")
	token := o.Sign(t, nil, with(hydraLogoutClaims(o, "sid-race"), "exp", time.Now().Add(time.Minute).Unix()))
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 20 {
		target := a
		if i%2 == 1 {
			target = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := clientFrom(fmt.Sprintf("127.0.1.%d", i+1))
			<-start
			switch postFrom(t, client, target, token) {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusBadRequest:
				refused.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != 19 {
		t.Errorf("the same token 20 times at once on two instances: %d accepted, %d refused; want 1 and 19", ok.Load(), refused.Load())
	}
	if alive(t, cl) {
		t.Error("the session is still there")
	}
}
