package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/go-jose/go-jose/v4"

	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/sessionstore"
)

// The auth endpoint (<prefix>/auth) at the handler's level: what a proxy
// in front is told about an original request.

// authHandler is attackHandler (testRules, `public /public/* *.css`,
// split .php) with the auth endpoint on.
func authHandler(t testing.TB) *Handler {
	h := attackHandler(t)
	h.AuthEndpoint = true
	var err error
	if h.pages, err = pages.Load(""); err != nil {
		t.Fatal(err)
	}
	h.setupEndpoints()
	return h
}

// withCaddyContext gives r what Caddy's server gives a request: a
// replacer and the variables, trusted_proxy among them.
func withCaddyContext(r *http.Request, trusted bool) *http.Request {
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "192.0.2.1", caddyhttp.TrustedProxyVarKey: trusted})
	return r.WithContext(ctx)
}

// serveStatus runs r through the handler and returns the status the
// client sees: the response's, or the error's (Caddy's error routes
// answer it).
func serveStatus(t testing.TB, h *Handler, r *http.Request) (int, *httptest.ResponseRecorder) {
	t.Helper()
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, r, okHandler)
	if err != nil {
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) {
			t.Fatalf("%s %s: %v", r.Method, r.URL, err)
		}
		return he.StatusCode, w
	}
	return w.Code, w
}

// askAuth asks the auth endpoint about an original request, as a proxy
// does (trusted or not), with the client's headers hdr.
func askAuth(t testing.TB, h *Handler, trusted bool, query string, hdr map[string]string) (int, *httptest.ResponseRecorder) {
	t.Helper()
	r := withCaddyContext(httptest.NewRequest("GET", "/.session/auth"+query, nil), trusted)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	return serveStatus(t, h, r)
}

func TestAuthEndpointPasses(t *testing.T) {
	h := authHandler(t)
	testAsserter(t, h)
	h.setupEndpoints()
	cookie := loggedIn(t, h, "alice")
	code, w := askAuth(t, h, true, "", map[string]string{
		"Cookie": cookie, "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/billing/x?y=1",
		"X-Forwarded-Host": "example.com", "X-Forwarded-Proto": "https",
		// Forged identity from the client, which the proxy passed along.
		"X-Session-User": "mallory", "Remote-User": "mallory", "X-Session-Groups": "admin", "X-Session-Assertion": "forged",
	})
	if code != 200 || w.Body.Len() != 0 {
		t.Fatalf("%d %q", code, w.Body)
	}
	hdr := w.Header()
	if hdr.Get("X-Session-User") != "alice" || hdr.Get("Remote-User") != "alice" || hdr.Get("X-Session-Data-Cart") != "apple;pear" ||
		hdr.Get("X-Session-Source") != "upstream" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", hdr)
	}
	if _, ok := hdr["X-Session-Groups"]; ok {
		t.Fatalf("groups echoed: %v", hdr)
	}
	tok := hdr.Get("X-Session-Assertion")
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("assertion %q: %v", tok, err)
	}
	var claims struct {
		Iss string `json:"iss"`
		Aud any    `json:"aud"`
		Sub string `json:"sub"`
	}
	json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims)
	if claims.Iss != "https://example.com/.session" || claims.Aud != "example.com" || claims.Sub != "alice" {
		t.Fatalf("claims %+v", claims)
	}

	// Anonymous on a public path: 200, and no identity, forged or not.
	code, w = askAuth(t, h, true, "", map[string]string{"X-Forwarded-Uri": "/public/a", "X-Forwarded-Host": "example.com", "X-Session-User": "mallory", "Remote-User": "mallory"})
	if code != 200 || w.Header().Get("X-Session-User") != "" || w.Header().Get("Remote-User") != "" {
		t.Fatalf("public: %d %v", code, w.Header())
	}
	// HEAD is served as GET.
	r := withCaddyContext(httptest.NewRequest("HEAD", "/.session/auth", nil), true)
	r.Header.Set("Cookie", cookie)
	r.Header.Set("X-Forwarded-Uri", "/app")
	if code, w := serveStatus(t, h, r); code != 200 || w.Header().Get("X-Session-User") != "alice" {
		t.Fatalf("HEAD: %d %v", code, w.Header())
	}
	// Other methods are not.
	r = withCaddyContext(httptest.NewRequest("POST", "/.session/auth", nil), true)
	r.Header.Set("X-Forwarded-Uri", "/app")
	if code, _ := serveStatus(t, h, r); code != 405 {
		t.Fatalf("POST: %d", code)
	}
}

// TestAuthEndpointIdentityNeverFromBefore: a header an earlier handler
// put in the response under a trusted name never goes out as identity.
func TestAuthEndpointIdentityNeverFromBefore(t *testing.T) {
	h := authHandler(t)
	w := httptest.NewRecorder()
	w.Header().Set("X-Session-User", "mallory")
	w.Header().Set("Remote-User", "mallory")
	r := withCaddyContext(httptest.NewRequest("GET", "/.session/auth", nil), true)
	r.Header.Set("X-Forwarded-Uri", "/public/x")
	if err := h.ServeHTTP(w, r, okHandler); err != nil || w.Code != 200 {
		t.Fatal(w.Code, err)
	}
	if v := w.Header().Values("X-Session-User"); len(v) != 0 {
		t.Fatalf("X-Session-User %v", v)
	}
	if v := w.Header().Values("Remote-User"); len(v) != 0 {
		t.Fatalf("Remote-User %v", v)
	}
}

func TestAuthEndpointLoginRequired(t *testing.T) {
	h := authHandler(t)
	nav := map[string]string{"X-Forwarded-Uri": "/app/x?a=1&b=2", "X-Forwarded-Host": "app.example.com", "X-Forwarded-Proto": "https", "Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
	want := "https://app.example.com/.session/login?redirect=" + url.QueryEscape("https://app.example.com/app/x?a=1&b=2")
	code, w := askAuth(t, h, true, "", nav)
	if code != 302 || w.Header().Get("Location") != want {
		t.Fatalf("navigation: %d %q", code, w.Header().Get("Location"))
	}
	code, w = askAuth(t, h, true, "?status=401", nav)
	if code != 401 || w.Header().Get("Location") != want || !strings.Contains(w.Body.String(), "login required") {
		t.Fatalf("?status=401: %d %q %s", code, w.Header().Get("Location"), w.Body)
	}
	for name, change := range map[string][2]string{
		"a script":        {"X-Requested-With", "XMLHttpRequest"},
		"fetch":           {"Sec-Fetch-Mode", "cors"},
		"not HTML":        {"Accept", "application/json"},
		"original POST":   {"X-Forwarded-Method", "POST"},
		"original DELETE": {"X-Forwarded-Method", "DELETE"},
	} {
		hdr := map[string]string{}
		for k, v := range nav {
			hdr[k] = v
		}
		hdr[change[0]] = change[1]
		if code, w := askAuth(t, h, true, "", hdr); code != 401 || w.Header().Get("Location") != "" {
			t.Errorf("%s: %d %q", name, code, w.Header().Get("Location"))
		}
		// nginx tells a browser from a script by Location alone: a script
		// gets none with ?status=401 either.
		if code, w := askAuth(t, h, true, "?status=401", hdr); code != 401 || w.Header().Get("Location") != "" {
			t.Errorf("%s, ?status=401: %d %q", name, code, w.Header().Get("Location"))
		}
	}
	// http when the proxy says so.
	nav["X-Forwarded-Proto"] = "http"
	if _, w := askAuth(t, h, true, "", nav); !strings.HasPrefix(w.Header().Get("Location"), "http://app.example.com/.session/login?redirect=http%3A%2F%2Fapp.example.com%2F") {
		t.Fatalf("http: %q", w.Header().Get("Location"))
	}
}

// TestAuthEndpointUntrusted: X-Forwarded-* from an address that is not a
// trusted proxy are never read, and nothing is judged without them.
func TestAuthEndpointUntrusted(t *testing.T) {
	h := authHandler(t)
	cookie := loggedIn(t, h, "alice")
	full := map[string]string{"Cookie": cookie, "X-Forwarded-Uri": "/public/x", "X-Forwarded-Host": "example.com", "X-Forwarded-Proto": "https", "X-Forwarded-Method": "GET"}
	for name, c := range map[string]struct {
		trusted bool
		hdr     map[string]string
	}{
		"untrusted":                     {false, full},
		"untrusted, nginx's header":     {false, map[string]string{"Cookie": cookie, "X-Original-URI": "/public/x"}},
		"trusted, no URI":               {true, map[string]string{"Cookie": cookie, "X-Forwarded-Method": "GET"}},
		"trusted, absolute URI":         {true, map[string]string{"Cookie": cookie, "X-Forwarded-Uri": "https://evil.net/public/x"}},
		"trusted, no slash":             {true, map[string]string{"Cookie": cookie, "X-Forwarded-Uri": "public/x"}},
		"trusted, URIs disagree":        {true, map[string]string{"Cookie": cookie, "X-Forwarded-Uri": "/public/x", "X-Original-URI": "/admin/x"}},
		"trusted, bad method":           {true, map[string]string{"Cookie": cookie, "X-Forwarded-Uri": "/admin", "X-Forwarded-Method": "GET /public"}},
		"trusted, bad host":             {true, map[string]string{"Cookie": cookie, "X-Forwarded-Uri": "/admin", "X-Forwarded-Host": "example.com/x"}},
		"trusted, bad proto":            {true, map[string]string{"Cookie": cookie, "X-Forwarded-Uri": "/admin", "X-Forwarded-Proto": "https, http"}},
		"trusted, control in URI":       {true, map[string]string{"Cookie": cookie, "X-Forwarded-Uri": "/public/x\t/../admin"}},
		"trusted, fragment in the URI":  {true, map[string]string{"Cookie": cookie, "X-Forwarded-Uri": "/admin#/public/x"}},
		"trusted, URI in a query param": {true, map[string]string{"Cookie": cookie}},
	} {
		q := ""
		if strings.Contains(name, "query") {
			q = "?uri=/public/x"
		}
		code, w := askAuth(t, h, c.trusted, q, c.hdr)
		if code != 400 || w.Header().Get("X-Session-User") != "" || !strings.Contains(w.Body.String(), "no original request from a trusted proxy") {
			t.Errorf("%s: %d %v %s", name, code, w.Header(), w.Body)
		}
	}
	// Two values of one header: refused, not the first or the last taken.
	r := withCaddyContext(httptest.NewRequest("GET", "/.session/auth", nil), true)
	r.Header["X-Forwarded-Uri"] = []string{"/public/x", "/admin/x"}
	if code, _ := serveStatus(t, h, r); code != 400 {
		t.Errorf("two URIs: %d", code)
	}
	// Off: not found, as any unknown endpoint.
	h.AuthEndpoint = false
	h.setupEndpoints()
	if code, _ := askAuth(t, h, true, "", full); code != 404 {
		t.Errorf("auth_endpoint off: %d", code)
	}
}

// TestAuthEndpointStoreDown: 503 while the store fails, as a proxied
// request gets; a public request still passes.
func TestAuthEndpointStoreDown(t *testing.T) {
	h := authHandler(t)
	cookie := loggedIn(t, h, "alice")
	h.store = failingStore{}
	h.setupSessions()
	h.setupEndpoints()
	if code, _ := askAuth(t, h, true, "", map[string]string{"Cookie": cookie, "X-Forwarded-Uri": "/app"}); code != 503 {
		t.Fatalf("store down: %d", code)
	}
	if code, _ := askAuth(t, h, true, "", map[string]string{"Cookie": cookie, "X-Forwarded-Uri": "/public/x"}); code != 200 {
		t.Fatalf("store down, public: %d", code)
	}
}

type failingStore struct{ sessionstore.Store }

func (failingStore) Find(context.Context, sessionstore.Key) (sessionstore.Record, bool, error) {
	return sessionstore.Record{}, false, errors.New("store down")
}

// TestAuthEndpointJudgesAsProxied is the differential proof: each
// original request, run through the proxied path (ServeHTTP with the
// request itself) and through the auth endpoint (a trusted proxy
// reporting it), gets the same verdict, for an anonymous visitor, a user
// the rules refuse /admin and /billing (carol), and one they let into
// /billing (alice).
func TestAuthEndpointJudgesAsProxied(t *testing.T) {
	h := authHandler(t)
	cookies := map[string]string{"anonymous": "", "carol": loggedIn(t, h, "carol"), "alice": loggedIn(t, h, "alice")}
	uris := []string{
		"/app/page", "/admin", "/admin/", "/admin/x", "/Admin/x", "/ADMIN/x", "/admin;x/y", "/admin;x", "/%61dmin/x", "/%41dmin/x",
		"/index.php/admin/x", "/index.PHP/admin/x", "/admin.php/x.css", "/index.php?/admin/x", "/?/admin/x", "//admin/x", "/./admin/x",
		"/public/../admin/x", "/public/%2e%2e/admin/x", "/admin%2fx", "/admin%5cx", "/\u0430dmin/x", "/%EF%BC%A1dmin/x", "/ａdmin/x",
		"/billing/x", "/Billing/x", "/billing;/x", "/index.php/billing/x", "/public/x", "/public/x.css", "/x.css", "/public/../x.css",
		"/public/x?_method=DELETE", "/admin/x?_method=GET", "/public",
	}
	methods := []string{"GET", "HEAD", "POST", "get", "DELETE"}
	extra := []map[string]string{nil, {"X-Http-Method-Override": "DELETE"}}
	n, seen := 0, map[int]int{}
	for who, cookie := range cookies {
		for _, uri := range uris {
			for _, m := range methods {
				for _, more := range extra {
					hdr := map[string]string{"Accept": "text/html", "Cookie": cookie}
					for k, v := range more {
						hdr[k] = v
					}
					proxied := withCaddyContext(httptest.NewRequest(m, "http://example.com"+uri, nil), false)
					for k, v := range hdr {
						proxied.Header.Set(k, v)
					}
					want, _ := serveStatus(t, h, proxied)
					hdr["X-Forwarded-Method"], hdr["X-Forwarded-Uri"], hdr["X-Forwarded-Host"], hdr["X-Forwarded-Proto"] = m, uri, "example.com", "http"
					got, w := askAuth(t, h, true, "", hdr)
					if got != want {
						t.Errorf("%s %s %s %v: proxied %d, auth endpoint %d %s", who, m, uri, more, want, got, w.Body)
					}
					n++
					seen[want]++
				}
			}
		}
	}
	t.Logf("%d original requests judged alike: %v", n, seen)
	for _, code := range []int{200, 302, 400, 401, 403} {
		if seen[code] == 0 {
			t.Errorf("no request got %d: the table does not test that verdict", code)
		}
	}
}

func TestAuthEndpointCaddyfile(t *testing.T) {
	out, err := adapt(t, "auth_endpoint\nredirect_hosts app.example.com *.example.com Bücher.example:8443")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"auth_endpoint":true`) || !strings.Contains(out, `"redirect_hosts":["app.example.com","*.example.com","Bücher.example:8443"]`) {
		t.Fatalf("adapted: %s", out)
	}
	for body, want := range map[string]string{
		"auth_endpoint on":                 "auth_endpoint takes no arguments",
		"redirect_hosts":                   "redirect_hosts needs at least one host",
		"redirect_hosts *.com":             "at least one dot",
		"redirect_hosts https://x.example": "redirect_hosts",
		"redirect_hosts a.example/x":       "redirect_hosts",
		"auth_endpoint\nauth_endpoint":     "given twice",
	} {
		if _, err := adapt(t, body); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
	// JSON: checked at provision.
	h := &Handler{RedirectHosts: []string{"*.com"}}
	h.setDefaults()
	if err := h.validate(); err == nil || !strings.Contains(err.Error(), "redirect_hosts") {
		t.Fatalf("validate: %v", err)
	}
}
