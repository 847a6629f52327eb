package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/authz"
	"github.com/edgesession/edgesession/endpoints"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/identity/password"
	"github.com/edgesession/edgesession/mfa"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/sessionstore"
)

// The policy side of second factors at the handler's level, with session
// records written through the handler's own session manager (the store is
// memory): `allow group admin { path /admin/*; mfa }`, `mfa required {
// group ops }`, the auth endpoint's answers, what the upstream sees.

// policyHandler is attackHandler with alice (admin) and bob (ops) as local
// users, the step-up rule first, and `mfa required { group ops }`.
func policyHandler(t testing.TB) *Handler {
	t.Helper()
	h := attackHandler(t)
	var err error
	h.users, err = password.Open([]User{{Name: "alice", Hash: testHash, Groups: []string{"admin"}}, {Name: "bob", Hash: testHash, Groups: []string{"ops"}}}, "", h.logger)
	if err != nil {
		t.Fatal(err)
	}
	h.sources[identity.Password] = h.users
	h.rules = append(authz.Rules{{Match: caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/admin/*"}}}, Groups: []string{"admin"}, MFA: true, Name: "#0 allow group admin (mfa)"}}, h.rules[1:]...)
	h.mfa = &endpoints.MFA{Policy: &mfa.Policy{Groups: []string{"ops"}}}
	h.AuthEndpoint = true
	if h.pages, err = pages.Load(""); err != nil {
		t.Fatal(err)
	}
	h.setupEndpoints()
	return h
}

// localSession logs user in with a password and amr (none: a password
// only), as session.Manager.Login does for the second step, and returns
// the Cookie header.
func localSession(t testing.TB, h *Handler, user string, amr ...string) string {
	t.Helper()
	fp, ok := h.users.Fingerprint(user)
	if !ok {
		t.Fatalf("no user %s", user)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	if _, err := h.sessions.Login(context.Background(), w, r, nil, identity.Identity{User: user, Source: identity.Password, Fingerprint: fp, Amr: amr}, nil); err != nil {
		t.Fatal(err)
	}
	return strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0]
}

// get runs GET target (sent as is) with cookie through h, as JSON client
// or a navigation, and returns the status and what the upstream got.
func get(t testing.TB, h *Handler, cookie, target string, hdr ...string) (int, http.Header, *httptest.ResponseRecorder) {
	t.Helper()
	r := withCaddyContext(httptest.NewRequest("GET", "/", nil), false)
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatal(err)
	}
	r.URL, r.RequestURI = u, target
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	for _, kv := range hdr {
		k, v, _ := strings.Cut(kv, ": ")
		r.Header[k] = append(r.Header[k], v)
	}
	var seen http.Header
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Clone()
		w.WriteHeader(200)
		return nil
	})
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, next); err != nil {
		var he caddyhttp.HandlerError
		if !errorAs(err, &he) {
			t.Fatalf("%s: %v", target, err)
		}
		return he.StatusCode, seen, w
	}
	return w.Code, seen, w
}

var stepUpTargets = []string{
	"/admin/x", "/admin/", "/ADMIN/x", "/Admin/x", "/admin;x=1/", "/admin;x=1/y", "/%61dmin/", "/%41DMIN/x",
	"/index.php/admin/", "/INDEX.PHP/admin/x", "/" + url.PathEscape("ａｄｍｉｎ") + "/x", "/adm%C4%B1n/x", "/admin//x",
}

func TestStepUpEveryReading(t *testing.T) {
	h := policyHandler(t)
	pwd := localSession(t, h, "alice")
	strong := localSession(t, h, "alice", "pwd", "otp", "mfa")
	for _, target := range stepUpTargets {
		code, seen, w := get(t, h, pwd, target, "Accept: application/json")
		if code != 401 || seen != nil || !strings.Contains(w.Body.String(), "second factor required") {
			t.Errorf("%s, password only: %d %s (upstream reached: %v), want 401 second factor required", target, code, w.Body, seen != nil)
		}
		if code, seen, _ := get(t, h, strong, target); code != 200 || seen.Get("X-Session-User") != "alice" {
			t.Errorf("%s, with a second factor: %d, want the upstream", target, code)
		}
	}
	// A navigation goes to the second step, and comes back.
	code, _, w := get(t, h, pwd, "/admin/x?a=1", "Accept: text/html", "Sec-Fetch-Mode: navigate")
	if want := "/.session/mfa?redirect=" + url.QueryEscape("/admin/x?a=1"); code != 302 || w.Header().Get("Location") != want {
		t.Errorf("navigation: %d %q, want 302 %q", code, w.Header().Get("Location"), want)
	}
	// Not under the rule: a password is enough, and the upstream is told.
	code, seen, _ := get(t, h, pwd, "/app", "X-Session-Amr: pwd otp mfa", "X_Session_Amr: mfa", "X.Session.Amr: mfa")
	if code != 200 || !slices.Equal(seen["X-Session-Amr"], []string{"pwd"}) || seen["X_Session_Amr"] != nil || seen["X.Session.Amr"] != nil {
		t.Errorf("/app, password only: %d, upstream amr headers %q %q %q", code, seen["X-Session-Amr"], seen["X_Session_Amr"], seen["X.Session.Amr"])
	}
	_, seen, _ = get(t, h, strong, "/app")
	if !slices.Equal(seen["X-Session-Amr"], []string{"pwd otp mfa"}) {
		t.Errorf("/app with a second factor: X-Session-Amr %q", seen["X-Session-Amr"])
	}
}

// TestRequiredForAGroup: a local user whom `mfa required` names, with a
// password only, reaches nothing that is not public, and what is public
// gets nothing of the session: no user, no amr, no data, no assertion.
func TestRequiredForAGroup(t *testing.T) {
	h := policyHandler(t)
	testAsserter(t, h)
	bob := localSession(t, h, "bob")
	for _, target := range []string{"/app", "/billing/x", "/admin/x"} {
		if code, seen, w := get(t, h, bob, target, "Accept: application/json"); code != 401 || seen != nil || !strings.Contains(w.Body.String(), "second factor required") {
			t.Errorf("%s as bob, password only: %d %s", target, code, w.Body)
		}
	}
	code, seen, _ := get(t, h, bob, "/public/x")
	if code != 200 {
		t.Fatalf("public: %d", code)
	}
	for name := range seen {
		if strings.HasPrefix(name, "X-Session-") || name == "Remote-User" {
			t.Errorf("public request of a session waiting for a second factor: the upstream got %s", name)
		}
	}
	strong := localSession(t, h, "bob", "pwd", "hwk", "mfa")
	if code, seen, _ := get(t, h, strong, "/app"); code != 200 || seen.Get("X-Session-User") != "bob" || seen.Get("X-Session-Amr") != "pwd hwk mfa" {
		t.Errorf("bob with a second factor: %d %q %q", code, seen.Get("X-Session-User"), seen.Get("X-Session-Amr"))
	}
	// Only local users: an upstream's login of bob is not the policy's.
	w := httptest.NewRecorder()
	if _, err := h.sessions.Login(context.Background(), w, httptest.NewRequest("GET", "/", nil), nil, identity.Identity{User: "bob", Source: identity.Upstream}, nil); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, h, strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0], "/app"); code != 200 {
		t.Errorf("an upstream login of bob: %d", code)
	}
}

func TestAuthEndpointSecondFactor(t *testing.T) {
	h := policyHandler(t)
	pwd := localSession(t, h, "alice")
	nav := map[string]string{"Cookie": pwd, "X-Forwarded-Uri": "/admin/x?a=1", "X-Forwarded-Host": "example.com", "X-Forwarded-Proto": "https", "Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
	want := "https://example.com/.session/mfa?redirect=" + url.QueryEscape("https://example.com/admin/x?a=1")
	if code, w := askAuth(t, h, true, "", nav); code != 302 || w.Header().Get("Location") != want {
		t.Errorf("navigation: %d %q, want 302 %q", code, w.Header().Get("Location"), want)
	}
	if code, w := askAuth(t, h, true, "?status=401", nav); code != 401 || w.Header().Get("Location") != want || !strings.Contains(w.Body.String(), "second factor required") {
		t.Errorf("?status=401: %d %q %s", code, w.Header().Get("Location"), w.Body)
	}
	nav["Accept"], nav["Sec-Fetch-Mode"] = "application/json", "cors"
	if code, w := askAuth(t, h, true, "", nav); code != 401 || w.Header().Get("Location") != "" {
		t.Errorf("a script: %d %q", code, w.Header().Get("Location"))
	}
	// With a second factor: 200 and the amr.
	nav["Cookie"] = localSession(t, h, "alice", "pwd", "otp", "mfa")
	if code, w := askAuth(t, h, true, "", nav); code != 200 || w.Header().Get("X-Session-Amr") != "pwd otp mfa" {
		t.Errorf("with a second factor: %d amr %q", code, w.Header().Get("X-Session-Amr"))
	}
	// bob (mfa required) on a public path: 200, and no identity.
	bob := map[string]string{"Cookie": localSession(t, h, "bob"), "X-Forwarded-Uri": "/public/x", "X-Forwarded-Host": "example.com"}
	if code, w := askAuth(t, h, true, "", bob); code != 200 || w.Header().Get("X-Session-User") != "" || w.Header().Get("X-Session-Amr") != "" {
		t.Errorf("public, waiting for a second factor: %d user %q amr %q", code, w.Header().Get("X-Session-User"), w.Header().Get("X-Session-Amr"))
	}
}

func TestMatcherAndAssertionSeeAmr(t *testing.T) {
	h := policyHandler(t)
	testAsserter(t, h)
	for _, tt := range []struct {
		amr   []string
		match bool
		claim []string
	}{
		{nil, false, []string{"pwd"}},
		{[]string{"pwd", "otp", "mfa"}, true, []string{"pwd", "otp", "mfa"}},
		{[]string{"hwk", "mfa"}, true, []string{"hwk", "mfa"}},
		{[]string{"pwd", "swk", "mfa"}, false, []string{"pwd", "swk", "mfa"}},
	} {
		cookie := localSession(t, h, "alice", tt.amr...)
		m := MatchSession{Amr: []string{"otp", "hwk"}}
		var matched bool
		var token string
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			matched = m.Match(r)
			token = r.Header.Get("X-Session-Assertion")
			return nil
		})
		r := withCaddyContext(httptest.NewRequest("GET", "/app", nil), false)
		r.Header.Set("Cookie", cookie)
		if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
			t.Fatal(err)
		}
		if matched != tt.match {
			t.Errorf("amr %q: session amr otp hwk matched %v", tt.amr, matched)
		}
		var claims struct{ Amr []string }
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("no assertion: %q", token)
		}
		b, _ := base64URL(parts[1])
		if err := json.Unmarshal(b, &claims); err != nil || !slices.Equal(claims.Amr, tt.claim) {
			t.Errorf("amr %q: assertion amr %q (%v)", tt.amr, claims.Amr, err)
		}
	}
	// An upstream login has no amr: the claim is left out.
	w := httptest.NewRecorder()
	if _, err := h.sessions.Login(context.Background(), w, httptest.NewRequest("GET", "/", nil), nil, identity.Identity{User: "carol", Source: identity.Upstream}, nil); err != nil {
		t.Fatal(err)
	}
	_, seen, _ := get(t, h, strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0], "/app")
	b, _ := base64URL(strings.Split(seen.Get("X-Session-Assertion"), ".")[1])
	if strings.Contains(string(b), `"amr"`) || seen.Get("X-Session-Amr") != "" {
		t.Errorf("an upstream login: assertion %s, X-Session-Amr %q", b, seen.Get("X-Session-Amr"))
	}
}

// TestAmrRecordIsVersion3: the amr is the store's, in a version-3 record;
// a password session without one stays version 2 (older instances read
// it), and AMR reads it as a password.
func TestAmrRecordIsVersion3(t *testing.T) {
	for _, tt := range []struct {
		amr     []string
		version byte
	}{{nil, 2}, {[]string{"pwd", "otp", "mfa"}, 3}} {
		b, err := sessionstore.Record{User: "alice", Source: identity.Password, Amr: tt.amr}.MarshalBinary()
		if err != nil || b[0] != tt.version {
			t.Errorf("amr %q: version %d (%v), want %d", tt.amr, b[0], err, tt.version)
		}
	}
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func errorAs(err error, target any) bool { return errors.As(err, target) }
