package tests

import (
	"encoding/json"
	"strings"
	"testing"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// TestPasskeyBrowser drives a real Chromium with a virtual authenticator
// (a device with a screen lock) through passkeys: alice signs in with her
// password, adds a passkey from the sessions page (the password again),
// signs out, and signs in with "Sign in with a passkey" alone (no user
// name, no password), landing where she was going with the upstream
// seeing her; the passkey's last use shows; an authenticator whose counter
// went backwards (a copy of the key) is refused; she removes the passkey
// (the password again), and the passkey no longer signs her in.
func TestPasskeyBrowser(t *testing.T) {
	up := StartUpstream(t)
	c, site := startPasskeySite(t, up, false)
	b := startBrowser(t)
	defer func() {
		if t.Failed() {
			t.Logf("caddy log:\n%s", c.Logs())
		}
	}()
	auth := addAuthenticator(b)
	// The site reached by its IP address: no relying party (an RP ID is a
	// name), a 400 that says so.
	if r := NewClient(t, c.Site).Get("/.session/passkey/login", "Accept: application/json"); r.StatusCode != 400 || !strings.Contains(string(r.Body), "reach the site by its name") {
		t.Errorf("passkey options at %s: %d %s", c.Site, r.StatusCode, r.Body)
	}

	// Signed in with the password, the sessions page has no passkey yet.
	b.navigate(site + "/.session/sessions")
	b.must("signing in", chromedp.Do(b.ctx,
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), alicePassword),
	))
	if s := b.submit("submitting the login form", chromedp.Click(chromedp.CSS(`form button[type="submit"]`))); s != 200 {
		t.Fatalf("after login: %d at %s", s, b.location())
	}
	b.must("waiting for the passkey form", chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS(`#passkey-add`))))
	if got := b.text(`#no-passkeys`); got != "You have no passkey yet." {
		t.Errorf("passkeys section says %q", got)
	}
	b.screenshot("passkey-sessions-empty")
	b.noConsoleProblems("sessions page")

	// A wrong password adds nothing and says so.
	b.must("a wrong password", chromedp.Do(b.ctx,
		chromedp.SendKeys(chromedp.CSS(`#passkey-name`), "Laptop"),
		chromedp.SendKeys(chromedp.CSS(`#passkey-password`), "not-"+alicePassword),
		chromedp.Click(chromedp.CSS(`#passkey-add`)),
		chromedp.WaitVisible(chromedp.CSS(`#passkey-error`)),
	))
	if got := b.text(`#passkey-error`); !strings.Contains(got, "wrong password") {
		t.Errorf("after a wrong password the page says %q", got)
	}
	if n := len(credentials(b, auth)); n != 0 {
		t.Fatalf("a wrong password made %d credentials on the authenticator", n)
	}
	b.noConsoleProblems("wrong password", 401)

	// The right password: the passkey is made and listed.
	b.must("adding a passkey", chromedp.Do(b.ctx,
		chromedp.SetValue(chromedp.CSS(`#passkey-password`), alicePassword),
		chromedp.Click(chromedp.CSS(`#passkey-add`)),
		chromedp.WaitVisible(chromedp.CSS(`li[data-passkey]`)),
	))
	if u := b.location(); u.Query().Get("passkey") != "added" {
		t.Errorf("after adding, the browser is at %s", u)
	}
	row := b.text(`li[data-passkey]`)
	if !strings.Contains(row, "Laptop") || !strings.Contains(row, "never used") || !strings.Contains(row, "added ") {
		t.Errorf("the passkey's row reads %q", row)
	}
	if got := b.text(`#passkeys [role="status"]`); got != "Passkey added." {
		t.Errorf("notice %q", got)
	}
	b.screenshot("passkey-sessions")
	b.noConsoleProblems("passkey added")

	creds := credentials(b, auth)
	if len(creds) != 1 {
		t.Fatalf("the authenticator holds %d credentials, want 1", len(creds))
	}
	cred := creds[0]
	if !cred.IsResidentCredential || cred.RpID != "localhost" || len(cred.UserHandle) != 32 || strings.Contains(string(cred.UserHandle), "alice") {
		t.Errorf("credential: resident %v, rp %q, user handle %x: want a discoverable credential of localhost with a 32-byte random handle", cred.IsResidentCredential, cred.RpID, cred.UserHandle)
	}

	// Signed out, the login page offers the passkey.
	b.navigate(site + "/.session/logout")
	b.submit("signing out", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.navigate(site + "/some/page?x=1")
	b.must("waiting for the passkey button", chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS(`#passkey-login`))))
	if got := b.text(`#passkey-login`); got != "Sign in with a passkey" {
		t.Errorf("button %q", got)
	}
	b.screenshot("passkey-login")
	b.noConsoleProblems("login page")

	// No user name, no password: the passkey alone.
	signInWithPasskey := func(step string) {
		t.Helper()
		b.must(step, chromedp.Do(b.ctx,
			chromedp.WaitVisible(chromedp.CSS(`#passkey-login`)),
			chromedp.Click(chromedp.CSS(`#passkey-login`)),
		))
	}
	signInWithPasskey("signing in with the passkey")
	waitFor(t, 10e9, "the page asked for", func() bool { return b.location().Path == "/some/page" })
	if u := b.location(); u.RawQuery != "x=1" {
		t.Errorf("after the passkey login the browser is at %s", u)
	}
	var echo Echo
	if err := json.Unmarshal([]byte(b.eval(`document.querySelector("pre") ? document.querySelector("pre").innerText : document.body.innerText`)), &echo); err != nil {
		t.Fatalf("not the upstream's echo: %v", err)
	}
	if got := echo.Headers["X-Session-User"]; len(got) != 1 || got[0] != "alice" {
		t.Errorf("upstream saw X-Session-User %q, want [alice]", got)
	}
	b.noConsoleProblems("passkey login")
	if !strings.Contains(c.Logs(), `"method":"passkey"`) {
		t.Errorf("no log line of the passkey login")
	}

	// The sessions page shows the passkey's last use.
	b.navigate(site + "/.session/sessions")
	if row := b.text(`li[data-passkey]`); !strings.Contains(row, "last used ") {
		t.Errorf("after a login the passkey's row reads %q", row)
	}

	// A copy of the key with an older counter (a cloned authenticator) is
	// refused, and the log says why.
	stored := credentials(b, auth)[0]
	if stored.SignCount < 2 {
		t.Fatalf("sign count %v after a registration and a login", stored.SignCount)
	}
	// A copy as the authenticator would hold it, but for the counter.
	copyOf := func(c *cdpwebauthn.Credential, count float64) *credentialCopy {
		return &credentialCopy{CredentialID: c.CredentialID, IsResidentCredential: c.IsResidentCredential, RpID: c.RpID,
			PrivateKey: c.PrivateKey, UserHandle: c.UserHandle, SignCount: count}
	}
	old := copyOf(stored, 0)
	_, err := chromedp.Call(b.ctx, cdpwebauthn.RemoveCredential, cdpwebauthn.RemoveCredentialParams{AuthenticatorID: auth, CredentialID: stored.CredentialID})
	b.must("removing the credential", err)
	_, err = chromedp.Call(b.ctx, addCredential, addCredentialParams{AuthenticatorID: auth, Credential: old})
	b.must("adding the older copy", err)
	b.navigate(site + "/.session/logout")
	b.submit("signing out", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.navigate(site + "/.session/login")
	signInWithPasskey("signing in with the older copy")
	b.must("waiting for the error", chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS(`#passkey-error`))))
	if got := b.text(`#passkey-error`); !strings.Contains(got, "passkey refused") {
		t.Errorf("the older copy: the page says %q", got)
	}
	if !strings.Contains(c.Logs(), "passkey sign counter went backwards (cloned authenticator?)") {
		t.Errorf("no log line of the counter that went backwards")
	}
	b.noConsoleProblems("older copy", 401)
	// The real key, counting on, still works.
	current := copyOf(stored, stored.SignCount+10)
	_, err = chromedp.Call(b.ctx, cdpwebauthn.RemoveCredential, cdpwebauthn.RemoveCredentialParams{AuthenticatorID: auth, CredentialID: stored.CredentialID})
	b.must("removing the older copy", err)
	_, err = chromedp.Call(b.ctx, addCredential, addCredentialParams{AuthenticatorID: auth, Credential: current})
	b.must("adding the key back", err)
	b.navigate(site + "/.session/login?redirect=/.session/sessions")
	signInWithPasskey("signing in with the key")
	waitFor(t, 10e9, "the sessions page", func() bool { return b.location().Path == "/.session/sessions" })

	// Removing needs the password; then the passkey is gone.
	b.must("removing the passkey", chromedp.Do(b.ctx,
		chromedp.WaitVisible(chromedp.CSS(`li[data-passkey] input[name="password"]`)),
		chromedp.SendKeys(chromedp.CSS(`li[data-passkey] input[name="password"]`), alicePassword),
	))
	if s := b.submit("removing", chromedp.Click(chromedp.CSS(`li[data-passkey] button`))); s != 200 {
		t.Fatalf("after removing: %d", s)
	}
	if got := b.text(`#passkeys [role="status"]`); got != "Passkey removed." {
		t.Errorf("notice %q", got)
	}
	if n := b.eval(`String(document.querySelectorAll("li[data-passkey]").length)`); n != "0" {
		t.Errorf("%s passkeys listed after removing", n)
	}
	b.screenshot("passkey-sessions-removed")

	// The authenticator still holds the key, but it signs no one in.
	b.navigate(site + "/.session/logout")
	b.submit("signing out", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.navigate(site + "/.session/login")
	signInWithPasskey("signing in with a removed passkey")
	b.must("waiting for the error", chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS(`#passkey-error`))))
	if got := b.text(`#passkey-error`); !strings.Contains(got, "passkey refused") {
		t.Errorf("a removed passkey: the page says %q", got)
	}
	b.screenshot("passkey-login-refused")
	if code, _ := NewClient(t, site).Whoami(); code != 401 {
		t.Errorf("whoami %d", code)
	}
	b.noConsoleProblems("removed passkey", 401)
}
