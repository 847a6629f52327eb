package tests

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Request headers real clients send, as captured from them.
var (
	browserNavigation = []string{"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "Sec-Fetch-Mode: navigate", "Sec-Fetch-Site: none"}
	browserFormPost   = []string{"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "Sec-Fetch-Mode: navigate"}
)

// TestScriptsGet401NotTheLoginPage: only a browser navigating is sent to
// the login page; a page's script asking for HTML gets 401 JSON, which it
// can act on, instead of the login page's HTML (SPEC §2).
func TestScriptsGet401NotTheLoginPage(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "")
	cl := NewClient(t, c.Site)
	for _, tt := range []struct {
		name    string
		method  string
		headers []string
		login   bool
	}{
		{"browser navigation", "GET", browserNavigation, true},
		{"HEAD navigation", "HEAD", browserNavigation[:1], true},
		{"browser without Sec-Fetch", "GET", browserNavigation[:1], true},
		{"Prototype.js", "GET", []string{"Accept: text/javascript, text/html, application/xml, text/xml, */*", "X-Requested-With: XMLHttpRequest"}, false},
		{"Prototype.js POST", "POST", []string{"Accept: text/javascript, text/html, application/xml, text/xml, */*", "X-Requested-With: XMLHttpRequest"}, false},
		{"jQuery", "GET", []string{"Accept: text/html, */*; q=0.01", "X-Requested-With: XMLHttpRequest", "Sec-Fetch-Mode: cors", "Sec-Fetch-Site: same-origin"}, false},
		{"fetch() same-origin", "GET", []string{"Accept: text/html", "Sec-Fetch-Mode: same-origin"}, false},
		{"fetch() cors", "GET", []string{"Accept: */*, text/html", "Sec-Fetch-Mode: cors"}, false},
		{"curl -L", "GET", []string{"Accept: */*"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := up.Requests.Load()
			r := cl.Do(cl.NewRequest(tt.method, "/inbox?page=2", nil, tt.headers...))
			if tt.login {
				if r.StatusCode != 302 || r.Header.Get("Location") != "/.session/login?redirect=%2Finbox%3Fpage%3D2" {
					t.Errorf("%d Location %q, want 302 to the login page", r.StatusCode, r.Header.Get("Location"))
				}
			} else if r.StatusCode != 401 || r.Header.Get("Content-Type") != "application/json" || string(r.Body) != "{\"error\":\"login required\"}\n" {
				t.Errorf("%d %q %s, want 401 JSON login required", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
			}
			if up.Requests.Load() != before {
				t.Error("the request reached the upstream")
			}
		})
	}
}

// TestNextIsAnAliasOfRedirect: Django and Flask-Login send people to the
// login page with ?next=; it is read as redirect is, and as strictly.
func TestNextIsAnAliasOfRedirect(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "login_limit 100 1m")
	cl := NewClient(t, c.Site)

	if r := cl.Get("/.session/login?next=%2Fadmin%2F%3Fo%3D1"); !strings.Contains(string(r.Body), `name="redirect" value="/admin/?o=1"`) {
		t.Errorf("the login page does not carry next:\n%s", r.Body)
	}
	if r := cl.Get("/.session/login?next=%2F%2Fevil.example"); !strings.Contains(string(r.Body), `name="redirect" value="/"`) {
		t.Errorf("the login page carried an unsafe next:\n%s", r.Body)
	}
	post := func(form url.Values) string {
		t.Helper()
		form.Set("username", "alice")
		form.Set("password", alicePassword)
		r := NewClient(t, c.Site).Post("/.session/login", "application/x-www-form-urlencoded", form.Encode())
		if r.StatusCode != 303 {
			t.Fatalf("form login with %v: %d %s", form, r.StatusCode, r.Body)
		}
		return r.Header.Get("Location")
	}
	if loc := post(url.Values{"next": {"/admin/?o=1"}}); loc != "/admin/?o=1" {
		t.Errorf("form login with next: Location %q", loc)
	}
	if loc := post(url.Values{"next": {"//evil.example"}}); loc != "/" {
		t.Errorf("form login with an unsafe next: Location %q", loc)
	}
	if loc := post(url.Values{"redirect": {"/mine"}, "next": {"/not-this"}}); loc != "/mine" {
		t.Errorf("form login with redirect and next: Location %q, want redirect to win", loc)
	}
	if r := NewClient(t, c.Site).Post("/.session/login", "application/json", `{"username":"alice","password":"`+alicePassword+`","next":"/x"}`); r.StatusCode != 200 {
		t.Errorf("JSON login with next: %d %s", r.StatusCode, r.Body)
	}
	// Logout reads it too.
	cl.MustLogin("alice", alicePassword)
	if r := cl.Post("/.session/logout", "application/x-www-form-urlencoded", "next=%2Fbye"); r.StatusCode != 303 || r.Header.Get("Location") != "/bye" {
		t.Errorf("logout with next: %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
}

// mountTemplate puts the site under handle_path /app/*: Caddy strips /app
// before session sees the request.
const mountTemplate = `
[[.Site]] {
	handle_path /app/* {
		session {
			store memory
			user alice [[.Extra.alice]]
			title "Acme Wiki"
			login_limit 2 1m
			public {
				path /public/*
			}
		}
		reverse_proxy [[.Upstream]]
	}
	handle {
		respond "not the app" 404
	}
}
`

func startMounted(t testing.TB, up *Upstream) *Caddy {
	return StartCaddy(t, up.Addr, mountTemplate, WithExtra("alice", aliceHash))
}

// TestSubPathMount: under handle_path /app/*, every URL the handler gives
// the browser keeps /app in front (SPEC §2).
func TestSubPathMount(t *testing.T) {
	up := StartUpstream(t)
	c := startMounted(t, up)
	cl := NewClient(t, c.Site)

	r := cl.Get("/app/reports/q3?year=2026", browserNavigation...)
	if r.StatusCode != 302 || r.Header.Get("Location") != "/app/.session/login?redirect=%2Fapp%2Freports%2Fq3%3Fyear%3D2026" {
		t.Fatalf("navigation under /app: %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
	r = cl.Get("/app/.session/login?redirect=%2Fapp%2Freports%2Fq3%3Fyear%3D2026")
	for _, want := range []string{`action="/app/.session/login"`, `name="redirect" value="/app/reports/q3?year=2026"`, `<title>Sign in to Acme Wiki</title>`} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("the login page under /app lacks %s", want)
		}
	}
	form := url.Values{"username": {"alice"}, "password": {alicePassword}, "redirect": {"/app/reports/q3?year=2026"}}
	r = cl.Post("/app/.session/login", "application/x-www-form-urlencoded", form.Encode())
	if r.StatusCode != 303 || r.Header.Get("Location") != "/app/reports/q3?year=2026" {
		t.Fatalf("form login under /app: %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
	if e := cl.Get("/app/reports/q3?year=2026").Echo(t); e.Path != "/reports/q3" || e.Headers["X-Session-User"][0] != "alice" {
		t.Fatalf("after login the upstream saw %s as %v", e.Path, e.Headers["X-Session-User"])
	}
	// Without a redirect, login goes to the app's home, not the site's.
	r = NewClient(t, c.Site).Post("/app/.session/login", "application/x-www-form-urlencoded", url.Values{"username": {"alice"}, "password": {alicePassword}}.Encode())
	if r.StatusCode != 303 || r.Header.Get("Location") != "/app/" {
		t.Errorf("form login under /app without redirect: %d Location %q, want /app/", r.StatusCode, r.Header.Get("Location"))
	}
	if r := cl.Get("/app/.session/logout"); !strings.Contains(string(r.Body), `action="/app/.session/logout"`) {
		t.Errorf("the logout page under /app posts elsewhere:\n%s", r.Body)
	}
	r = cl.Post("/app/.session/logout", "application/x-www-form-urlencoded", "", browserFormPost...)
	if r.StatusCode != 303 || r.Header.Get("Location") != "/app/.session/login?signed_out=1" {
		t.Fatalf("logout under /app: %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
	if r := cl.Get("/app/.session/login?signed_out=1"); !strings.Contains(string(r.Body), "You have signed out.") {
		t.Errorf("the signed-out page does not say so:\n%s", r.Body)
	}

	// What a client sends cannot make the prefix point elsewhere: the
	// paths Caddy does not strip to a known tail are no mount.
	for _, target := range []string{"//evil.example/app/x", "/app//evil.example/x", "/app/..%2f..%2fevil/x", "/app/%2F%2Fevil.example/x", "/app/%5Cevil/x"} {
		r := rawGet(t, c.Site, target, browserNavigation...)
		loc := r.Header.Get("Location")
		if r.StatusCode == 302 && (!strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") || !strings.Contains(loc, "/.session/login?redirect=")) {
			t.Errorf("GET %s: Location %q", target, loc)
		}
		t.Logf("GET %s: %d Location %q", target, r.StatusCode, loc)
	}
}

// TestSessionsPageUnderMount: the sessions page links back to the app,
// and its forms post to it, under the mount prefix (handle_path /app/*),
// as the login page's do; and signing out another session there comes
// back to it under the prefix too.
func TestSessionsPageUnderMount(t *testing.T) {
	up := StartUpstream(t)
	c := startMounted(t, up)
	cl, other := NewClient(t, c.Site), NewClient(t, c.Site)
	form := url.Values{"username": {"alice"}, "password": {alicePassword}}.Encode()
	for _, client := range []*Client{cl, other} {
		if r := client.Post("/app/.session/login", "application/x-www-form-urlencoded", form, browserFormPost...); r.StatusCode != 303 {
			t.Fatalf("form login under /app: %d", r.StatusCode)
		}
	}
	r := cl.Get("/app/.session/sessions", browserNavigation...)
	if r.StatusCode != 200 {
		t.Fatalf("the sessions page under /app: %d", r.StatusCode)
	}
	for _, want := range []string{`<a href="/app/">Back to the site</a>`, `action="/app/.session/sessions"`} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("the sessions page under /app lacks %s:\n%s", want, r.Body)
		}
	}
	r = cl.Post("/app/.session/sessions", "application/x-www-form-urlencoded", "others=1", browserFormPost...)
	if r.StatusCode != 303 || r.Header.Get("Location") != "/app/.session/sessions?signed-out=1" {
		t.Errorf("signing out the others under /app: %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
}

// TestPagesForPeople: a browser that is throttled, or whose form came from
// another site, gets a page that says so in words; API clients keep JSON.
func TestPagesForPeople(t *testing.T) {
	up := StartUpstream(t)
	c := startMounted(t, up)
	cl := NewClient(t, c.Site)
	login := func(pw string, headers ...string) *Response {
		form := url.Values{"username": {"alice"}, "password": {pw}, "redirect": {"/app/docs"}}
		return cl.Post("/app/.session/login", "application/x-www-form-urlencoded", form.Encode(), headers...)
	}
	for range 2 {
		if r := login("wrong", browserFormPost...); r.StatusCode != 401 {
			t.Fatalf("wrong password: %d", r.StatusCode)
		}
	}
	r := login(alicePassword, browserFormPost...)
	if r.StatusCode != 429 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("throttled browser: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	var retry int
	if _, err := fmt.Sscan(r.Header.Get("Retry-After"), &retry); err != nil || retry < 50 || retry > 60 {
		t.Errorf("Retry-After %q, want about 60", r.Header.Get("Retry-After"))
	}
	checkPage(t, r, "Too many failed sign-ins", "Try again in 1 minute.", `href="/app/.session/login?redirect=%2Fapp%2Fdocs"`)

	// API clients keep JSON.
	for _, r := range []*Response{
		login(alicePassword, "Accept: application/json"),
		login(alicePassword), // no Accept: a script, not a person
		login(alicePassword, append(browserFormPost[:1:1], "X-Requested-With: XMLHttpRequest")...),
		cl.Post("/app/.session/login", "application/json", `{"username":"alice","password":"x"}`, browserFormPost...),
	} {
		if r.StatusCode != 429 || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Retry-After") == "" {
			t.Errorf("throttled API client: %d %q %s", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
		}
	}

	// A form posted from another site.
	r = login(alicePassword, append(browserFormPost, "Sec-Fetch-Site: cross-site", "Origin: https://evil.example")...)
	if r.StatusCode != 403 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("cross-origin form: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	checkPage(t, r, "Form from another site refused", "nothing has changed", `href="/app/.session/login"`)
	r = cl.Post("/app/.session/logout", "application/x-www-form-urlencoded", "", append(browserFormPost, "Sec-Fetch-Site: cross-site")...)
	if r.StatusCode != 403 || !strings.Contains(string(r.Body), "Form from another site refused") {
		t.Errorf("cross-origin logout form: %d %s", r.StatusCode, r.Body)
	}
	r = cl.Post("/app/.session/login", "application/json", `{}`, "Origin: https://evil.example")
	if r.StatusCode != 403 || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("cross-origin JSON: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
}

// checkPage checks a page the handler made for people: the site's style
// and title, the strict CSP, no outside resources, and the words.
func checkPage(t *testing.T, r *Response, heading string, wants ...string) {
	t.Helper()
	body := string(r.Body)
	csp := r.Header.Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`<style nonce="([^"]+)">`).FindStringSubmatch(body)
	if nonce == nil || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "'nonce-"+nonce[1]+"'") {
		t.Errorf("page without the strict CSP and its nonce: %q", csp)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	if regexp.MustCompile(`(?i)(src|href)="?(https?:)?//`).MatchString(body) || strings.Contains(body, "<script") {
		t.Error("the page loads an outside resource or runs a script")
	}
	wants = append(wants, `<html lang="en">`, "<title>"+heading+" – Acme Wiki</title>", `<h1 id="title">`+heading+"</h1>")
	for _, want := range wants {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s:\n%s", want, body)
		}
	}
}
