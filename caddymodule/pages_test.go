package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/endpoints"
	"github.com/edgesession/edgesession/pages"
)

// Headers real clients send, as captured from them.
var (
	browserAccept   = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	prototypeAccept = "text/javascript, text/html, application/xml, text/xml, */*"
	jqueryAccept    = "text/html, */*; q=0.01" // dataType: "html"
)

func TestIsNavigation(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    bool
	}{
		{"browser navigation", "GET", map[string]string{"Accept": browserAccept, "Sec-Fetch-Mode": "navigate"}, true},
		{"old browser, no Sec-Fetch", "GET", map[string]string{"Accept": browserAccept}, true},
		{"HEAD navigation", "HEAD", map[string]string{"Accept": browserAccept}, true},
		{"iframe navigation", "GET", map[string]string{"Accept": browserAccept, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, true},
		{"Prototype.js Ajax.Request", "GET", map[string]string{"Accept": prototypeAccept, "X-Requested-With": "XMLHttpRequest"}, false},
		{"jQuery $.get html", "GET", map[string]string{"Accept": jqueryAccept, "X-Requested-With": "XMLHttpRequest", "Sec-Fetch-Mode": "cors"}, false},
		{"X-Requested-With empty", "GET", map[string]string{"Accept": browserAccept, "X-Requested-With": ""}, false},
		{"fetch() same-origin", "GET", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "same-origin"}, false},
		{"fetch() cors", "GET", map[string]string{"Accept": "*/*, text/html", "Sec-Fetch-Mode": "cors"}, false},
		{"fetch() no-cors", "GET", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "no-cors"}, false},
		{"websocket", "GET", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "websocket"}, false},
		{"form POST", "POST", map[string]string{"Accept": browserAccept, "Sec-Fetch-Mode": "navigate"}, false},
		{"curl", "GET", map[string]string{"Accept": "*/*"}, false},
		{"no Accept", "GET", nil, false},
		{"API client", "GET", map[string]string{"Accept": "application/json"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/x", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if got := pages.IsNavigation(r); got != tt.want {
				t.Errorf("isNavigation = %v, want %v", got, tt.want)
			}
			// And what the handler answers.
			h := newTestHandler(t, nil)
			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, r, okHandler); err != nil {
				t.Fatal(err)
			}
			if tt.want {
				if w.Code != http.StatusFound || !strings.HasPrefix(w.Header().Get("Location"), "/.session/login?redirect=") {
					t.Errorf("navigation answered %d Location %q, want 302 to the login page", w.Code, w.Header().Get("Location"))
				}
				return
			}
			if w.Code != http.StatusUnauthorized || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != "{\"error\":\"login required\"}\n" {
				t.Errorf("answered %d %q %q, want 401 JSON login required", w.Code, w.Header().Get("Content-Type"), w.Body)
			}
		})
	}
}

func TestStrippedPrefix(t *testing.T) {
	const no, cut = false, true
	tests := []struct {
		orig, current, want string
		stripped            bool
	}{
		{"/app/reports", "/reports", "/app", cut},
		{"/app/", "/", "/app", cut},
		{"/a/b/c/x", "/c/x", "/a/b", cut},
		{"/APP/x", "/x", "/APP", cut},                                  // strip_prefix is case-insensitive; the browser's spelling stays
		{"/caf%C3%A9/x", "/x", "/caf%C3%A9", cut},                      // kept escaped
		{"/app//x", "/x", "/app", cut},                                 // strip_prefix cleans first
		{"/app/a/../x", "/x", "/app", cut},                             // likewise
		{"/x", "/x", "", no},                                           // nothing stripped
		{"/a//b", "/a//b", "", no},                                     // nothing stripped, not cleaned
		{"/a//b", "/a/b", "", no},                                      // only cleaned
		{"/foo/bar", "/index.php", "", no},                             // another rewrite
		{"/x/app", "/x", "", no},                                       // a suffix strip
		{"//evil.example/x", "/x", "/evil.example", cut},               // cleaned as strip_prefix cleans it: a local path, never a host
		{"/%2F%2Fevil.example/x", "/x", "", cut},                       // likewise, encoded: cut, and no mount to trust
		{"/%5Cevil.example/x", "/x", "", cut},                          // a backslash, encoded
		{"/app%0a/x", "/x", "", cut},                                   // a control character
		{"/%2e%2e/x", "/x", "", cut},                                   // an encoded dot segment
		{"/wiki%2fy", "%2fy", "", cut},                                 // strip_prefix /wiki cut before an encoded '/'
		{"/wiki%2F.session/sessions", "%2F.session/sessions", "", cut}, // likewise
		{"/app/x", "x", "", cut},                                       // not a path
		{"/app/x", "", "", cut},                                        // not a path
		{"/" + strings.Repeat("a", 2000) + "/x", "/x", "", cut},        // too long
	}
	for _, tt := range tests {
		if got, stripped := strippedPrefix(tt.orig, tt.current); got != tt.want || stripped != tt.stripped {
			t.Errorf("strippedPrefix(%q, %q) = %q, %v; want %q, %v", tt.orig, tt.current, got, stripped, tt.want, tt.stripped)
		}
	}
}

// mounted is a request as `handle_path /app/*` hands it on: its original
// path kept in the context, its current path stripped of /app.
func mounted(method, original string) *http.Request {
	r := httptest.NewRequest(method, original, nil)
	orig := *r.URL
	r.URL.Path = strings.TrimPrefix(r.URL.Path, "/app")
	r.URL.RawPath = ""
	r.RequestURI = "" // Caddy keeps it as the client sent it; the handler must not read it
	return r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, http.Request{Method: method, URL: &orig}))
}

func TestMountedURLs(t *testing.T) {
	h := newTestHandler(t, nil)
	var err error
	if h.pages, err = pages.Load(""); err != nil {
		t.Fatal(err)
	}
	h.setupEndpoints()
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		t.Helper()
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, okHandler); err != nil {
			t.Fatal(err)
		}
		return w
	}

	r := mounted("GET", "/app/reports?q=1")
	r.Header.Set("Accept", browserAccept)
	if w := serve(r); w.Code != 302 || w.Header().Get("Location") != "/app/.session/login?redirect=%2Fapp%2Freports%3Fq%3D1" {
		t.Errorf("login required under /app: %d Location %q", w.Code, w.Header().Get("Location"))
	}

	w := serve(mounted("GET", "/app/.session/login"))
	for _, want := range []string{`action="/app/.session/login"`, `name="redirect" value="/app/"`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("login page under /app lacks %s:\n%s", want, w.Body)
		}
	}
	w = serve(mounted("GET", "/app/.session/logout"))
	if body := w.Body.String(); !strings.Contains(body, `action="/app/.session/logout"`) || strings.Contains(body, `name="redirect"`) {
		t.Errorf("logout page under /app: want its action under /app and no redirect field:\n%s", body)
	}
	w = serve(mounted("GET", "/app/.session/logout?next=%2Fapp%2Fbye"))
	if !strings.Contains(w.Body.String(), `name="redirect" value="/app/bye"`) {
		t.Errorf("logout page does not carry next:\n%s", w.Body)
	}

	// Logout lands on the signed-out login page, under /app.
	r = mounted("POST", "/app/.session/logout")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if w := serve(r); w.Code != 303 || w.Header().Get("Location") != "/app/.session/login?signed_out=1" {
		t.Errorf("logout under /app: %d Location %q", w.Code, w.Header().Get("Location"))
	}
	w = serve(mounted("GET", "/app/.session/login?signed_out=1"))
	if !strings.Contains(w.Body.String(), "You have signed out.") {
		t.Errorf("the signed-out login page does not say so:\n%s", w.Body)
	}
	// Logged in, the page does not claim the user signed out.
	r = mounted("GET", "/app/.session/login?signed_out=1")
	r.Header.Set("Cookie", loggedIn(t, h, "alice"))
	if w := serve(r); strings.Contains(w.Body.String(), "signed out") {
		t.Errorf("a logged-in user's login page says they signed out")
	}
}

func TestLoginPageReadsNext(t *testing.T) {
	h := newTestHandler(t, nil)
	h.Title = "Acme <Wiki>"
	var err error
	if h.pages, err = pages.Load(""); err != nil {
		t.Fatal(err)
	}
	h.setupEndpoints()
	for target, want := range map[string]string{
		"/.session/login?next=%2Fdocs%3Fa%3D1":                     `name="redirect" value="/docs?a=1"`,
		"/.session/login?next=%2F%2Fevil.example":                  `name="redirect" value="/"`,
		"/.session/login?redirect=%2Fmine&next=%2Fnot-this-one":    `name="redirect" value="/mine"`,
		"/.session/login?next=" + url.QueryEscape("/x\"><script>"): `name="redirect" value="/x&#34;&gt;&lt;script&gt;"`,
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", target, nil), okHandler)
		body := w.Body.String()
		if !strings.Contains(body, want) {
			t.Errorf("GET %s: page lacks %s", target, want)
		}
		if !strings.Contains(body, "<title>Sign in to Acme &lt;Wiki&gt;</title>") || !strings.Contains(body, ">Sign in to Acme &lt;Wiki&gt;</h1>") {
			t.Errorf("GET %s: the page does not carry the title", target)
		}
	}
}

func TestCaddyfileTitle(t *testing.T) {
	out, err := adapt(t, "store memory\ntitle \"Acme Wiki\"")
	if err != nil || !strings.Contains(out, `"title":"Acme Wiki"`) {
		t.Fatalf("title: %v\n%s", err, out)
	}
	for body, want := range map[string]string{
		"title":                             "title needs one value",
		"title Acme Wiki":                   `quote a name with spaces`,
		"title \"a\nb\"":                    "want printable text",
		"title a\ntitle b":                  "title given twice",
		"title " + strings.Repeat("t", 201): "at most 200 bytes",
	} {
		if _, err := adapt(t, body); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Caddyfile:") {
			t.Errorf("%q: %v, want an error naming the line that says %q", body, err, want)
		}
	}
}

// FuzzStrippedPrefix: whatever path a client sends, the mount prefix is
// "" or a local path that the handler's URLs can follow.
func FuzzStrippedPrefix(f *testing.F) {
	for _, s := range [][2]string{{"/app/x", "/x"}, {"//evil/x", "/x"}, {"/%2e%2e/x", "/x"}, {"/a%5c/x", "/x"}, {"/\\/x", "/x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, orig, current string) {
		got, _ := strippedPrefix(orig, current)
		if got == "" {
			return
		}
		if !validMount(got) || !endpoints.LocalPath(got+"/.session/login?redirect=%2F") || !endpoints.LocalPath(got+"/") {
			t.Fatalf("strippedPrefix(%q, %q) = %q: not a safe local prefix", orig, current, got)
		}
		u, err := url.Parse("http://site.example" + got + "/.session/login")
		if err != nil || u.Host != "site.example" {
			t.Fatalf("strippedPrefix(%q, %q) = %q: resolves to %v", orig, current, got, u)
		}
	})
}
