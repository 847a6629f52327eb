package tests

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSessionsPageRevokes drives <prefix>/sessions in a real
// headless Chromium: signed in here and on a phone, the user sees both
// (this one marked), signs out everywhere else (the phone is out), then
// signs out this one (back to the login page).
func TestBrowserSessionsPageRevokes(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "bolt", "")
	phone := NewClient(t, c.Site)
	if r := phone.LoginJSON("alice", alicePassword, "User-Agent: Phone/2.0 (Android)"); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}

	b := startBrowser(t)
	bctx, console := b.ctx, b.console
	defer func() {
		if t.Failed() {
			t.Logf("caddy log:\n%s", c.Logs())
		}
	}()

	// The page wants a user: the login page, then back to the list.
	b.navigate(c.Site + "/.session/sessions")
	b.must("signing in", chromedp.Do(bctx,
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), alicePassword),
	))
	resp, err := chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.must("submitting the login form", err)
	if resp.Status != 200 || !strings.HasSuffix(resp.URL, "/.session/sessions") {
		t.Fatalf("after login: %d at %s, want the sessions page", resp.Status, resp.URL)
	}
	b.must("waiting for the list", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`li[aria-current="true"]`))))
	if n := b.eval(`String(document.querySelectorAll("li[data-handle]").length)`); n != "2" {
		t.Fatalf("the page lists %s sessions, want 2", n)
	}
	if this := b.eval(`document.querySelector('li[aria-current="true"]').innerText`); !strings.Contains(this, "This browser") || !strings.Contains(this, "HeadlessChrome") {
		t.Errorf("the marked session reads %q", this)
	}
	if other := b.eval(`document.querySelector('li:not([aria-current])').innerText`); !strings.Contains(other, "Phone/2.0 (Android)") || !strings.Contains(other, "127.0.0.1") {
		t.Errorf("the other session reads %q", other)
	}
	// The page's own style applied under its CSP: the list is flex rows.
	if d := b.eval(`getComputedStyle(document.querySelector("li")).display`); d != "flex" {
		t.Errorf("li display %q, want flex: the page's style did not apply (CSP nonce?)", d)
	}

	// Sign out everywhere else: the phone is out, this browser is not.
	resp, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`input[name="others"] + button`)))
	b.must("signing out everywhere else", err)
	if resp.Status != 200 {
		t.Fatalf("after signing out everywhere else: %d", resp.Status)
	}
	b.must("waiting for the notice", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`[role="status"]`))))
	if msg := b.eval(`document.querySelector('[role="status"]').innerText`); msg != "Signed out 1 session." {
		t.Errorf("notice %q", msg)
	}
	if n := b.eval(`String(document.querySelectorAll("li[data-handle]").length)`); n != "1" {
		t.Errorf("after signing out everywhere else the page lists %s sessions, want 1", n)
	}
	if code, _ := phone.Whoami(); code != 401 {
		t.Fatal("the phone is still signed in")
	}

	// Sign out this one: back to the login page, signed out.
	resp, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`li[aria-current="true"] button`)))
	b.must("signing out this one", err)
	if !strings.Contains(resp.URL, "/.session/login") {
		t.Fatalf("after signing out this one the browser is at %s, want the login page", resp.URL)
	}
	resp, err = chromedp.Run(bctx, chromedp.NavigateResponse(c.Site+"/.session/whoami"))
	b.must("whoami", err)
	if resp.Status != 401 {
		t.Fatalf("whoami after signing out: %d, want 401", resp.Status)
	}
	entries, _ := console.since(0)
	for _, e := range entries {
		if e.isProblem() && !(e.Kind == "log" && e.Source == "network" && strings.Contains(e.Text, "status of 401")) {
			t.Errorf("console: %s", e)
		}
	}
}
