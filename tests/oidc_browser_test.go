package tests

import (
	"context"
	"os"
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
	chromium := chromiumPath(t)
	c, o, _ := startOIDCSite(t, WithExtra("testopts", "provider_logout on"))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	profile, err := os.MkdirTemp("", "edgesession-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	var chromeOut syncBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(&chromeOut),
	)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer func() {
		cancelBrowser()
		cancelAlloc()
		for i := 0; ; i++ {
			if err := os.RemoveAll(profile); err == nil || i == 50 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() {
		if t.Failed() {
			t.Logf("chromium output:\n%s", chromeOut.String())
			t.Logf("caddy log:\n%s", c.Logs())
		}
	}()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium %s: %v\n%s", chromium, err, chromeOut.String())
	}
	console := &consoleLog{}
	if err := chromedp.Listen(bctx, console.listen); err != nil {
		t.Fatal(err)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// The login page: provider links only (no local users).
	_, err = chromedp.Run(bctx, chromedp.NavigateResponse(c.Site+"/private?x=1"))
	must("navigating to /private", err)
	must("waiting for the provider link", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`nav[aria-label] a.provider`))))
	n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("input[type=password]").length`))
	must("counting password fields", err)
	if n != 0 {
		t.Errorf("%d password fields on a page without local users", n)
	}
	// Tab reaches the first provider link; its accessible text is its label.
	must("tab", chromedp.Do(bctx, chromedp.KeyEvent(kb.Tab)))
	focused, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.activeElement.tagName + " " + document.activeElement.textContent`))
	must("active element", err)
	if focused != "A Sign in with Test" {
		t.Fatalf("Tab focused %q, want the provider link", focused)
	}
	_, err = chromedp.RunResponse(bctx, chromedp.KeyEvent(kb.Enter))
	must("following the provider link", err)

	// The provider's own login form.
	must("waiting for the provider's form", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#username`))))
	loc, err := chromedp.Run(bctx, chromedp.Location())
	must("location", err)
	if strings.HasPrefix(loc, c.Site) {
		t.Fatalf("still at Caddy: %s", loc)
	}
	must("typing at the provider", chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "alice-pw"),
	))
	_, err = chromedp.RunResponse(bctx, chromedp.KeyEvent(kb.Enter))
	must("submitting the provider's form", err)

	// Back at the page asked for, as alice.
	must("waiting for the upstream's page", chromedp.Do(bctx, chromedp.WaitReady(`body`)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		loc, err = chromedp.Run(bctx, chromedp.Location())
		must("location", err)
		if loc == c.Site+"/private?x=1" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if loc != c.Site+"/private?x=1" {
		t.Fatalf("after the login at %s, want %s/private?x=1", loc, c.Site)
	}
	body, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	must("reading the page", err)
	if !strings.Contains(body, `"X-Session-User":["alice"]`) {
		t.Errorf("the upstream did not see alice:\n%s", body)
	}

	// Sign out: here, at the provider, and back to the site, whose root
	// wants a login again.
	_, err = chromedp.Run(bctx, chromedp.NavigateResponse(c.Site+"/.session/logout"))
	must("navigating to the logout page", err)
	must("waiting for the Sign out button", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`button[type="submit"]`))))
	_, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	must("signing out", err)
	deadline = time.Now().Add(10 * time.Second)
	for {
		loc, err = chromedp.Run(bctx, chromedp.Location())
		must("location", err)
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
