package tests

import (
	"encoding/json"
	"fmt"
	"html"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/pquerna/otp/totp"

	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// totpCode is the code of secret (as the page shows it, in groups) at t.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(strings.ReplaceAll(secret, " ", ""), at)
	if err != nil {
		t.Fatalf("code of %q: %v", secret, err)
	}
	return code
}

// postMFA sends a code to the second step as an API client does.
func postMFA(c *Client, code string) *Response {
	b, _ := json.Marshal(map[string]string{"code": code})
	return c.Post("/.session/mfa", "application/json", string(b))
}

// TestBrowserMFATOTP drives TOTP in a real Chromium against two Caddy
// instances sharing Redis (the Caddyfile's `mfa`): alice enrols an
// authenticator from her sessions page (the password again, the text
// secret read from the page, the first code), saves her recovery codes,
// signs out, signs in with her password and a code typed with the
// keyboard alone, and lands where she was going with amr "pwd otp mfa".
// The code she used is refused on the other instance; a recovery code
// works there once.
func TestBrowserMFATOTP(t *testing.T) {
	url := redisURL(t)
	up := StartUpstream(t)
	store := fmt.Sprintf("redis %s {\n\t\t\tprefix %s\n\t\t}", url, storetest.RedisPrefix(t))
	const more = "secret shared-by-both-instances-0123456789\n\t\tmfa"
	a := startSite(t, up, store, more)
	b := startSite(t, up, store, more)
	br := startBrowser(t)
	defer func() {
		if t.Failed() {
			t.Logf("caddy A log:\n%s\ncaddy B log:\n%s", a.Logs(), b.Logs())
		}
	}()

	// Signed in with a password only: no factor yet.
	br.navigate(a.Site + "/private/start")
	br.must("signing in", chromedp.Do(br.ctx,
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), alicePassword),
	))
	if st := br.submit("submitting the login form", chromedp.Click(chromedp.CSS(`button[type="submit"]`))); st != 200 || br.location().Path != "/private/start" {
		t.Fatalf("password login: %d at %s", st, br.location())
	}

	// The sessions page offers an authenticator app.
	br.navigate(a.Site + "/.session/sessions")
	if txt := br.text(`#totp`); !strings.Contains(txt, "Not set up") {
		t.Fatalf("second factors before enrolment: %q", txt)
	}
	br.screenshot("mfaweb-sessions-before")
	br.noConsoleProblems("sessions page")
	if st := br.submit("following Set up", chromedp.Click(chromedp.CSS(`#totp a.add`))); st != 200 {
		t.Fatalf("enrolment page: %d", st)
	}
	br.screenshot("mfaweb-totp-password")
	// The password again: a wrong one first.
	br.must("typing a wrong password", chromedp.Do(br.ctx, chromedp.SendKeys(chromedp.CSS(`#password`), "wrong")))
	if st := br.submit("sending the wrong password", chromedp.Click(chromedp.CSS(`button[type="submit"]`))); st != 401 || !strings.Contains(br.text(`#error`), "not right") {
		t.Fatalf("wrong password: %d", st)
	}
	br.noConsoleProblems("wrong password", 401)
	br.must("typing the password", chromedp.Do(br.ctx, chromedp.SendKeys(chromedp.CSS(`#password`), alicePassword)))
	if st := br.submit("sending the password", chromedp.Click(chromedp.CSS(`button[type="submit"]`))); st != 200 {
		t.Fatalf("after the password: %d", st)
	}
	secret := br.text(`#secret`)
	if len(strings.ReplaceAll(secret, " ", "")) < 26 || !strings.Contains(secret, " ") {
		t.Fatalf("text secret %q", secret)
	}
	if n := br.eval(`String(document.querySelectorAll("svg.qr path").length)`); n != "1" {
		t.Fatalf("QR code paths: %s", n)
	}
	if w := br.eval(`String(document.querySelector("svg.qr").getBoundingClientRect().width)`); w == "0" {
		t.Fatal("the QR code is not drawn")
	}
	br.screenshot("mfaweb-totp-qr")
	br.noConsoleProblems("enrolment page")
	enrolCode := totpCode(t, secret, time.Now())
	br.must("typing the first code", chromedp.Do(br.ctx, chromedp.SendKeys(chromedp.CSS(`#code`), enrolCode)))
	if st := br.submit("turning it on", chromedp.Click(chromedp.CSS(`button[type="submit"]`))); st != 200 {
		t.Fatalf("after the first code: %d", st)
	}
	codes := strings.Fields(br.text(`#codes`))
	if len(codes) != 10 || len(codes[0]) != 11 || codes[0][5] != '-' {
		t.Fatalf("recovery codes: %q", codes)
	}
	br.screenshot("mfaweb-codes")
	if st := br.submit("I saved them", chromedp.Click(chromedp.CSS(`#continue`))); st != 200 || br.location().Path != "/.session/sessions" {
		t.Fatalf("after the codes: %d at %s", st, br.location())
	}
	if txt := br.text(`#totp`); !strings.Contains(txt, "Turned on") {
		t.Fatalf("second factors after enrolment: %q", txt)
	}
	if txt := br.text(`#recovery`); !strings.Contains(txt, "10 unused codes left") {
		t.Fatalf("recovery codes after enrolment: %q", txt)
	}
	br.screenshot("mfaweb-sessions-after")
	br.noConsoleProblems("sessions page after enrolment")

	// Sign out, then in again: the password, then the code, with the
	// keyboard alone.
	br.navigate(a.Site + "/.session/logout")
	br.submit("signing out", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	br.navigate(a.Site + "/private/where?x=1")
	br.must("signing in with the keyboard", chromedp.Do(br.ctx,
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.Focus(chromedp.CSS(`#username`)),
		chromedp.KeyEvent("alice"),
		chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent(alicePassword),
	))
	if st := br.submit("pressing Enter", chromedp.KeyEvent(kb.Enter)); st != 200 || br.location().Path != "/.session/mfa" {
		t.Fatalf("after the password: %d at %s, want the second step", st, br.location())
	}
	br.screenshot("mfaweb-step")
	br.noConsoleProblems("second step")
	if f := br.focused(); f != "input#code" {
		t.Fatalf("the second step's focus is on %q, want the code field", f)
	}
	if ac := br.eval(`document.querySelector("#code").autocomplete + " " + document.querySelector("#code").inputMode`); ac != "one-time-code numeric" {
		t.Errorf("code field: %q", ac)
	}
	// The next step's code: the enrolment claimed this one's.
	loginCode := totpCode(t, secret, time.Now().Add(30*time.Second))
	br.must("typing the code", chromedp.Do(br.ctx, chromedp.KeyEvent(loginCode), chromedp.KeyEvent(kb.Tab)))
	if f := br.focused(); f != "button" {
		t.Fatalf("Tab from the code goes to %q, want the Verify button", f)
	}
	if st := br.submit("pressing Enter on Verify", chromedp.KeyEvent(kb.Enter)); st != 200 {
		t.Fatalf("after the code: %d", st)
	}
	if loc := br.location(); loc.Path != "/private/where" || loc.RawQuery != "x=1" {
		t.Fatalf("after the code the browser is at %s, want /private/where?x=1", loc)
	}
	var echo Echo
	br.must("reading the echo", json.Unmarshal([]byte(br.text("body")), &echo))
	if u := echo.Headers["X-Session-User"]; len(u) != 1 || u[0] != "alice" {
		t.Fatalf("upstream sees user %q", u)
	}
	if amr := echo.Headers["X-Session-Amr"]; len(amr) != 1 || amr[0] != "pwd otp mfa" {
		t.Errorf("upstream sees amr %q, want pwd otp mfa", amr)
	}

	// The same code on the other instance: refused.
	onB := NewClient(t, b.Site)
	if r := onB.LoginJSON("alice", alicePassword); r.StatusCode != 401 || r.JSON(t)["error"] != "second factor required" {
		t.Fatalf("password on B: %d %s", r.StatusCode, r.Body)
	}
	if r := postMFA(onB, loginCode); r.StatusCode != 401 || r.JSON(t)["error"] != "code already used" {
		t.Fatalf("replayed code on B: %d %s", r.StatusCode, r.Body)
	}
	if code, _ := onB.Whoami(); code != 401 {
		t.Fatal("a replayed code signed in on B")
	}
	// A recovery code: once.
	if r := postMFA(onB, codes[4]); r.StatusCode != 200 {
		t.Fatalf("recovery code on B: %d %s", r.StatusCode, r.Body)
	}
	if code, user := onB.Whoami(); code != 200 || user != "alice" {
		t.Fatalf("whoami after a recovery code: %d %s", code, user)
	}
	again := NewClient(t, a.Site)
	again.LoginJSON("alice", alicePassword)
	if r := postMFA(again, codes[4]); r.StatusCode != 401 {
		t.Fatalf("the recovery code again on A: %d %s", r.StatusCode, r.Body)
	}
	// HTTP Basic cannot carry the second factor.
	basic := NewClient(t, a.Site)
	req := basic.NewRequest("GET", "/private/x", nil)
	req.SetBasicAuth("alice", alicePassword)
	if r := basic.Do(req); r.StatusCode != 401 {
		t.Errorf("Basic for a user with a second factor: %d", r.StatusCode)
	}
}

// TestBrowserMFARecoveryPage: the second step's "Use a recovery code" page,
// reached with the keyboard, takes a recovery code.
func TestBrowserMFARecoveryPage(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "bolt", "mfa")
	// Enrol through the API, as the browser test above does through pages.
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	secret, codes := enrolByForms(t, cl)
	_ = secret

	br := startBrowser(t)
	br.navigate(c.Site + "/private/r")
	br.must("signing in", chromedp.Do(br.ctx,
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), alicePassword+"\r"),
		chromedp.WaitVisible(chromedp.CSS(`#code`)),
	))
	// Tab: Verify, then "Use a recovery code".
	br.must("tabbing to the link", chromedp.Do(br.ctx, chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab)))
	if f := br.focused(); f != "a" {
		t.Fatalf("focus %q, want the recovery link", f)
	}
	if st := br.submit("following the link", chromedp.KeyEvent(kb.Enter)); st != 200 || br.location().Query().Get("recovery") != "1" {
		t.Fatalf("recovery page: %d at %s", st, br.location())
	}
	br.screenshot("mfaweb-step-recovery")
	br.noConsoleProblems("recovery page")
	if st := br.submit("sending the recovery code", chromedp.KeyEvent(strings.ToLower(codes[0])+"\r")); st != 200 || br.location().Path != "/private/r" {
		t.Fatalf("after the recovery code: %d at %s", st, br.location())
	}
	// A wrong code page, for the screenshot.
	br.navigate(c.Site + "/.session/logout")
	br.submit("signing out", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	br.navigate(c.Site + "/private/r")
	br.must("signing in", chromedp.Do(br.ctx,
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), alicePassword+"\r"),
		chromedp.WaitVisible(chromedp.CSS(`#code`)),
	))
	if st := br.submit("a wrong code", chromedp.KeyEvent("000000\r")); st != 401 || !strings.Contains(br.text(`#error`), "not right") {
		t.Fatalf("wrong code: %d", st)
	}
	br.screenshot("mfaweb-step-wrong")
	// Cancel signs out: the pending login is gone.
	if st := br.submit("cancel", chromedp.Click(chromedp.CSS(`button.secondary`))); st != 200 || br.location().Path != "/.session/login" {
		t.Fatalf("cancel: %d at %s", st, br.location())
	}
	if st := br.navigate(c.Site + "/.session/mfa"); st != 200 || br.location().Path != "/.session/login" {
		t.Fatalf("the second step after cancel: %d at %s", st, br.location())
	}
	_ = secret
}

// enrolByForms enrols a TOTP for cl's user through the enrolment forms as
// an HTTP client and returns the secret and the recovery codes.
func enrolByForms(t *testing.T, cl *Client) (string, []string) {
	t.Helper()
	r := cl.Post("/.session/mfa/totp", "application/x-www-form-urlencoded", "password="+alicePassword, "Accept: text/html")
	body := string(r.Body)
	sealed := between(body, `name="sealed" value="`, `"`)
	secret := between(body, `id="secret" aria-labelledby="key-label">`, `<`)
	if r.StatusCode != 200 || sealed == "" || secret == "" {
		t.Fatalf("enrolment: %d %s", r.StatusCode, body)
	}
	form := "sealed=" + queryEscape(htmlUnescape(sealed)) + "&code=" + totpCode(t, secret, time.Now())
	r = cl.Post("/.session/mfa/totp", "application/x-www-form-urlencoded", form, "Accept: text/html")
	var codes []string
	for _, part := range strings.Split(string(r.Body), "<li><code>")[1:] {
		codes = append(codes, part[:strings.Index(part, "<")])
	}
	if r.StatusCode != 200 || len(codes) != 10 {
		t.Fatalf("first code: %d %s", r.StatusCode, r.Body)
	}
	return secret, codes
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}

func queryEscape(s string) string { return neturl.QueryEscape(s) }

func htmlUnescape(s string) string { return html.UnescapeString(s) }
