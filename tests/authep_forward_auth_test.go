package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The auth endpoint behind Caddy's own forward_auth: a second Caddy, in
// front of the upstream, asks the first one's <prefix>/auth about each
// request and routes <prefix>/* (the login page) to it.

// authServerTemplate is the auth server: session with auth_endpoint,
// trusting the proxy on 127.0.0.1.
const authServerTemplate = `
[[.Site]] {
	session {
		store memory
		user alice [[.Extra.alice]] admin
		user bob [[.Extra.bob]]
		public {
			path /public/*
		}
		allow group admin {
			path /admin/*
		}
		user_header Remote-User
		auth_endpoint
	}
	respond "auth server: nothing here" 404
}
`

// forwardAuthTemplate is the proxy in front: Caddy's forward_auth with
// copy_headers, the login page and logout through to the auth server.
const forwardAuthTemplate = `
[[.Site]] {
	handle /.session/* {
		reverse_proxy [[.Extra.auth]]
	}
	handle {
		forward_auth [[.Extra.auth]] {
			uri /.session/auth
			copy_headers X-Session-User X-Session-Groups X-Session-Source Remote-User
		}
		reverse_proxy [[.Upstream]]
	}
}
`

func TestAuthEndpointBehindCaddyForwardAuth(t *testing.T) {
	up := StartUpstream(t)
	auth := StartCaddy(t, up.Addr, authServerTemplate,
		WithGlobals("servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}"),
		WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	authHost := strings.TrimPrefix(auth.Site, "http://")
	proxy := StartCaddy(t, up.Addr, forwardAuthTemplate, WithExtra("auth", authHost))

	// A browser is sent to the login page on the app's host, with the
	// original URL to come back to.
	c := NewClient(t, proxy.Site)
	nav := []string{"Accept: text/html", "Sec-Fetch-Mode: navigate"}
	r := c.Get("/app/x?a=1", nav...)
	want := proxy.Site + "/.session/login?redirect=" + url.QueryEscape(proxy.Site+"/app/x?a=1")
	if r.StatusCode != http.StatusFound || r.Header.Get("Location") != want {
		t.Fatalf("anonymous navigation: %d %q, want 302 %q\n%s", r.StatusCode, r.Header.Get("Location"), want, auth.Logs())
	}
	// A script gets 401.
	if r := c.Get("/app/x", "Accept: application/json"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous script: %d", r.StatusCode)
	}
	// Anonymous on a public path, with a forged identity: passes, and the
	// upstream sees none of it.
	r = c.Get("/public/x", "X-Session-User: mallory", "Remote-User: mallory")
	if e := r.Echo(t); http.Header(e.Headers).Get("X-Session-User") != "" || http.Header(e.Headers).Get("Remote-User") != "" {
		t.Fatalf("public, forged: the upstream got %v", e.Headers)
	}

	// The login page (through the proxy, on the app's host) sends the
	// browser back to the original, absolute URL.
	login := c.Get(strings.TrimPrefix(want, proxy.Site), nav...)
	if login.StatusCode != 200 || !strings.Contains(string(login.Body), "app%2fx") && !strings.Contains(string(login.Body), "/app/x") {
		t.Fatalf("login page: %d %s", login.StatusCode, login.Body)
	}
	r = c.LoginForm("alice", alicePassword, proxy.Site+"/app/x?a=1")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != proxy.Site+"/app/x?a=1" {
		t.Fatalf("login: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	// An absolute URL of another host is not followed.
	if r := c.LoginForm("alice", alicePassword, "http://evil.example/"); r.Header.Get("Location") != "/" {
		t.Fatalf("login to another host: %q", r.Header.Get("Location"))
	}

	// Back at the app: the upstream sees alice, never a forged name.
	e := c.Get("/app/x?a=1", append(nav, "X-Session-User: mallory", "Remote-User: mallory", "X-Session-Groups: root")...).Echo(t)
	if http.Header(e.Headers).Get("X-Session-User") != "alice" || http.Header(e.Headers).Get("Remote-User") != "alice" || http.Header(e.Headers).Get("X-Session-Groups") != "admin" {
		t.Fatalf("logged in: the upstream got %v", e.Headers)
	}
	if v := http.Header(e.Headers).Values("X-Session-User"); len(v) != 1 {
		t.Fatalf("X-Session-User %v", v)
	}
	if e := c.Get("/admin/x").Echo(t); http.Header(e.Headers).Get("X-Session-User") != "alice" {
		t.Fatalf("alice on /admin: %v", e.Headers)
	}

	// A rule denies bob /admin, in every reading.
	b := NewClient(t, proxy.Site)
	b.MustLogin("bob", bobPassword)
	for _, p := range []string{"/admin/x", "/Admin/x", "/admin;x/y", "/%61dmin/x", "/index.php/admin/x"} {
		if r := b.Get(p, "Accept: application/json"); r.StatusCode != http.StatusForbidden {
			t.Errorf("bob on %s: %d %s", p, r.StatusCode, r.Body)
		}
	}
	if e := b.Get("/app/x").Echo(t); http.Header(e.Headers).Get("X-Session-User") != "bob" {
		t.Fatalf("bob on /app: %v", e.Headers)
	}

	// Logout ends it.
	if r := c.LogoutJSON(); r.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
	}
	if r := c.Get("/app/x", nav...); r.StatusCode != http.StatusFound {
		t.Fatalf("after logout: %d", r.StatusCode)
	}
}

// TestAuthEndpointRefusesUntrustedForwardedHeaders: without
// trusted_proxies, a client that asks the auth endpoint itself with
// X-Forwarded-* of its own choosing gets 400 and no identity, logged in
// or not; the warning names its address.
func TestAuthEndpointRefusesUntrustedForwardedHeaders(t *testing.T) {
	up := StartUpstream(t)
	auth := StartCaddy(t, up.Addr, authServerTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	c := NewClient(t, auth.Site)
	forged := []string{"X-Forwarded-Uri: /public/x", "X-Forwarded-Method: GET", "X-Forwarded-Host: 127.0.0.1", "X-Forwarded-Proto: https", "X-Original-URI: /public/x"}
	for _, who := range []string{"anonymous", "bob"} {
		if who == "bob" {
			c.MustLogin("bob", bobPassword)
		}
		r := c.Get("/.session/auth", forged...)
		if r.StatusCode != http.StatusBadRequest || r.Header.Get("X-Session-User") != "" || !strings.Contains(string(r.Body), "no original request from a trusted proxy") {
			t.Fatalf("%s: %d %v %s", who, r.StatusCode, r.Header, r.Body)
		}
	}
	waitFor(t, 5*time.Second, "the warning", func() bool {
		return strings.Contains(auth.Logs(), "auth endpoint: request refused: not from a trusted proxy") && strings.Contains(auth.Logs(), `"remote_ip":"127.0.0.1"`)
	})
}
