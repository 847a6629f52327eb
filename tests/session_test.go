package tests

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestLoginForwardsTrustedUser(t *testing.T) {
	forStores(t, allStores, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "")
		cl := NewClient(t, c.Site)

		if r := cl.Get("/app"); r.StatusCode != 401 || r.JSON(t)["error"] != "login required" || r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("anonymous API request: %d %s %q", r.StatusCode, r.Body, r.Header.Get("Content-Type"))
		}
		if up.Requests.Load() != 0 {
			t.Fatal("an anonymous request reached the upstream")
		}

		r := cl.LoginJSON("alice", alicePassword)
		if r.StatusCode != 200 || r.JSON(t)["user"] != "alice" {
			t.Fatalf("login: %d %s", r.StatusCode, r.Body)
		}
		e := cl.Get("/app?x=1").Echo(t)
		for _, name := range []string{"X-Session-User", "Remote-User", "X-Webauth-User"} {
			if got := e.Headers[name]; len(got) != 1 || got[0] != "alice" {
				t.Errorf("upstream got %s = %q, want [alice]", name, got)
			}
		}
		if code, user := cl.Whoami(); code != 200 || user != "alice" {
			t.Fatalf("whoami: %d %q", code, user)
		}
	})
}

func TestBrowserIsRedirectedToLogin(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "")
	cl := NewClient(t, c.Site)

	r := cl.Get("/reports/q3?year=2026&a=b%20c", "Accept: text/html,application/xhtml+xml")
	if r.StatusCode != 302 {
		t.Fatalf("browser navigation without session: %d, want 302", r.StatusCode)
	}
	if loc := r.Header.Get("Location"); loc != "/.session/login?redirect=%2Freports%2Fq3%3Fyear%3D2026%26a%3Db%2520c" {
		t.Fatalf("Location = %q", loc)
	}
	// A POST, even from a browser, is answered 401: a redirect would lose it.
	if r := cl.Post("/form", "application/x-www-form-urlencoded", "a=1", "Accept: text/html"); r.StatusCode != 401 {
		t.Fatalf("browser POST without session: %d, want 401", r.StatusCode)
	}

	// The form login brings the user back where they were going.
	r = cl.LoginForm("alice", alicePassword, "/reports/q3?year=2026")
	if r.StatusCode != 303 || r.Header.Get("Location") != "/reports/q3?year=2026" {
		t.Fatalf("form login: %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
	if e := cl.Get("/reports/q3?year=2026").Echo(t); e.Headers["X-Session-User"][0] != "alice" {
		t.Fatalf("after form login the upstream saw %v", e.Headers["X-Session-User"])
	}
}

func TestLoginPage(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "")
	cl := NewClient(t, c.Site)

	r := cl.Get("/.session/login?redirect=%2Fdocs%3Fa%3D1")
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("login page: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	csp := r.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "style-src 'nonce-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", r.Header.Get("Cache-Control"))
	}
	body := string(r.Body)
	for _, want := range []string{`<label for="username">`, `<label for="password">`, `id="username"`, `id="password"`, `type="password"`, `autocomplete="current-password"`, `name="redirect" value="/docs?a=1"`, `<html lang="en">`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	if regexp.MustCompile(`(?i)(src|href)="?(https?:)?//`).MatchString(body) {
		t.Error("login page loads an outside resource")
	}

	// An unsafe redirect is not carried into the form.
	r = cl.Get("/.session/login?redirect=%2F%2Fevil.example")
	if !strings.Contains(string(r.Body), `name="redirect" value="/"`) {
		t.Error("login page carried an unsafe redirect")
	}
}

func TestFailedLoginIsGeneric(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "login_limit 100 1m")
	cl := NewClient(t, c.Site)

	unknown := cl.LoginForm("nobody", "x", "/")
	wrong := cl.LoginForm("alice", "x", "/")
	if unknown.StatusCode != 401 || wrong.StatusCode != 401 {
		t.Fatalf("failed logins: %d, %d; want 401", unknown.StatusCode, wrong.StatusCode)
	}
	nonce := regexp.MustCompile(`nonce="[^"]*"|value="(nobody|alice)"`)
	if !bytes.Equal(nonce.ReplaceAll(unknown.Body, nil), nonce.ReplaceAll(wrong.Body, nil)) {
		t.Error("the failure page for an unknown user differs from the one for a wrong password")
	}
	if !strings.Contains(string(wrong.Body), "Invalid username or password.") {
		t.Error("the failure page does not say the generic message")
	}
	for _, r := range []*Response{cl.LoginJSON("nobody", "x"), cl.LoginJSON("alice", "x")} {
		if r.StatusCode != 401 || string(r.Body) != "{\"error\":\"invalid credentials\"}\n" {
			t.Errorf("JSON failure: %d %s", r.StatusCode, r.Body)
		}
	}
	if cl.SessionCookie() != "" {
		t.Error("a failed login set a session cookie")
	}
}

func TestCookieFlags(t *testing.T) {
	up := StartUpstream(t)
	tests := []struct {
		name, more string
		want, deny []string
	}{
		{"defaults", "", []string{"caddy_session=", "Path=/", "HttpOnly", "SameSite=Lax"}, []string{"Secure", "Max-Age", "Domain", "Expires"}},
		{"secure always, strict", "cookie {\n secure always\n same_site strict\n}", []string{"Secure", "SameSite=Strict", "HttpOnly"}, []string{"Max-Age"}},
		{"same_site none forces Secure", "cookie {\n same_site none\n}", []string{"Secure", "SameSite=None"}, nil},
		{"persist, name, path, domain", "lifetime 2h\ncookie {\n name app_sess\n path /app\n domain 127.0.0.1\n persist on\n}", []string{"app_sess=", "Path=/app", "Max-Age=7199", "HttpOnly"}, []string{"Secure"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := startSite(t, up, "memory", tt.more)
			r := NewClient(t, c.Site).LoginJSON("alice", alicePassword)
			if r.StatusCode != 200 {
				t.Fatalf("login: %d %s", r.StatusCode, r.Body)
			}
			sc := r.Header.Get("Set-Cookie")
			for _, w := range tt.want {
				if !strings.Contains(sc, w) {
					t.Errorf("Set-Cookie %q lacks %q", sc, w)
				}
			}
			for _, d := range tt.deny {
				if strings.Contains(sc, d) {
					t.Errorf("Set-Cookie %q has %q", sc, d)
				}
			}
		})
	}
}

func TestSessionCookieNotForwarded(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "")
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	sess := cl.SessionCookie()

	raw := "theme=dark; caddy_session=" + sess + "; tracking=\"a b\";lang=en"
	e := cl.Do(cl.NewRequest("GET", "/app", nil, "Cookie: "+raw)).Echo(t)
	// The jar adds its own Cookie line; look at all of them.
	all := strings.Join(e.Headers["Cookie"], "; ")
	if strings.Contains(all, "caddy_session") {
		t.Fatalf("the session cookie reached the upstream: %q", all)
	}
	for _, keep := range []string{"theme=dark", `tracking="a b"`, "lang=en"} {
		if !strings.Contains(all, keep) {
			t.Errorf("cookie %s was not kept as sent: %q", keep, all)
		}
	}
	if e.Headers["X-Session-User"][0] != "alice" {
		t.Fatal("the explicit Cookie line did not carry the session")
	}

	// Only the session cookie: no Cookie header at all upstream.
	bare := NewClient(t, c.Site)
	bare.SetSessionCookie(sess)
	if e := bare.Get("/app").Echo(t); e.Headers["Cookie"] != nil {
		t.Fatalf("upstream got Cookie %q", e.Headers["Cookie"])
	}

	// forward_cookie on keeps it.
	c2 := startSite(t, up, "memory", "forward_cookie on")
	cl2 := NewClient(t, c2.Site)
	cl2.MustLogin("alice", alicePassword)
	if e := cl2.Get("/app").Echo(t); !strings.Contains(strings.Join(e.Headers["Cookie"], ";"), "caddy_session=") {
		t.Fatalf("forward_cookie on: upstream got Cookie %q", e.Headers["Cookie"])
	}
}

func TestLoginRotatesSessionAndCarriesData(t *testing.T) {
	forEachStore(t, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "upstream_control on")
		cl := NewClient(t, c.Site)

		// An anonymous visitor gets a session when the upstream writes one.
		cl.Get("/public/add?h=X-Session-Set-Cart:apple")
		anon := cl.SessionCookie()
		if anon == "" {
			t.Fatal("the upstream's write gave no session")
		}
		cl.MustLogin("alice", alicePassword)
		first := cl.SessionCookie()
		if first == anon {
			t.Fatal("login kept the session ID")
		}
		e := cl.Get("/app").Echo(t)
		if got := e.Headers["X-Session-Data-Cart"]; len(got) != 1 || got[0] != "apple" {
			t.Fatalf("data after login: %q, want [apple]", got)
		}
		// The anonymous session's ID is dead.
		old := NewClient(t, c.Site)
		old.SetSessionCookie(anon)
		if r := old.Get("/public/x"); r.StatusCode != 200 || r.Echo(t).Headers["X-Session-Data-Cart"] != nil {
			t.Fatal("the session ID before login still works")
		}

		// Logging in again rotates again; the previous ID stops working.
		cl.MustLogin("bob", bobPassword)
		if cl.SessionCookie() == first {
			t.Fatal("second login kept the session ID")
		}
		old.SetSessionCookie(first)
		if code, _ := old.Whoami(); code != 401 {
			t.Fatalf("the replaced session still answers whoami: %d", code)
		}
		if _, user := cl.Whoami(); user != "bob" {
			t.Fatalf("whoami after second login: %q", user)
		}
	})
}

func TestWhoami(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "upstream_control on\nidle_timeout 10m\nlifetime 1h")
	cl := NewClient(t, c.Site)
	if code, _ := cl.Whoami(); code != 401 {
		t.Fatalf("anonymous whoami: %d", code)
	}
	before := time.Now().Add(-time.Second)
	cl.MustLogin("alice", alicePassword)
	cl.Get("/x?h=X-Session-Set-Role:admin")
	m := cl.Get("/.session/whoami").JSON(t)
	created, err1 := time.Parse(time.RFC3339, m["created"].(string))
	expires, err2 := time.Parse(time.RFC3339, m["expires"].(string))
	if err1 != nil || err2 != nil {
		t.Fatalf("times are not RFC 3339: %v", m)
	}
	if m["user"] != "alice" || m["data"].(map[string]any)["role"] != "admin" {
		t.Fatalf("whoami: %v", m)
	}
	if created.Before(before.Truncate(time.Second)) || created.After(time.Now()) {
		t.Errorf("created %v is not the login time", created)
	}
	if d := expires.Sub(created); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("expires %v is not about the idle timeout after login", expires)
	}
	if r := cl.Post("/.session/whoami", "text/plain", ""); r.StatusCode != 405 {
		t.Errorf("POST whoami: %d", r.StatusCode)
	}
	if r := cl.Get("/.session/nothing"); r.StatusCode != 404 {
		t.Errorf("unknown endpoint: %d", r.StatusCode)
	}
	if up.Requests.Load() != 1 {
		t.Errorf("the proxy's own endpoints reached the upstream (%d requests)", up.Requests.Load())
	}
}

func TestCustomLoginTemplate(t *testing.T) {
	up := StartUpstream(t)
	dir := t.TempDir()
	writeFile(t, dir+"/login.html", `<!DOCTYPE html><html lang="en"><head>{{template "head" .}}<title>ACME sign-in</title></head>
<body><h1>ACME</h1>{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}"><input type="hidden" name="redirect" value="{{.Redirect}}">
<label for="u">User</label><input id="u" name="username" value="{{.Username}}">
<label for="p">Password</label><input id="p" name="password" type="password"><button>Go</button></form></body></html>`)
	c := startSite(t, up, "memory", "login_template "+dir+"/login.html")
	cl := NewClient(t, c.Site)
	r := cl.Get("/.session/login?redirect=%2Fx%3Cscript%3E")
	body := string(r.Body)
	if r.StatusCode != 200 || !strings.Contains(body, "<h1>ACME</h1>") || !strings.Contains(body, `action="/.session/login"`) {
		t.Fatalf("custom login page: %d %s", r.StatusCode, body)
	}
	nonce := regexp.MustCompile(`<style nonce="([^"]+)">`).FindStringSubmatch(body)
	if nonce == nil || !strings.Contains(r.Header.Get("Content-Security-Policy"), "'nonce-"+nonce[1]+"'") {
		t.Fatal("the shared head's style does not carry the CSP nonce")
	}
	if strings.Contains(body, "<script>") {
		t.Fatal("the custom template did not escape the redirect")
	}
	if r := cl.LoginForm("alice", "wrong", "/"); r.StatusCode != 401 || !strings.Contains(string(r.Body), "<h1>ACME</h1>") {
		t.Fatalf("failed login on the custom page: %d", r.StatusCode)
	}
	// A template that does not parse is a config error, not a broken page.
	writeFile(t, dir+"/bad.html", "{{if}}")
	if _, err := c.TryReload(strings.Replace(siteTemplate, "[[.Extra.more]]", "login_template "+dir+"/bad.html", 1)); err == nil || !strings.Contains(err.Error(), "login_template") {
		t.Fatalf("a broken login_template was accepted: %v", err)
	}
}
