package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestOIDCBrowserLogin walks a real headless Chromium through a provider
// login with the keyboard only: the login page's provider link (reached
// with Tab, followed with Enter), the provider's login form, the callback,
// and the page behind the session; then the logout, which goes on to the
// provider's logout and back (the logout form's CSP lets it). No console
// error or CSP violation on the way.
func TestOIDCBrowserLogin(t *testing.T) {
	c, o, _ := startOIDCSite(t, WithExtra("testopts", "provider_logout on"))

	b := startBrowser(t)
	bctx, console := b.ctx, b.console
	defer func() {
		if t.Failed() {
			t.Logf("caddy log:\n%s", c.Logs())
		}
	}()

	// The login page: provider links only (no local users).
	b.navigate(c.Site + "/private?x=1")
	b.must("waiting for the provider link", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`nav[aria-label] a.provider`))))
	n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("input[type=password]").length`))
	b.must("counting password fields", err)
	if n != 0 {
		t.Errorf("%d password fields on a page without local users", n)
	}
	// Tab reaches the first provider link; its accessible text is its label.
	b.must("tab", chromedp.Do(bctx, chromedp.KeyEvent(kb.Tab)))
	focused, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.activeElement.tagName + " " + document.activeElement.textContent`))
	b.must("active element", err)
	if focused != "A Sign in with Test" {
		t.Fatalf("Tab focused %q, want the provider link", focused)
	}
	_, err = chromedp.RunResponse(bctx, chromedp.KeyEvent(kb.Enter))
	b.must("following the provider link", err)

	// The provider's own login form.
	b.must("waiting for the provider's form", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#username`))))
	loc, err := chromedp.Run(bctx, chromedp.Location())
	b.must("location", err)
	if strings.HasPrefix(loc, c.Site) {
		t.Fatalf("still at Caddy: %s", loc)
	}
	b.must("typing at the provider", chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "alice-pw"),
	))
	_, err = chromedp.RunResponse(bctx, chromedp.KeyEvent(kb.Enter))
	b.must("submitting the provider's form", err)

	// Back at the page asked for, as alice.
	b.must("waiting for the upstream's page", chromedp.Do(bctx, chromedp.WaitReady(`body`)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		loc, err = chromedp.Run(bctx, chromedp.Location())
		b.must("location", err)
		if loc == c.Site+"/private?x=1" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if loc != c.Site+"/private?x=1" {
		t.Fatalf("after the login at %s, want %s/private?x=1", loc, c.Site)
	}
	body, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	b.must("reading the page", err)
	if !strings.Contains(body, `"X-Session-User":["test:alice"]`) {
		t.Errorf("the upstream did not see alice:\n%s", body)
	}

	// Sign out: here, at the provider, and back to the site, whose root
	// wants a login again.
	_, err = chromedp.Run(bctx, chromedp.NavigateResponse(c.Site+"/.session/logout"))
	b.must("navigating to the logout page", err)
	b.must("waiting for the Sign out button", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`button[type="submit"]`))))
	_, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.must("signing out", err)
	deadline = time.Now().Add(10 * time.Second)
	for {
		loc, err = chromedp.Run(bctx, chromedp.Location())
		b.must("location", err)
		if strings.HasPrefix(loc, c.Site+"/.session/login") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.HasPrefix(loc, c.Site+"/.session/login") {
		t.Fatalf("after signing out at %s, want the login page", loc)
	}
	entries, _ := console.since(0)
	for _, e := range entries {
		if strings.Contains(e.Text, "Content Security Policy") {
			t.Errorf("CSP: %s", e)
		}
		if e.isProblem() && (strings.HasPrefix(e.URL, c.Site) || strings.HasPrefix(e.URL, o.Issuer+"/end_session")) {
			t.Errorf("console: %s", e)
		}
	}
}
