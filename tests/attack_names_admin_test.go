// Attacks on user names through the admin API.

package tests

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// TestAttackNamesAdminAPI: the admin API for qualified names and their
// encodings, and revoke-all through every path, method and browser
// request an attacker could make: only the confirmed POST from a
// non-browser revokes anything.
func TestAttackNamesAdminAPI(t *testing.T) {
	c, _, _ := startAttackNamesSite(t)
	local, corp := NewClient(t, c.Site), NewClient(t, c.Site)
	local.MustLogin("alice", alicePassword)
	OIDCLogin(t, corp, "test", "alice", "alice-pw")

	for _, p := range []string{"test:alice", "test%3Aalice", "test%3aalice", "%74est:alice"} {
		if ss := adminList(t, c, p); len(ss) != 1 || ss[0].Source != "oidc:test" {
			t.Errorf("GET /session/users/%s: %+v; want test:alice's one session", p, ss)
		}
	}
	if ss := adminList(t, c, "alice"); len(ss) != 1 || ss[0].Source != "password" {
		t.Errorf("GET /session/users/alice: %+v", ss)
	}

	for _, tt := range []struct{ method, path, body string }{
		{"DELETE", "/session/users/test%3A..", ""},
		{"DELETE", "/session/users/test:..%2F", ""},
		{"DELETE", "/session/users/..%2Ftest:alice", ""},
		{"DELETE", "/session/users/test%253Aalice", ""},
		{"DELETE", "/session/users/test:alice%00", ""},
		{"DELETE", "/session/users/:alice", ""},
		{"DELETE", "/session/users/test:", ""},
		{"DELETE", "/session/users/test:alice/revoke-all", ""},
		{"GET", "/session/revoke-all", ""},
		{"DELETE", "/session/revoke-all", ""},
		{"PUT", "/session/revoke-all", `{"confirm":"every session"}`},
		{"POST", "/session/revoke-all", ""},
		{"POST", "/session/revoke-all", `{"confirm":"every session "}`},
		{"POST", "/session/revoke-all", `{"confirm":"Every Session"}`},
		{"POST", "/session/revoke-all", `{"Confirm":"every  session"}`},
		{"POST", "/session/revoke-all", `["every session"]`},
		{"POST", "/session/revoke-all/", `{"confirm":"every session"}`},
		{"POST", "/session/revoke%2Dall", `{"confirm":"every session"}`},
		{"POST", "/session/REVOKE-ALL", `{"confirm":"every session"}`},
		{"POST", "/session/users/x/..%2F..%2Frevoke-all", `{"confirm":"every session"}`},
		{"POST", "/session/users/%2E%2E/revoke-all", `{"confirm":"every session"}`},
		{"POST", "/session/all", `{"confirm":"every session"}`},
	} {
		if code, body := c.Admin(tt.method, tt.path, tt.body); code/100 == 2 {
			t.Errorf("%s %s %s: %d %s; want a refusal", tt.method, tt.path, tt.body, code, body)
		}
	}
	// One user's handle under another's name revokes nothing.
	lh, ch := adminList(t, c, "alice")[0].Handle, adminList(t, c, "test:alice")[0].Handle
	for _, p := range []string{"/session/users/test:alice/" + lh, "/session/users/alice/" + ch, "/session/users/test%3Aalice/" + lh} {
		if code, body := c.Admin("DELETE", p); code != http.StatusNotFound {
			t.Errorf("DELETE %s (the other alice's handle): %d %s; want 404", p, code, body)
		}
	}
	if !signedIn(t, local) || !signedIn(t, corp) {
		t.Fatal("a handle under the other alice's name revoked her session")
	}
	// A user may be called revoke-all: asking about her is asking about
	// her alone.
	if code, body := c.Admin("DELETE", "/session/users/revoke-all"); code != 200 || !strings.Contains(string(body), `"revoked":0`) {
		t.Errorf("DELETE /session/users/revoke-all: %d %s; want 200, none revoked", code, body)
	}
	// Dot segments go through Caddy's admin mux as sent.
	admin := "http://127.0.0.1:" + strconv.Itoa(c.AdminPort)
	for _, target := range []string{"/session/./revoke-all", "/session/users/../revoke-all", "/session//revoke-all", "/session/users/a/../../revoke-all"} {
		body := `{"confirm":"every session"}`
		r := rawRequest(t, admin, "POST "+target+" HTTP/1.1\r\nHost: 127.0.0.1:"+strconv.Itoa(c.AdminPort)+"\r\nConnection: close\r\n"+
			"Content-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		if r.StatusCode/100 == 2 {
			t.Errorf("POST %s: %d %s; want no revocation", target, r.StatusCode, r.Body)
		}
	}
	// A web page the admin visits: a cross-site form POST (text/plain
	// encoding makes the body JSON-like) or a no-cors fetch.
	formBody := `{"confirm":"every session","x":"="}` + "\r\n"
	for _, hs := range [][]string{
		{"Origin: http://evil.example", "Content-Type: text/plain"},
		{"Origin: null", "Content-Type: text/plain"},
		{"Origin: http://evil.example", "Sec-Fetch-Mode: no-cors", "Content-Type: text/plain"},
		{"Sec-Fetch-Mode: navigate", "Sec-Fetch-Site: cross-site", "Content-Type: text/plain"},
	} {
		req := "POST /session/revoke-all HTTP/1.1\r\nHost: 127.0.0.1:" + strconv.Itoa(c.AdminPort) + "\r\nConnection: close\r\n" +
			strings.Join(hs, "\r\n") + "\r\nContent-Length: " + strconv.Itoa(len(formBody)) + "\r\n\r\n" + formBody
		if r := rawRequest(t, admin, req); r.StatusCode/100 == 2 {
			t.Errorf("a browser's cross-site POST (%s): %d %s; want a refusal", strings.Join(hs, "; "), r.StatusCode, r.Body)
		}
	}
	if !signedIn(t, local) || !signedIn(t, corp) {
		t.Fatal("a refused request revoked sessions")
	}

	// caddy session: revoke-all without --yes refuses; qualified names
	// are listed as the API has them.
	addr := "127.0.0.1:" + strconv.Itoa(c.AdminPort)
	if out, err := sessionCmd(t, "revoke-all", "--address", addr); err == nil {
		t.Errorf("caddy session revoke-all without --yes: %s", out)
	}
	for _, bad := range []string{"test:..", "test:a/b", ":alice", "test%3Aalice", "../session/revoke-all"} {
		if out, err := sessionCmd(t, "revoke", bad, "--address", addr); err == nil {
			t.Errorf("caddy session revoke %s: %s", bad, out)
		}
	}
	if !signedIn(t, local) || !signedIn(t, corp) {
		t.Fatal("a refused caddy session command revoked sessions")
	}
	if out, err := sessionCmd(t, "list", "test:alice", "--address", addr); err != nil || !strings.Contains(out, "oidc:test") {
		t.Errorf("caddy session list test:alice: %v\n%s", err, out)
	}
	// What a client writes in its User-Agent reaches the admin's
	// terminal through caddy session list: no escape sequence (C1 CSI;
	// Go's server refuses C0 ESC in a header) nor bidi override may.
	body := `{"username":"alice","password":"` + alicePassword + `"}`
	ua := "User-Agent: Mozilla \u009b2J\u009b31m red \u202Eevil"
	r := rawRequest(t, c.Site, "POST /.session/login HTTP/1.1\r\nHost: "+strings.TrimPrefix(c.Site, "http://")+"\r\nConnection: close\r\n"+ua+
		"\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	if r.StatusCode != 200 {
		t.Fatalf("login with a User-Agent of C1 and bidi characters: %d %s", r.StatusCode, r.Body)
	}
	out, err := sessionCmd(t, "list", "alice", "--address", addr)
	if err != nil || !strings.Contains(out, "Mozilla") {
		t.Errorf("caddy session list alice: %v\n%s", err, out)
	}
	if strings.ContainsAny(out, "\u009b\u202E") {
		t.Errorf("caddy session list prints the client's C1 or bidi characters: %q", out)
	}
	// The upstream cannot log in a provider's user, nor a look-alike of
	// one that reads as qualified.
	for _, name := range []string{"test:alice", "TEST:alice", " test:alice", "test:alice "} {
		local.Get("/x?h=" + url.QueryEscape("X-Session-Login:"+name)).Echo(t)
		if u, s := who(t, local); u != "alice" || s != "password" {
			t.Errorf("the upstream logged in %q: now %q from %q", name, u, s)
		}
	}
}
