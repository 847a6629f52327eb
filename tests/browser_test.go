package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// chromiumPath finds Debian's chromium. Without one the browser tests
// skip, except under CI=true, where no test may skip.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not installed (looked for chromium and chromium-browser in PATH), and tests may not skip under CI=true")
	}
	t.Skip("SKIP: chromium not installed (looked for chromium and chromium-browser in PATH)")
	return ""
}

// syncBuffer is a bytes.Buffer that Chromium's output goroutine and the
// test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// consoleEntry is one message of a page's console or of the browser log.
type consoleEntry struct {
	Kind   string // "console", "exception" or "log"
	Level  string // error, warning, info, ...
	Source string // of a browser log entry: network, security, ...
	URL    string
	Text   string
}

func (e consoleEntry) String() string {
	s := fmt.Sprintf("%s %s", e.Kind, e.Level)
	if e.Source != "" {
		s += " (" + e.Source + ")"
	}
	s += ": " + e.Text
	if e.URL != "" {
		s += " [" + e.URL + "]"
	}
	return s
}

// consoleLog collects what the page writes to its console, from the
// listener goroutine of the tab.
type consoleLog struct {
	mu      sync.Mutex
	entries []consoleEntry
}

func (c *consoleLog) add(e consoleEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, e)
}

// since returns the entries after the first n, and the new count.
func (c *consoleLog) since(n int) ([]consoleEntry, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]consoleEntry(nil), c.entries[n:]...), len(c.entries)
}

// listen is the chromedp listener. It must return fast and run no command.
func (c *consoleLog) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if a.Value != nil {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		c.add(consoleEntry{Kind: "console", Level: string(ev.Type), Text: strings.Join(parts, " ")})
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		c.add(consoleEntry{Kind: "exception", Level: "error", URL: d.URL, Text: text})
	case *log.EventEntryAdded:
		if e := ev.Entry; e != nil {
			c.add(consoleEntry{Kind: "log", Level: string(e.Level), Source: string(e.Source), URL: e.URL, Text: e.Text})
		}
	}
}

// isProblem reports whether a console entry is an error, a warning or a
// CSP violation.
func (e consoleEntry) isProblem() bool {
	switch e.Level {
	case "error", "warning", "assert":
		return true
	}
	return strings.Contains(e.Text, "Content Security Policy") || strings.Contains(e.Text, "Content-Security-Policy")
}

// TestBrowserLoginLogout walks a real headless Chromium through the login
// page (a wrong password, then the right one typed and submitted with
// Enter), the upstream behind the session, the session cookie's attributes
// and the logout page, against a real Caddy with the bolt store.
func TestBrowserLoginLogout(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "bolt", "")

	b := startBrowser(t)
	bctx, console := b.ctx, b.console
	// On failure, say what Caddy said (startBrowser logs Chromium's output).
	defer func() {
		if t.Failed() {
			t.Logf("caddy log:\n%s", c.Logs())
		}
	}()
	seen := 0
	// noConsoleProblems fails the test for any console error, warning or
	// CSP violation since the last call, except those allowed says are
	// expected.
	noConsoleProblems := func(step string, allowed func(consoleEntry) bool) {
		t.Helper()
		var entries []consoleEntry
		entries, seen = console.since(seen)
		for _, e := range entries {
			if !e.isProblem() {
				continue
			}
			if allowed != nil && allowed(e) {
				t.Logf("%s: expected console entry: %s", step, e)
				continue
			}
			t.Errorf("%s: console: %s", step, e)
		}
	}
	// wantLoginPage checks that the browser shows the login page, asked
	// for with redirect.
	wantLoginPage := func(step, redirect string) {
		t.Helper()
		u := b.location()
		if u.Path != "/.session/login" || u.Query().Get("redirect") != redirect {
			t.Fatalf("%s: want the login page with redirect=%s, at %s", step, redirect, u)
		}
		b.must(step+": waiting for the login form", chromedp.Do(bctx,
			chromedp.WaitVisible(chromedp.CSS(`#username`)),
			chromedp.WaitVisible(chromedp.CSS(`#password`)),
		))
		title, err := chromedp.Run(bctx, chromedp.Title())
		b.must(step+": title", err)
		if title != "Sign in" {
			t.Errorf("%s: title %q, want Sign in", step, title)
		}
	}

	// 1. A browser asking for a page without a session lands on the login
	// page, which remembers where it was going.
	resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(c.Site+"/some/page?x=1"))
	b.must("navigating to /some/page", err)
	if resp.Status != 200 {
		t.Errorf("login page: status %d, want 200", resp.Status)
	}
	// (The browser's navigation sends Accept: text/html,...; that it was
	// redirected to the login page, not answered 401 JSON, shows Caddy saw
	// it.)
	if csp := fmt.Sprint(resp.Headers["Content-Security-Policy"]); !strings.Contains(csp, "style-src 'nonce-") {
		t.Errorf("login page CSP %q: want a style nonce", csp)
	}
	wantLoginPage("login page", "/some/page?x=1")
	// Both fields have a label bound to them, by for= and by the DOM.
	for _, id := range []string{"username", "password"} {
		b.must("label for "+id, chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`label[for="`+id+`"]`))))
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.getElementById("`+id+`").labels.length`))
		b.must("labels of "+id, err)
		if n != 1 {
			t.Errorf("#%s has %d labels, want 1", id, n)
		}
	}
	// The nonce-tagged inline style applied: body is a flex container.
	display, err := chromedp.Run(bctx, chromedp.Evaluate[string](`getComputedStyle(document.body).display`))
	b.must("computed style", err)
	if display != "flex" {
		t.Errorf("body display %q, want flex: the page's inline style did not apply (CSP nonce?)", display)
	}
	// The username field has the focus (autofocus).
	focused, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ""`))
	b.must("active element", err)
	if focused != "username" {
		t.Errorf("focus is on %q, want the username field", focused)
	}
	noConsoleProblems("login page", nil)

	// 2. A wrong password, typed, then the Sign in button: the same page
	// again with the one generic error, as an alert.
	b.must("typing a wrong password", chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "not-"+alicePassword),
	))
	resp, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.must("submitting a wrong password", err)
	if resp.Status != 401 {
		t.Errorf("wrong password: status %d, want 401", resp.Status)
	}
	b.must("waiting for the error", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#error[role="alert"]`))))
	msg, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`[role="alert"]`)))
	b.must("reading the error", err)
	if strings.TrimSpace(msg) != "Invalid username or password." {
		t.Errorf("error message %q, want %q", msg, "Invalid username or password.")
	}
	if u := b.location(); u.Path != "/.session/login" {
		t.Errorf("after a wrong password the browser is at %s, want /.session/login", u)
	}
	user, err := chromedp.Run(bctx, chromedp.Value(chromedp.CSS(`#username`)))
	b.must("reading the username", err)
	pw, err := chromedp.Run(bctx, chromedp.Value(chromedp.CSS(`#password`)))
	b.must("reading the password", err)
	redirect, err := chromedp.Run(bctx, chromedp.Value(chromedp.CSS(`input[name="redirect"]`)))
	b.must("reading the redirect", err)
	if user != "alice" || pw != "" || redirect != "/some/page?x=1" {
		t.Errorf("after a wrong password: username %q, password %q, redirect %q; want alice, empty, /some/page?x=1", user, pw, redirect)
	}
	// The browser reports the 401 of the page itself as a failed resource
	// load; that is expected. Nothing else is.
	noConsoleProblems("wrong password", func(e consoleEntry) bool {
		return e.Kind == "log" && e.Source == "network" && strings.Contains(e.Text, "status of 401") &&
			(e.URL == "" || strings.HasSuffix(e.URL, "/.session/login"))
	})

	// 3. The right credentials, submitted with Enter: the page asked for
	// first, served by the upstream as alice.
	b.must("typing the right credentials", chromedp.Do(bctx,
		chromedp.Clear(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), alicePassword),
	))
	resp, err = chromedp.RunResponse(bctx, chromedp.KeyEvent(kb.Enter))
	b.must("submitting with Enter", err)
	if resp.Status != 200 {
		t.Errorf("after login: status %d, want 200", resp.Status)
	}
	if u := b.location(); u.Path != "/some/page" || u.RawQuery != "x=1" {
		t.Fatalf("after login the browser is at %s, want /some/page?x=1", u)
	}
	body, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	b.must("reading the page", err)
	var echo Echo
	if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &echo); err != nil {
		// Chromium's JSON viewer may add its own text around the document.
		pre, perr := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("pre") ? document.querySelector("pre").innerText : ""`))
		if perr != nil || json.Unmarshal([]byte(pre), &echo) != nil {
			t.Fatalf("after login the page is not the upstream's JSON echo: %v\n%s", err, body)
		}
	}
	if got := echo.Headers["X-Session-User"]; len(got) != 1 || got[0] != "alice" {
		t.Errorf("upstream saw X-Session-User %q, want [alice]", got)
	}
	for _, h := range []string{"Remote-User", "X-Webauth-User"} { // the site's user_header
		if got := echo.Headers[h]; len(got) != 1 || got[0] != "alice" {
			t.Errorf("upstream saw %s %q, want [alice]", h, got)
		}
	}
	if accept := strings.Join(echo.Headers["Accept"], ","); !strings.Contains(accept, "text/html") {
		t.Errorf("the browser's navigation sent Accept %q, without text/html", accept)
	}
	if echo.Method != "GET" || echo.Path != "/some/page" || echo.Query != "x=1" {
		t.Errorf("upstream saw %s %s?%s, want GET /some/page?x=1", echo.Method, echo.Path, echo.Query)
	}
	for _, ck := range echo.Headers["Cookie"] {
		if strings.Contains(ck, "caddy_session") {
			t.Errorf("the session cookie reached the upstream: Cookie %q", ck)
		}
	}
	noConsoleProblems("after login", nil)

	// 4. The session cookie is HttpOnly and SameSite=Lax, and the page's
	// script cannot read it.
	cookies, err := chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{c.Site + "/"}})
	b.must("reading cookies", err)
	var session *network.Cookie
	for _, ck := range cookies.Cookies {
		if ck.Name == "caddy_session" {
			session = ck
		}
	}
	if session == nil {
		t.Fatalf("no caddy_session cookie in the browser; cookies: %v", cookieNames(cookies.Cookies))
	}
	if !session.HTTPOnly {
		t.Errorf("caddy_session is not HttpOnly")
	}
	if session.SameSite != network.CookieSameSiteLax {
		t.Errorf("caddy_session SameSite %q, want Lax", session.SameSite)
	}
	if session.Path != "/" || session.Secure {
		t.Errorf("caddy_session path %q secure %v, want / and not Secure over plain HTTP", session.Path, session.Secure)
	}
	if !session.Session {
		t.Errorf("caddy_session expires at %v: want a browser-session cookie by default", session.Expires)
	}
	docCookie, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.cookie`))
	b.must("reading document.cookie", err)
	if strings.Contains(docCookie, "caddy_session") {
		t.Errorf("document.cookie shows the session cookie: %q", docCookie)
	}
	oldSession := session.Value

	// 5. The logout page shows who is signed in; its button signs out, and
	// the page asked for first needs a login again.
	resp, err = chromedp.Run(bctx, chromedp.NavigateResponse(c.Site+"/.session/logout"))
	b.must("navigating to the logout page", err)
	if resp.Status != 200 {
		t.Errorf("logout page: status %d, want 200", resp.Status)
	}
	b.must("waiting for the Sign out button", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`button[type="submit"]`))))
	who, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`main p`)))
	b.must("reading the logout page", err)
	if !strings.Contains(who, "signed in as alice") {
		t.Errorf("logout page says %q, want signed in as alice", who)
	}
	button, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`button[type="submit"]`)))
	b.must("reading the button", err)
	if strings.TrimSpace(button) != "Sign out" {
		t.Errorf("logout button %q, want Sign out", button)
	}
	noConsoleProblems("logout page", nil)

	_, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.must("clicking Sign out", err)
	// Signed out, the browser is on the login page, which says so.
	wantLoginPage("after sign out", "")
	if u := b.location(); u.Query().Get("signed_out") != "1" {
		t.Errorf("after sign out the browser is at %s, want the signed-out login page", u)
	}
	notice, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#notice[role="status"]`)))
	b.must("reading the signed-out notice", err)
	if strings.TrimSpace(notice) != "You have signed out." {
		t.Errorf("signed-out notice %q", notice)
	}
	cookies, err = chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{c.Site + "/"}})
	b.must("reading cookies", err)
	for _, ck := range cookies.Cookies {
		if ck.Name == "caddy_session" {
			t.Errorf("caddy_session is still in the browser after sign out: %+v", ck)
		}
	}
	// The old cookie is dead on the server too, not just dropped by the
	// browser.
	old := NewClient(t, c.Site)
	old.SetSessionCookie(oldSession)
	if status, user := old.Whoami(); status != 401 {
		t.Errorf("the signed-out session cookie still works: whoami %d %q", status, user)
	}

	_, err = chromedp.Run(bctx, chromedp.NavigateResponse(c.Site+"/some/page"))
	b.must("navigating to /some/page after sign out", err)
	wantLoginPage("after sign out, /some/page", "/some/page")
	noConsoleProblems("after sign out", nil)
}

func cookieNames(cookies []*network.Cookie) []string {
	var names []string
	for _, c := range cookies {
		names = append(names, c.Name)
	}
	return names
}
