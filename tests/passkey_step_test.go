package tests

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// readEcho reads the upstream's JSON echo from the browser's page.
func readEcho(b *browser) Echo {
	b.t.Helper()
	var echo Echo
	if err := json.Unmarshal([]byte(b.eval(`document.querySelector("pre") ? document.querySelector("pre").innerText : document.body.innerText`)), &echo); err != nil {
		b.t.Fatalf("not the upstream's echo: %v", err)
	}
	return echo
}

// TestPasskeySecondStep: once alice has a passkey, her password alone no
// longer signs her in; the second step's page offers "Use a passkey", and
// with it she lands where she was going, the upstream seeing the password
// and the passkey (X-Session-Amr: pwd hwk mfa). A passkey login alone
// carries hwk mfa.
func TestPasskeySecondStep(t *testing.T) {
	up := StartUpstream(t)
	c, site := startPasskeySite(t, up, false)
	b := startBrowser(t)
	defer func() {
		if t.Failed() {
			t.Logf("caddy log:\n%s", c.Logs())
		}
	}()
	addAuthenticator(b)
	registerPasskeyUI(b, site, "alice", alicePassword, "Phone")

	b.navigate(site + "/wiki/page?x=1")
	b.must("signing in with the password", chromedp.Do(b.ctx,
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), alicePassword),
	))
	b.submit("submitting the password", chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	if u := b.location(); u.Path != "/.session/mfa" {
		t.Fatalf("after the password alice is at %s, want the second step", u)
	}
	if code, _ := NewClient(t, site).Whoami(); code != 401 {
		t.Fatal("signed in")
	}
	b.must("waiting for the passkey button", chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS(`#passkey-verify`))))
	b.screenshot("passkey-mfa")
	b.noConsoleProblems("second step page")
	b.must("using the passkey", chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(`#passkey-verify`))))
	waitFor(t, 10e9, "the page asked for", func() bool { return b.location().Path == "/wiki/page" })
	echo := readEcho(b)
	if got := echo.Headers["X-Session-User"]; len(got) != 1 || got[0] != "alice" {
		t.Errorf("upstream saw X-Session-User %q", got)
	}
	if got := strings.Join(echo.Headers["X-Session-Amr"], ","); got != "pwd hwk mfa" {
		t.Errorf("upstream saw X-Session-Amr %q, want pwd hwk mfa", got)
	}
	b.noConsoleProblems("after the second step")

	// The passkey alone: hwk mfa.
	b.navigate(site + "/.session/logout")
	b.submit("signing out", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.navigate(site + "/wiki/other")
	b.must("signing in with the passkey", chromedp.Do(b.ctx,
		chromedp.WaitVisible(chromedp.CSS(`#passkey-login`)),
		chromedp.Click(chromedp.CSS(`#passkey-login`)),
	))
	waitFor(t, 10e9, "the page asked for", func() bool { return b.location().Path == "/wiki/other" })
	if got := strings.Join(readEcho(b).Headers["X-Session-Amr"], ","); got != "hwk mfa" {
		t.Errorf("after a passkey login the upstream saw X-Session-Amr %q, want hwk mfa", got)
	}
}

// TestPasskeyUserRemoved: a user removed from the configuration cannot
// sign in with a passkey they still hold (bolt keeps the passkey across
// the reload: it is the user that is gone).
func TestPasskeyUserRemoved(t *testing.T) {
	up := StartUpstream(t)
	c, site := startPasskeySite(t, up, false, WithExtra("store", "bolt"))
	b := startBrowser(t)
	defer func() {
		if t.Failed() {
			t.Logf("caddy log:\n%s", c.Logs())
		}
	}()
	addAuthenticator(b)
	registerPasskeyUI(b, site, "alice", alicePassword, "Phone")
	c.Extra["alice"] = ""
	c.Reload(passkeySite)
	b.navigate(site + "/.session/login")
	b.must("signing in with the passkey", chromedp.Do(b.ctx,
		chromedp.WaitVisible(chromedp.CSS(`#passkey-login`)),
		chromedp.Click(chromedp.CSS(`#passkey-login`)),
		chromedp.WaitVisible(chromedp.CSS(`#passkey-error`)),
	))
	if !strings.Contains(c.Logs(), "passkey login refused: the user is no longer configured") {
		t.Errorf("no log line of the removed user")
	}
}
