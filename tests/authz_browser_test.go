package tests

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserForbiddenPage: in a real Chromium, a user a rule refuses
// sees the 403 page in the login page's style (its nonce-tagged style
// applies, nothing breaks the CSP), and its button signs them out and
// back in as someone else, landing on the page they were refused.
func TestBrowserForbiddenPage(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, rulesTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))

	b := startBrowser(t)
	bctx, console := b.ctx, b.console
	defer func() {
		if t.Failed() {
			t.Logf("caddy log:\n%s", c.Logs())
		}
	}()
	signIn := func(user, password string) {
		t.Helper()
		b.must("signing in as "+user, chromedp.Do(bctx,
			chromedp.WaitVisible(chromedp.CSS(`#username`)),
			chromedp.Clear(chromedp.CSS(`#username`)),
			chromedp.SendKeys(chromedp.CSS(`#username`), user),
			chromedp.SendKeys(chromedp.CSS(`#password`), password),
		))
		_, err := chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
		b.must("submitting the login form", err)
	}

	// bob (staff) asks for an admin page: the login page, then the 403 page.
	b.navigate(c.Site + "/admin/x?y=1")
	signIn("bob", bobPassword)
	if u := b.location(); u.Path != "/admin/x" || u.RawQuery != "y=1" {
		t.Fatalf("after login the browser is at %s, want /admin/x?y=1", u)
	}
	resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(c.Site+"/admin/x?y=1"))
	b.must("reloading /admin/x", err)
	if resp.Status != 403 {
		t.Fatalf("bob on /admin/x: %d, want 403", resp.Status)
	}
	title, err := chromedp.Run(bctx, chromedp.Title())
	b.must("title", err)
	text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`main p`)))
	b.must("reading the page", err)
	if title != "Access denied" || !strings.Contains(text, "signed in as bob") {
		t.Errorf("the 403 page: title %q, text %q", title, text)
	}
	display, err := chromedp.Run(bctx, chromedp.Evaluate[string](`getComputedStyle(document.body).display`))
	b.must("reading the style", err)
	if display != "flex" {
		t.Errorf("body display %q, want flex: the page's style did not apply (CSP nonce?)", display)
	}
	entries, _ := console.since(0)
	for _, e := range entries {
		if e.isProblem() && !(e.Kind == "log" && e.Source == "network" && strings.Contains(e.Text, "status of 403")) {
			t.Errorf("console: %s", e)
		}
	}
	if up.Requests.Load() != 0 {
		t.Errorf("%d requests reached the upstream", up.Requests.Load())
	}

	// "Sign in as someone else": signed out, to the login page that goes
	// back to the page; alice, an admin, gets it.
	_, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.must("clicking Sign in as someone else", err)
	if u := b.location(); u.Path != "/.session/login" || u.Query().Get("redirect") != "/admin/x?y=1" {
		t.Fatalf("after the button the browser is at %s, want the login page for /admin/x?y=1", u)
	}
	signIn("alice", alicePassword)
	if u := b.location(); u.Path != "/admin/x" {
		t.Fatalf("alice is at %s", u)
	}
	body, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	b.must("reading the page", err)
	if !strings.Contains(body, `"X-Session-User":["alice"]`) {
		t.Errorf("alice's page: %s", body)
	}
}
