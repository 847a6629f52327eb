package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// browser is a headless Chromium with one tab, for a test.
type browser struct {
	t       *testing.T
	ctx     context.Context
	console *consoleLog
	seen    int
}

// startBrowser starts Debian's Chromium (skipping without one, as
// chromiumPath says) with a fresh profile; it is closed when the test ends,
// before the test's own cleanups stop Caddy and the upstream.
func startBrowser(t *testing.T) *browser {
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	profile, err := os.MkdirTemp("", "edgesession-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
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
		chromedp.WindowSize(800, 600),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(&out),
	)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
		cancelBrowser()
		cancelAlloc()
		cancel()
		for i := 0; ; i++ { // a helper process may still write for a moment
			if err := os.RemoveAll(profile); err == nil || i == 50 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium %s: %v\n%s", chromium, err, out.String())
	}
	b := &browser{t: t, ctx: bctx, console: &consoleLog{}}
	if err := chromedp.Listen(bctx, b.console.listen); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *browser) must(what string, err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// navigate opens u and returns the status of the page.
func (b *browser) navigate(u string) int64 {
	b.t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(u))
	b.must("navigating to "+u, err)
	return resp.Status
}

// submit runs action (a click, a key) and returns the status of the page it
// leads to.
func (b *browser) submit(what string, action chromedp.Action[chromedp.Void]) int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, action)
	b.must(what, err)
	return resp.Status
}

func (b *browser) location() *url.URL {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	b.must("reading the location", err)
	u, err := url.Parse(loc)
	b.must("parsing the location", err)
	return u
}

func (b *browser) text(css string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(css)))
	b.must("reading "+css, err)
	return strings.TrimSpace(s)
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	b.must("evaluating "+js, err)
	return s
}

// focused describes the element that has the keyboard focus.
func (b *browser) focused() string {
	b.t.Helper()
	return b.eval(`(() => { const e = document.activeElement; return e ? e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") : "" })()`)
}

// screenshot saves the page as <name>.png in $EDGESESSION_SCREENSHOTS,
// when that is set, for a person to look at.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("EDGESESSION_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	b.must("taking a screenshot", err)
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// noConsoleProblems fails the test for console errors, warnings and CSP
// violations since the last call, but for a page's own status (a 401,
// 403 or 429 page is reported as a failed load) when allowStatus says so.
func (b *browser) noConsoleProblems(step string, allowStatus ...int) {
	b.t.Helper()
	var entries []consoleEntry
	entries, b.seen = b.console.since(b.seen)
	for _, e := range entries {
		if !e.isProblem() {
			continue
		}
		// Chromium asks for /favicon.ico, outside the app.
		allowed := strings.HasSuffix(e.URL, "/favicon.ico")
		for _, s := range allowStatus {
			allowed = allowed || (e.Kind == "log" && e.Source == "network" && strings.Contains(e.Text, fmt.Sprintf("status of %d", s)))
		}
		if !allowed {
			b.t.Errorf("%s: console: %s", step, e)
		}
	}
}

// TestBrowserPages drives a real Chromium through what a person sees of a
// site mounted under handle_path /app/*: scripts that get 401 JSON, not a
// login page; the login page with the site's title, and the way back to
// /app/... after signing in; the signed-out page; the page for too many
// failed sign-ins; the page for a form posted from another site.
//
// With EDGESESSION_SCREENSHOTS=<dir>, it saves a screenshot of each page.
func TestBrowserPages(t *testing.T) {
	b := startBrowser(t)
	up := StartUpstream(t)
	// Another site's page with a form that posts to our login.
	var site atomic.Pointer[string]
	up.Hooks["/evil"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><html lang="en"><title>Another site</title><form method="post" action="%s/app/.session/login">
<input name="username" value="alice"><input name="password" type="password" value="x"><button id="go">Go</button></form>`, *site.Load())
	}
	c := startMounted(t, up)
	site.Store(&c.Site)
	defer func() {
		if t.Failed() {
			t.Logf("caddy log:\n%s", c.Logs())
		}
	}()

	// 1. A page's scripts without a session: 401 JSON, whatever they
	// accept. From a public page of the app.
	if s := b.navigate(c.Site + "/app/public/page"); s != 200 {
		t.Fatalf("public page: %d", s)
	}
	for name, js := range map[string]string{
		"fetch()": `fetch("/app/private", {headers: {Accept: "text/html"}}).then(async r => r.status + " " + r.headers.get("Content-Type") + " " + (await r.text()).trim())`,
		"XMLHttpRequest as jQuery sends it": `new Promise(resolve => { const x = new XMLHttpRequest(); x.open("GET", "/app/private");
			x.setRequestHeader("Accept", "text/html, */*; q=0.01"); x.setRequestHeader("X-Requested-With", "XMLHttpRequest");
			x.onload = () => resolve(x.status + " " + x.getResponseHeader("Content-Type") + " " + x.responseText.trim()); x.send(); })`,
	} {
		if got := b.eval(js); got != `401 application/json {"error":"login required"}` {
			t.Errorf("%s without a session: %q, want 401 JSON", name, got)
		}
	}
	b.noConsoleProblems("scripts", 401)

	// 2. A form posted from another site: a page that says what happened.
	b.navigate(strings.Replace("http://"+up.Addr, "127.0.0.1", "localhost", 1) + "/evil")
	if s := b.submit("posting the other site's form", chromedp.Click(chromedp.CSS(`#go`))); s != 403 {
		t.Errorf("cross-site form: %d, want 403", s)
	}
	if h := b.text("h1"); h != "Form from another site refused" {
		t.Errorf("cross-site form page: heading %q", h)
	}
	if msg := b.text("#message"); !strings.Contains(msg, "nothing has changed") {
		t.Errorf("cross-site form page says %q", msg)
	}
	b.must("pressing Tab", chromedp.Do(b.ctx, chromedp.KeyEvent(kb.Tab)))
	if f := b.focused(); f != "a" {
		t.Errorf("Tab on the cross-site page focuses %q, want its link", f)
	}
	if href := b.eval(`document.activeElement.href`); href != c.Site+"/app/.session/login" {
		t.Errorf("the cross-site page links to %q", href)
	}
	b.screenshot("cross-origin")
	b.noConsoleProblems("cross-site form", 403)

	// 3. The login page, reached by navigating under /app: the site's
	// name, the focus in the username field, the form posting under /app.
	if s := b.navigate(c.Site + "/app/wiki/Page?rev=2"); s != 200 {
		t.Errorf("login page: %d", s)
	}
	wantLogin := func(step string) {
		t.Helper()
		if u := b.location(); u.Path != "/app/.session/login" {
			t.Fatalf("%s: at %s, want the login page under /app", step, u)
		}
		b.must(step+": waiting for the form", chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS(`#username`))))
		if h := b.text("h1"); h != "Sign in to Acme Wiki" {
			t.Errorf("%s: heading %q", step, h)
		}
		if title, _ := chromedp.Run(b.ctx, chromedp.Title()); title != "Sign in to Acme Wiki" {
			t.Errorf("%s: title %q", step, title)
		}
		if f := b.focused(); f != "input#username" {
			t.Errorf("%s: focus on %q, want the username field", step, f)
		}
		if action := b.eval(`document.querySelector("form").action`); action != c.Site+"/app/.session/login" {
			t.Errorf("%s: the form posts to %q", step, action)
		}
		if display := b.eval(`getComputedStyle(document.body).display`); display != "flex" {
			t.Errorf("%s: the page's style did not apply (CSP nonce?)", step)
		}
	}
	wantLogin("login page")
	b.screenshot("login")
	b.noConsoleProblems("login page")

	// 4. Signing in lands on the page asked for first, under /app.
	b.must("typing", chromedp.Do(b.ctx,
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), alicePassword),
	))
	if s := b.submit("signing in", chromedp.KeyEvent(kb.Enter)); s != 200 {
		t.Errorf("after signing in: %d", s)
	}
	if u := b.location(); u.Path != "/app/wiki/Page" || u.RawQuery != "rev=2" {
		t.Fatalf("after signing in the browser is at %s, want /app/wiki/Page?rev=2", u)
	}
	var echo Echo
	if err := json.Unmarshal([]byte(b.eval(`document.body.innerText`)), &echo); err != nil || echo.Path != "/wiki/Page" || strings.Join(echo.Headers["X-Session-User"], ",") != "alice" {
		t.Errorf("after signing in the app saw %s as %v (%v)", echo.Path, echo.Headers["X-Session-User"], err)
	}
	b.noConsoleProblems("signed in")

	// 5. Signing out lands on the login page, which says so.
	b.navigate(c.Site + "/app/.session/logout")
	if action := b.eval(`document.querySelector("form").action`); action != c.Site+"/app/.session/logout" {
		t.Errorf("the logout form posts to %q", action)
	}
	if title, _ := chromedp.Run(b.ctx, chromedp.Title()); title != "Sign out of Acme Wiki" {
		t.Errorf("logout page title %q", title)
	}
	b.submit("signing out", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	wantLogin("signed out")
	if u := b.location(); u.RawQuery != "signed_out=1" {
		t.Errorf("signed out at %s", u)
	}
	if notice := b.text(`#notice[role="status"]`); notice != "You have signed out." {
		t.Errorf("signed-out notice %q", notice)
	}
	if desc := b.eval(`document.querySelector("form").getAttribute("aria-describedby") || ""`); desc != "notice" {
		t.Errorf("the form is described by %q, want the notice", desc)
	}
	b.screenshot("signed-out")
	b.noConsoleProblems("signed out")

	// 6. Too many wrong passwords: a page that says when to try again.
	for i := range 3 {
		b.must("typing", chromedp.Do(b.ctx,
			chromedp.SetValue(chromedp.CSS(`#username`), "mallory"),
			chromedp.SetValue(chromedp.CSS(`#password`), "guess"),
		))
		s := b.submit("submitting a wrong password", chromedp.KeyEvent(kb.Enter))
		if want := []int64{401, 401, 429}[i]; s != want {
			t.Fatalf("wrong password %d: %d, want %d", i+1, s, want)
		}
	}
	if h := b.text("h1"); h != "Too many failed sign-ins" {
		t.Errorf("throttled: heading %q", h)
	}
	if msg := b.text("#message"); !strings.Contains(msg, "Try again in 1 minute.") {
		t.Errorf("throttled page says %q", msg)
	}
	if title, _ := chromedp.Run(b.ctx, chromedp.Title()); title != "Too many failed sign-ins – Acme Wiki" {
		t.Errorf("throttled page title %q", title)
	}
	b.must("pressing Tab", chromedp.Do(b.ctx, chromedp.KeyEvent(kb.Tab)))
	if f := b.focused(); f != "a" {
		t.Errorf("Tab on the throttled page focuses %q, want its link", f)
	}
	b.screenshot("throttled")
	b.noConsoleProblems("throttled", 401, 429)
	// Its link, followed with the keyboard, goes back to the login page.
	b.submit("following the link", chromedp.KeyEvent(kb.Enter))
	wantLogin("back from the throttled page")
	b.noConsoleProblems("back from the throttled page")
}
