package endpoints

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	whatwg "github.com/nlnwa/whatwg-url/url"
)

func testRedirectServer(t *testing.T, hosts ...string) *Server {
	t.Helper()
	rh, err := NewRedirectHosts(hosts)
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{RedirectHosts: rh})
}

// TestRedirectHostsEntries: what redirect_hosts accepts, normalized, and
// what it refuses.
func TestRedirectHostsEntries(t *testing.T) {
	for in, want := range map[string]string{
		"App.Example.COM":       "app.example.com",
		"*.example.com":         "*.example.com",
		"app.example.com:8443":  "app.example.com:8443",
		"*.example.com:8443":    "*.example.com:8443",
		"bücher.example":        "xn--bcher-kva.example",
		"127.0.0.1:9000":        "127.0.0.1:9000",
		"*.com":                 "",
		"*":                     "",
		"*.":                    "",
		"example.com.":          "",
		".example.com":          "",
		"a..example.com":        "",
		"exa mple.com":          "",
		"ex%61mple.com":         "",
		"user@example.com":      "",
		"example.com/x":         "",
		"example.com:0":         "",
		"example.com:99999":     "",
		"example.com:":          "",
		"https://example.com":   "",
		"-bad.example.com":      "",
		"*.*.example.com":       "",
		"example.com\\evil.net": "",
		"":                      "",
	} {
		got, err := NormalizeRedirectHost(in)
		if want == "" {
			if err == nil {
				t.Errorf("NormalizeRedirectHost(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("NormalizeRedirectHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// redirectVariants are targets an attacker may try, each to land on a
// host that is not allowed: every one must fall back to home.
func redirectVariants() []string {
	evil := []string{"evil.net", "evilexample.com", "example.com.evil.net", "example.com", "app.example.com.evil.net", "xample.com"}
	var out []string
	for _, host := range evil {
		for _, pre := range []string{
			"https://", "http://", "//", "///", "\\\\", "/\\", "\\/", "https:/\\", "https:\\\\", "https:", "https:/", "HTTPS://",
			" https://", "\thttps://", "https:\t//", "https://\n", "https://user@", "https://app.example.com@", "https://app.example.com:pw@",
			"javascript://", "data:text/html,", "ftp://", "https%3A%2F%2F", "/%2F", "/%5C",
		} {
			out = append(out, pre+host, pre+host+"/", pre+host+"/x?y#z")
		}
	}
	out = append(out,
		// Allowed hosts in disguise: userinfo, backslashes, tabs, Unicode
		// dots, trailing dots, ports, percent-encoding.
		"https://app.example.com\\@evil.net/", "https://app.example.com\\.evil.net/", "https://evil.net\\@app.example.com/",
		"https://evil.net#@app.example.com/", "https://evil.net?@app.example.com/", "https://evil.net/@app.example.com",
		"https://app.example.com%2eevil.net/", "https://%61pp.example.com/", "https://app%2eexample.com/",
		"https://app.example.com%00.evil.net/", "https://app.example.com%E3%80%82evil.net/",
		"https://app\u3002example.com/", "https://app\uff0eexample.com/", "https://app.example\u3002com/", "https://app.example.com\u3002evil.net/",
		"https://ａpp.example.com/", "https://app.example.com./", "https://app.example.com../", "https://.app.example.com/",
		"https://app.example.com:443/", "https://app.example.com:8443/", "https://app.example.com:/", "https://app.example.com:0/",
		"https://app.example.com:99999/", "https://app.example.com:+443/", "https://[::1]/", "https://app.example.com//evil.net",
		"https://app.\texample.com/", "https://app.example.com\t/", "https://app.example.com\n/", "https://app.example.com\r\n/",
		"https://app.example.com /", "https://app.example.com\x00/", "http://app.example.com/", "HTTP://app.example.com/",
		"javascript:alert(1)", "javascript://app.example.com/%0aalert(1)", "JaVaScRiPt://app.example.com/", "data:text/html,<script>",
		"https://example.com/", "https://evilexample.com/", "https://a.evilexample.com/", "https://example.com.evil.net/",
		"https://x.example.com.evil.net/", "https://x.example.com:8443/", "https://x.y.example.com:443/",
		"https://app.example.com"+strings.Repeat("/a", 1100),
	)
	return out
}

// TestRedirectAllowList: allowed hosts pass as they are; every variant
// an attacker may try falls back to home, served over https.
func TestRedirectAllowList(t *testing.T) {
	s := testRedirectServer(t, "app.example.com", "*.example.com", "ports.example.org:8443")
	r := httptest.NewRequest("GET", "https://login.example.com/.session/login", nil)
	for _, ok := range []string{
		"https://app.example.com", "https://app.example.com/", "https://app.example.com/a/b?c=d#e", "https://APP.Example.com/x",
		"https://x.example.com/", "https://a.b.c.example.com/x", "https://ports.example.org:8443/", "https://login.example.com/x",
		"/local/path", "HTTPS://app.example.com/x",
	} {
		if got := s.redirectTarget(r, ok, "/home"); got != ok {
			t.Errorf("redirectTarget(%q) = %q, want it as it is", ok, got)
		}
	}
	for _, bad := range redirectVariants() {
		if got := s.redirectTarget(r, bad, "/home"); got != "/home" {
			t.Errorf("redirectTarget(%q) = %q, want /home", bad, got)
		}
	}
	// http targets only from a page served over http.
	plain := httptest.NewRequest("GET", "http://login.example.com/.session/login", nil)
	if got := s.redirectTarget(plain, "http://app.example.com/x", "/home"); got != "http://app.example.com/x" {
		t.Errorf("from an http page, http://app.example.com/x: %q", got)
	}
	if got := s.redirectTarget(r, "http://login.example.com/x", "/home"); got != "/home" {
		t.Errorf("from an https page, its own origin over http: %q", got)
	}
	// Without redirect_hosts, only the page's own origin.
	none := testRedirectServer(t)
	if got := none.redirectTarget(r, "https://app.example.com/", "/home"); got != "/home" {
		t.Errorf("no redirect_hosts: %q", got)
	}
	if got := none.redirectTarget(r, "https://login.example.com/x", "/home"); got != "https://login.example.com/x" {
		t.Errorf("no redirect_hosts, own origin: %q", got)
	}
}

// TestRedirectParamAliases: redirect, then rd, then next.
func TestRedirectParamAliases(t *testing.T) {
	r := httptest.NewRequest("GET", "/?next=/n&rd=/r", nil)
	if got := redirectParam(r.URL.Query()); got != "/r" {
		t.Errorf("rd and next: %q", got)
	}
	r = httptest.NewRequest("GET", "/?next=/n&rd=/r&redirect=/x", nil)
	if got := redirectParam(r.URL.Query()); got != "/x" {
		t.Errorf("all three: %q", got)
	}
}

// Run with, e.g., go test ./endpoints -run '^$' -fuzz '^FuzzRedirectTarget$' -fuzztime 60s -parallel 1
func FuzzRedirectTarget(f *testing.F) {
	for _, v := range redirectVariants() {
		f.Add(v)
	}
	f.Add("https://app.example.com/x")
	f.Add("https://a.example.com/")
	f.Fuzz(func(t *testing.T, target string) {
		s := New(Config{RedirectHosts: fuzzHosts})
		r := httptest.NewRequest("GET", "https://login.example.com/", nil)
		got := s.redirectTarget(r, target, "/home")
		if got == "/home" || localPath(got) {
			return
		}
		// As a browser reads the Location header.
		u, err := whatwg.ParseRef("https://login.example.com/", got)
		if err != nil {
			t.Fatalf("redirectTarget(%q) accepted what a browser cannot parse: %v", target, err)
		}
		host := u.Hostname()
		if u.Scheme() != "https" || u.Username() != "" || u.Password() != "" || u.Port() != "" ||
			!(host == "app.example.com" || host == "login.example.com" || strings.HasSuffix(host, ".example.com")) {
			t.Fatalf("redirectTarget(%q) = %q: a browser goes to %s", target, got, u.Href(false))
		}
	})
}

var fuzzHosts, _ = NewRedirectHosts([]string{"app.example.com", "*.example.com"})

// TestLoginLogoutFollowAllowedHosts: the form login, the JSON login's rd
// and the logout go back to an allowed absolute URL, and home otherwise.
func TestLoginLogoutFollowAllowedHosts(t *testing.T) {
	s := testServer(t)
	s.c.RedirectHosts, _ = NewRedirectHosts([]string{"*.example.com"})
	login := func(ctype, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "https://login.example.com/.session/login", strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		r.Header.Set("Accept", "text/html")
		return serve(s, r)
	}
	form := "application/x-www-form-urlencoded"
	for body, want := range map[string]string{
		"username=alice&password=secret&rd=https%3A%2F%2Fapp.example.com%2Fx":       "https://app.example.com/x",
		"username=alice&password=secret&redirect=https%3A%2F%2Fapp.example.com%2Fx": "https://app.example.com/x",
		"username=alice&password=secret&next=https%3A%2F%2Fapp.example.com%2Fx":     "https://app.example.com/x",
		"username=alice&password=secret&rd=https%3A%2F%2Fevil.net%2Fx":              "/",
		"username=alice&password=secret&rd=https%3A%2F%2Fexample.com%2Fx":           "/",
		"username=alice&password=secret&rd=http%3A%2F%2Fapp.example.com%2Fx":        "/",
	} {
		if w := login(form, body); w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
			t.Errorf("%s: %d %q, want %q", body, w.Code, w.Header().Get("Location"), want)
		}
	}
	if w := login("application/json", `{"username":"alice","password":"secret","rd":"https://evil.net/"}`); w.Code != 200 {
		t.Errorf("JSON login: %d", w.Code)
	}
	r := httptest.NewRequest("POST", "https://login.example.com/.session/logout?", strings.NewReader("rd=https%3A%2F%2Fa.b.example.com%2F"))
	r.Header.Set("Content-Type", form)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if w := serve(s, r); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "https://a.b.example.com/" {
		t.Errorf("logout: %d %q", w.Code, w.Header().Get("Location"))
	}
	r = httptest.NewRequest("POST", "https://login.example.com/.session/logout?", strings.NewReader("rd=https%3A%2F%2Fexample.com.evil.net%2F"))
	r.Header.Set("Content-Type", form)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if w := serve(s, r); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Errorf("logout to evil: %d %q", w.Code, w.Header().Get("Location"))
	}
}
