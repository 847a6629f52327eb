// Attacks on the OIDC login: state, redirect URI, allow lists.

package tests

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// TestAttackOIDCStateGames: a callback with another browser's state, a
// state cookie tossed at / by a sibling app, a redirect cut to a
// dangerous prefix, a Host header in redirect_uri.
func TestAttackOIDCStateGames(t *testing.T) {
	c, _, _ := startAttackNamesSite(t)

	t.Run("another browser's state", func(t *testing.T) {
		attacker, victim := NewClient(t, c.Site), NewClient(t, c.Site)
		victim.Get("/.session/login?provider=test", "Accept: text/html") // a login of her own in progress
		cb := StartOIDCLogin(t, attacker, "test", "", "bob", "bob-pw")
		if r := FinishOIDCLogin(t, victim, cb); r.StatusCode/100 != 4 {
			t.Errorf("the attacker's callback in the victim's browser: %d; want a 4xx", r.StatusCode)
		}
		if signedIn(t, victim) {
			t.Error("the victim is signed in as the attacker (login CSRF)")
		}
		// Nor does it switch a signed-in victim's account.
		signedInVictim := NewClient(t, c.Site)
		signedInVictim.MustLogin("alice", alicePassword)
		FinishOIDCLogin(t, signedInVictim, cb)
		if u, s := who(t, signedInVictim); u != "alice" || s != "password" {
			t.Errorf("the attacker's callback made the signed-in victim %q from %q", u, s)
		}
		// The attacker's own browser can still finish: the victim's visit
		// did not spend it, but then it is used once.
		if r := FinishOIDCLogin(t, attacker, cb); r.StatusCode != http.StatusSeeOther {
			t.Errorf("the attacker's own callback: %d", r.StatusCode)
		}
		if r := FinishOIDCLogin(t, attacker, cb); r.StatusCode/100 != 4 {
			t.Errorf("the same callback twice: %d; want a 4xx", r.StatusCode)
		}
	})

	t.Run("tossed junk state cookies", func(t *testing.T) {
		cl := NewClient(t, c.Site)
		// A sibling app on the host sets cookies named like state
		// cookies at / (they cannot be expired at <prefix>/), more than
		// the bound.
		root := mustURL(t, c.Site+"/")
		var tossed []*http.Cookie
		for i := range 6 {
			tossed = append(tossed, &http.Cookie{Name: "caddy_session_oidc_" + strings.Repeat(strconv.Itoa(i), 12), Value: "junk", Path: "/"})
		}
		cl.Jar.SetCookies(root, tossed)
		r := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "/after", "alice", "alice-pw"))
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/after" {
			t.Errorf("a login past tossed state cookies: %d to %q", r.StatusCode, r.Header.Get("Location"))
		}
	})

	t.Run("redirects cut to a prefix", func(t *testing.T) {
		long := strings.Repeat("a", 1100)
		for _, redirect := range []string{
			"/" + long + "//evil.example",
			"/" + strings.Repeat("a", 1000) + "?" + long + "//evil.example",
			"/%2F%2Fevil.example?" + long,
			"/%5Cevil.example?" + long,
			"/%09/evil.example?" + long,
			"/.." + "?" + long,
			"/" + strings.Repeat("a", 1022) + "/" + "/evil.example",
			"/" + strings.Repeat("/", 1020) + "evil.example?x=" + long,
		} {
			cl := NewClient(t, c.Site)
			r := cl.Get("/.session/login?provider=test&redirect="+url.QueryEscape(redirect), "Accept: text/html")
			if r.StatusCode != http.StatusFound {
				continue // refused at the start: nothing to land on
			}
			cl2 := NewClient(t, c.Site)
			r = FinishOIDCLogin(t, cl2, StartOIDCLogin(t, cl2, "test", redirect, "alice", "alice-pw"))
			loc := r.Header.Get("Location")
			to := mustURL(t, c.Site+"/x").ResolveReference(mustURL(t, loc))
			if r.StatusCode != http.StatusSeeOther || to.Host != mustURL(t, c.Site).Host || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`) {
				t.Errorf("redirect %q… lands on %q (%d), host %q", redirect[:40], shortenT(loc, 80), r.StatusCode, to.Host)
			}
		}
	})
}

func shortenT(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// TestAttackOIDCHostInRedirectURI: on a site that answers any Host, a
// login started with a forged Host sends the provider a redirect_uri at
// that host; the provider must refuse it, and the start must not be
// cached for others.
func TestAttackOIDCHostInRedirectURI(t *testing.T) {
	o := StartOP(t, 0)
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, anyHostTemplate, WithExtra("issuer", o.Issuer), WithExtra("secret", opSecret))
	cl := NewClient(t, c.Site)
	req := cl.NewRequest("GET", "/.session/login?provider=test", nil, "Accept: text/html")
	req.Host = "evil.example"
	r := cl.Do(req)
	if r.StatusCode != http.StatusFound {
		t.Fatalf("start: %d %s", r.StatusCode, r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") && !strings.Contains(cc, "private") {
		t.Errorf("the login start with a Host of the client's choosing is cacheable: Cache-Control %q", cc)
	}
	resp, err := cl.Client.Get(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); loc != nil && loc.Host == "evil.example" {
		t.Errorf("the provider sends the browser to %s", loc)
	}
}

// TestAttackOIDCAllowLists: allow_domains example.com; mallory's email is
// set by the provider (verified) to look-alikes of an example.com
// address. Only exact, ASCII-case-insensitive, verified matches pass.
func TestAttackOIDCAllowLists(t *testing.T) {
	c, o, _ := startOIDCSite(t)
	login := func(t *testing.T, change func(claims map[string]any)) int {
		t.Helper()
		o.TamperUserinfo(t, change)
		cl := NewClient(t, c.Site)
		return FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "", "mallory", "mallory-pw")).StatusCode
	}
	for _, tt := range []struct {
		email string
		want  int
	}{
		{"mallory@example.com", http.StatusSeeOther},
		{"mallory@EXAMPLE.com", http.StatusSeeOther},
		{"mallory@example.com.", http.StatusForbidden},
		{"mallory@sub.example.com", http.StatusForbidden},
		{"mallory@evilexample.com", http.StatusForbidden},
		{"mallory@ex\u0430mple.com", http.StatusForbidden},         // Cyrillic а
		{"mallory@\uFF45xample.com", http.StatusForbidden},         // fullwidth e
		{"mallory@example.com\u0000", http.StatusForbidden},        // NUL
		{"mallory@example.com ", http.StatusForbidden},             // space
		{"mallory@evil.example@example.com", http.StatusForbidden}, // not one address
		{"mallory@example.com@evil.example", http.StatusForbidden},
		{"@example.com", http.StatusForbidden},
	} {
		t.Run(tt.email, func(t *testing.T) {
			if got := login(t, func(claims map[string]any) { claims["email"] = tt.email; claims["email_verified"] = true }); got != tt.want {
				t.Errorf("verified email %q against allow_domains example.com: %d; want %d", tt.email, got, tt.want)
			}
		})
	}
	for _, v := range []any{"TRUE", " true", "true ", "yes", 1, 1.0, map[string]any{"value": true}} {
		t.Run("email_verified "+strings.TrimSpace(strings.ReplaceAll(strconv.Quote(strings.TrimSpace(toString(v))), `"`, "'")), func(t *testing.T) {
			if got := login(t, func(claims map[string]any) { claims["email_verified"] = v }); got != http.StatusForbidden {
				t.Errorf("email_verified %#v: %d; want 403", v, got)
			}
		})
	}
	// Userinfo fetched by us: its sub must be the ID token's.
	t.Run("userinfo for another sub", func(t *testing.T) {
		o.TamperUserinfo(t, func(claims map[string]any) { claims["sub"] = "alice"; claims["email_verified"] = true })
		cl := NewClient(t, c.Site)
		cl.Allow5xx = true // a provider's answer that does not verify is a 502
		r := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "", "mallory", "mallory-pw"))
		if r.StatusCode != http.StatusBadGateway || !strings.Contains(string(r.Body), "could not be verified") {
			t.Errorf("userinfo naming another sub: %d; want 502, not verified", r.StatusCode)
		}
		if status, u := cl.Whoami(); status == http.StatusOK {
			t.Errorf("userinfo naming another sub was taken: signed in as %q", u)
		}
	})
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return "object"
}

// TestAttackOIDCAllowEmailsUnicode: allow_emails compares exactly but for
// ASCII case: an upper-case non-ASCII letter, or the Unicode form of an
// IDN listed in its xn-- form, is another address (refused), never a
// look-alike that passes.
func TestAttackOIDCAllowEmailsUnicode(t *testing.T) {
	c, o, _ := startOIDCSite(t, WithExtra("testopts", "allow_emails åsa@other.example a@xn--bcher-kva.example"))
	for _, tt := range []struct {
		email string
		want  int
	}{
		{"åsa@other.example", http.StatusSeeOther},
		{"åsa@OTHER.example", http.StatusSeeOther},
		{"ÅSA@other.example", http.StatusForbidden},
		{"a\u030asa@other.example", http.StatusForbidden}, // å decomposed
		{"a@xn--bcher-kva.example", http.StatusSeeOther},
		{"a@XN--BCHER-KVA.example", http.StatusSeeOther},
		{"a@bücher.example", http.StatusForbidden},
		{"a@xn--bcher-kva.example.", http.StatusForbidden},
	} {
		t.Run(tt.email, func(t *testing.T) {
			o.TamperUserinfo(t, func(claims map[string]any) { claims["email"] = tt.email; claims["email_verified"] = true })
			cl := NewClient(t, c.Site)
			if got := FinishOIDCLogin(t, cl, StartOIDCLogin(t, cl, "test", "", "mallory", "mallory-pw")).StatusCode; got != tt.want {
				t.Errorf("verified email %q against allow_emails åsa@other.example a@xn--bcher-kva.example: %d; want %d", tt.email, got, tt.want)
			}
		})
	}
}
