package tests

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// registerPasskeyUI signs user in with the password on the browser's
// sessions page and adds a passkey there, then signs out.
func registerPasskeyUI(b *browser, site, user, password, name string) {
	b.t.Helper()
	b.navigate(site + "/.session/sessions")
	b.must("signing in "+user, chromedp.Do(b.ctx,
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), user),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
	))
	b.submit("submitting the login form", chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	b.must("adding a passkey for "+user, chromedp.Do(b.ctx,
		chromedp.WaitVisible(chromedp.CSS(`#passkey-add`)),
		chromedp.SetValue(chromedp.CSS(`#passkey-name`), name),
		chromedp.SetValue(chromedp.CSS(`#passkey-password`), password),
		chromedp.Click(chromedp.CSS(`#passkey-add`)),
		chromedp.WaitVisible(chromedp.CSS(`li[data-passkey]`)),
	))
	b.navigate(site + "/.session/logout")
	b.submit("signing out", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
}

// captured is an assertion the browser made, not yet sent, and the
// challenge cookie of its ceremony.
type captured struct {
	assertion map[string]any
	cookies   []*http.Cookie
}

func (c captured) with(field, value string) map[string]any {
	var a map[string]any
	raw, _ := json.Marshal(c.assertion)
	json.Unmarshal(raw, &a)
	a["response"].(map[string]any)[field] = value
	return a
}

// capture has the browser (at page) start a ceremony at optionsURL and sign
// its challenge with the passkey, and returns what it would have posted
// with the ceremony's cookie, taken from the browser.
func capture(b *browser, page, optionsURL string) captured {
	b.t.Helper()
	b.navigate(page)
	out := b.evalJS(`return JSON.stringify(await assertion(await options("` + optionsURL + `")));`)
	var c captured
	b.must("decoding the assertion", json.Unmarshal([]byte(out), &c.assertion))
	all, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.location().Scheme + "://" + b.location().Host + optionsURL}})
	b.must("reading cookies", err)
	for _, ck := range all.Cookies {
		if strings.HasSuffix(ck.Name, "~passkey") {
			c.cookies = append(c.cookies, &http.Cookie{Name: ck.Name, Value: ck.Value})
		}
	}
	if len(c.cookies) != 1 {
		b.t.Fatalf("the browser holds %d challenge cookies, want 1", len(c.cookies))
	}
	return c
}

// TestPasskeyAttacks tries to break the passkey endpoints with what a
// browser really produced (Chromium with a virtual authenticator), sent
// again, elsewhere, or changed, by a client of the attacker's: a replayed
// assertion, a phishing origin, a ceremony's cookie used for another, a
// credential presented under another user's handle, no user verification,
// cross-origin posts, and malformed bodies.
func TestPasskeyAttacks(t *testing.T) {
	up := StartUpstream(t)
	c, site := startPasskeySite(t, up, true)
	b := startBrowser(t)
	defer func() {
		if t.Failed() {
			t.Logf("caddy log:\n%s", c.Logs())
		}
	}()
	auth := addAuthenticator(b)
	evil := fmt.Sprintf("http://evil.localhost:%d", c.SitePort)

	// bob's passkey exists on the server; the authenticator then forgets
	// it, so that only alice's is there to sign with.
	registerPasskeyUI(b, site, "bob", bobPassword, "Bob's key")
	bobHandle := credentials(b, auth)[0].UserHandle
	_, err := chromedp.Call(b.ctx, cdpwebauthn.ClearCredentials, cdpwebauthn.ClearCredentialsParams{AuthenticatorID: auth})
	b.must("clearing the authenticator", err)
	// A session of alice's from before her passkey: the password alone.
	before := NewClient(t, site)
	before.MustLogin("alice", alicePassword)
	registerPasskeyUI(b, site, "alice", alicePassword, "Alice's key")
	// It may not change her passkeys, even with the password: setting the
	// passkey up signed it out (it proved only the password).
	if r := passkeyPost(before, "/.session/passkey/register", map[string]any{"password": alicePassword}); r.StatusCode != 401 || r.JSON(t)["error"] != "not signed in" {
		t.Errorf("a password-only session adding a passkey: %d %s", r.StatusCode, r.Body)
	}
	aliceID := base64.RawURLEncoding.EncodeToString(credentials(b, auth)[0].CredentialID)
	if r := passkeyPost(before, "/.session/passkey/remove", map[string]any{"id": aliceID, "password": alicePassword}); r.StatusCode != 401 {
		t.Errorf("a password-only session removing the passkey: %d %s", r.StatusCode, r.Body)
	}
	// Nor does the password alone sign her in any more.
	if r := NewClient(t, site).LoginJSON("alice", alicePassword); r.StatusCode != 401 || r.JSON(t)["error"] != "second factor required" {
		t.Errorf("the password alone: %d %s", r.StatusCode, r.Body)
	}

	attacker := NewClient(t, site)
	post := func(path string, cap captured, body map[string]any, headers ...string) *Response {
		t.Helper()
		return passkeyPost(attacker, path, body, append(headers, cookieHeader(cap.cookies))...)
	}
	login := site + "/.session/login"

	// 1. A credential of alice presented under bob's user handle: refused.
	cap := capture(b, login, "/.session/passkey/login")
	r := post("/.session/passkey/login", cap, map[string]any{"credential": cap.with("userHandle", base64.RawURLEncoding.EncodeToString(bobHandle))})
	if r.StatusCode != 401 || attacker.SessionCookie() != "" {
		t.Errorf("alice's credential under bob's handle: %d %s", r.StatusCode, r.Body)
	}

	// 2. Replay: the assertion works once; sent again with the same cookie
	// (the challenge is claimed), or with a fresh challenge, it is refused.
	cap = capture(b, login, "/.session/passkey/login")
	if r := post("/.session/passkey/login", cap, map[string]any{"credential": cap.assertion}); r.StatusCode != 200 || r.JSON(t)["user"] != "alice" {
		t.Fatalf("the captured assertion, once: %d %s", r.StatusCode, r.Body)
	}
	replayer := NewClient(t, site)
	if r := passkeyPost(replayer, "/.session/passkey/login", map[string]any{"credential": cap.assertion}, cookieHeader(cap.cookies)); r.StatusCode != 400 || replayer.SessionCookie() != "" {
		t.Errorf("the same assertion and cookie again: %d %s", r.StatusCode, r.Body)
	}
	if r := replayer.Get("/.session/passkey/login", "Accept: application/json"); r.StatusCode != 200 {
		t.Fatalf("options: %d", r.StatusCode)
	}
	if r := passkeyPost(replayer, "/.session/passkey/login", map[string]any{"credential": cap.assertion}); r.StatusCode != 401 || replayer.SessionCookie() != "" {
		t.Errorf("the assertion against a fresh challenge: %d %s", r.StatusCode, r.Body)
	}

	// 3. A ceremony's cookie for another ceremony: a login's cookie at the
	// second step, a registration's cookie at the login.
	cap = capture(b, login, "/.session/passkey/login")
	// stepper is alice signed in with her passkey (hwk mfa), as the
	// browser would be.
	stepper := NewClient(t, site)
	capS := capture(b, login, "/.session/passkey/login")
	if r := passkeyPost(stepper, "/.session/passkey/login", map[string]any{"credential": capS.assertion}, cookieHeader(capS.cookies)); r.StatusCode != 200 {
		t.Fatalf("passkey login: %d %s", r.StatusCode, r.Body)
	}
	if r := passkeyPost(stepper, "/.session/passkey/verify", map[string]any{"credential": cap.assertion}, cookieHeader(cap.cookies)); r.StatusCode != 400 {
		t.Errorf("a login's challenge cookie at the second step: %d %s", r.StatusCode, r.Body)
	}
	regCookies := passkeyPost(stepper, "/.session/passkey/register", map[string]any{"password": alicePassword})
	if regCookies.StatusCode != 200 {
		t.Fatalf("registration options: %d %s", regCookies.StatusCode, regCookies.Body)
	}
	cap = capture(b, login, "/.session/passkey/login")
	cross := captured{assertion: cap.assertion, cookies: regCookies.Cookies()}
	if r := post("/.session/passkey/login", cross, map[string]any{"credential": cross.assertion}); r.StatusCode != 400 {
		t.Errorf("a registration's challenge cookie at the login: %d %s", r.StatusCode, r.Body)
	}

	// 4. Phishing: a page on another origin (the same Caddy by another
	// name) relays the real site's challenge to the browser; the browser
	// signs it for the origin it is on, and the site refuses it.
	phisher := NewClient(t, site)
	opts := phisher.Get("/.session/passkey/login", "Accept: application/json")
	b.navigate(evil + "/.session/login")
	out := b.evalJS(`try { return JSON.stringify(await assertion(` + string(opts.Body) + `)); } catch (e) { return "refused by the browser: " + e.name; }`)
	if phished, found := strings.CutPrefix(out, "refused by the browser: "); found {
		t.Logf("Chromium itself refused the relying party from another origin: %s", phished)
	} else {
		var a map[string]any
		b.must("decoding the phished assertion", json.Unmarshal([]byte(out), &a))
		if r := passkeyPost(phisher, "/.session/passkey/login", map[string]any{"credential": a}); r.StatusCode != 401 || phisher.SessionCookie() != "" {
			t.Errorf("an assertion made on %s: %d %s", evil, r.StatusCode, r.Body)
		}
	}
	// The browser would not sign for the phishing origin; an assertion
	// made with the key for that origin (as a browser that did would
	// send it) is refused by the site, while the same key's assertion for
	// the site's own origin is taken: it is the origin that is refused.
	aliceCred := credentials(b, auth)[0]
	challengeOf := func(r *Response) string {
		t.Helper()
		var o struct {
			PublicKey struct {
				Challenge string `json:"challenge"`
			} `json:"publicKey"`
		}
		if r.StatusCode != 200 || json.Unmarshal(r.Body, &o) != nil || o.PublicKey.Challenge == "" {
			t.Fatalf("options: %d %s", r.StatusCode, r.Body)
		}
		return o.PublicKey.Challenge
	}
	phisher = NewClient(t, site)
	forged := forgeAssertion(t, aliceCred, challengeOf(phisher.Get("/.session/passkey/login", "Accept: application/json")), evil, "localhost", 1000)
	if r := passkeyPost(phisher, "/.session/passkey/login", map[string]any{"credential": forged}); r.StatusCode != 401 || phisher.SessionCookie() != "" {
		t.Errorf("an assertion for origin %s: %d %s", evil, r.StatusCode, r.Body)
	}
	forged = forgeAssertion(t, aliceCred, challengeOf(phisher.Get("/.session/passkey/login", "Accept: application/json")), site, "evil.localhost", 1001)
	if r := passkeyPost(phisher, "/.session/passkey/login", map[string]any{"credential": forged}); r.StatusCode != 401 || phisher.SessionCookie() != "" {
		t.Errorf("an assertion for relying party evil.localhost: %d %s", r.StatusCode, r.Body)
	}
	forged = forgeAssertion(t, aliceCred, challengeOf(phisher.Get("/.session/passkey/login", "Accept: application/json")), site, "localhost", 1002)
	if r := passkeyPost(phisher, "/.session/passkey/login", map[string]any{"credential": forged}); r.StatusCode != 200 {
		t.Fatalf("the control, an assertion for the site's own origin: %d %s", r.StatusCode, r.Body)
	}
	// Counter rollback by the same means: 1002 was taken, 1002 and 5 are not.
	for _, n := range []uint32{1002, 5} {
		cl := NewClient(t, site)
		forged = forgeAssertion(t, aliceCred, challengeOf(cl.Get("/.session/passkey/login", "Accept: application/json")), site, "localhost", n)
		if r := passkeyPost(cl, "/.session/passkey/login", map[string]any{"credential": forged}); r.StatusCode != 401 || cl.SessionCookie() != "" {
			t.Errorf("counter %d after 1002: %d %s", n, r.StatusCode, r.Body)
		}
	}
	if got := strings.Count(c.Logs(), "passkey sign counter went backwards (cloned authenticator?)"); got != 2 {
		t.Errorf("%d log lines of a counter that went backwards, want 2", got)
	}

	// And the phishing site's own ceremony (its host, the same server):
	// the configured origin is not its own.
	out = b.evalJS(`try { const a = await assertion(await options("/.session/passkey/login")); return await post("/.session/passkey/login", {credential: a}); } catch (e) { return "refused by the browser: " + e.name; }`)
	if !strings.HasPrefix(out, "401 ") && !strings.HasPrefix(out, "refused by the browser") {
		t.Errorf("a passkey login on %s: %s", evil, out)
	}
	t.Logf("a passkey login on %s: %s", evil, out)

	// 5. An authenticator that did not verify its user (UV flag clear).
	yes := true
	_, err = chromedp.Call(b.ctx, cdpwebauthn.SetResponseOverrideBits, cdpwebauthn.SetResponseOverrideBitsParams{AuthenticatorID: auth, IsBadUV: &yes})
	b.must("clearing the UV bit", err)
	cap = capture(b, login, "/.session/passkey/login")
	if r := post("/.session/passkey/login", cap, map[string]any{"credential": cap.assertion}); r.StatusCode != 401 {
		t.Errorf("no user verification: %d %s", r.StatusCode, r.Body)
	}
	_, err = chromedp.Call(b.ctx, cdpwebauthn.SetResponseOverrideBits, cdpwebauthn.SetResponseOverrideBitsParams{AuthenticatorID: auth})
	b.must("restoring the UV bit", err)

	// 6. Cross-origin posts are refused before anything is read.
	for _, path := range []string{"login", "register", "verify", "remove"} {
		r := stepper.Post("/.session/passkey/"+path, "application/json", `{}`, "Sec-Fetch-Site: cross-site", "Origin: https://evil.example")
		if r.StatusCode != 403 {
			t.Errorf("a cross-origin POST to passkey/%s: %d %s", path, r.StatusCode, r.Body)
		}
	}

	// 7. Bodies that are not what is wanted: 400, 413, 415, never a 500.
	for _, tc := range []struct {
		path, contentType, body string
		want                    int
	}{
		{"login", "application/json", `{"credential":`, 400},
		{"login", "application/json", `[1,2]`, 400},
		{"login", "application/json", `{"credential":{"id":"x","response":{}}}`, 400}, // no ceremony
		{"login", "text/plain", `{}`, 415},
		{"login", "application/json", `{"credential":"` + strings.Repeat("a", 70<<10) + `"}`, 413},
		{"register", "application/json", `{"password":"x"}`, 401},
		{"register", "application/json", `{"credential":{},"name":"` + strings.Repeat("n", 65) + `"}`, 400},
		{"remove", "application/json", `{"id":"!!!","password":"x"}`, 400},
		{"remove", "application/x-www-form-urlencoded", `id=AAAA&password=` + alicePassword, 404},
	} {
		if r := stepper.Post("/.session/passkey/"+tc.path, tc.contentType, tc.body, "Accept: application/json"); r.StatusCode != tc.want {
			t.Errorf("POST passkey/%s %s %.40q: %d %s, want %d", tc.path, tc.contentType, tc.body, r.StatusCode, r.Body, tc.want)
		}
	}
	// A login's options with a captured cookie, then a garbage credential:
	// 401, the challenge spent.
	cap = capture(b, login, "/.session/passkey/login")
	if r := post("/.session/passkey/login", cap, map[string]any{"credential": cap.with("signature", "AAAA")}); r.StatusCode != 401 {
		t.Errorf("a bad signature: %d %s", r.StatusCode, r.Body)
	}
	if r := post("/.session/passkey/login", cap, map[string]any{"credential": cap.assertion}); r.StatusCode != 400 {
		t.Errorf("the good assertion after a bad one spent its challenge: %d %s", r.StatusCode, r.Body)
	}
	if strings.Contains(c.Logs(), `"level":"error"`) {
		t.Errorf("error lines in the log")
	}
}
