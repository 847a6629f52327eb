package endpoints

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/identity/password"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/throttle"
)

// testServer is a server over a memory store with alice's password
// "secret", as a handler at the site's root would build it.
func testServer(t *testing.T) *Server {
	t.Helper()
	store := sessionstore.NewMemory(0)
	t.Cleanup(func() { store.Close() })
	cfg := cookie.Config{Name: "caddy_session", Path: "/"}
	codec, err := cookie.NewCodec(cfg.Name, "", [][]byte{[]byte(strings.Repeat("k", 32))}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users, err := password.Open([]password.User{{Name: "alice", Hash: string(hash)}}, "", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	sessions := session.New(session.Config{
		Store: store, Codec: codec, Cookie: cfg, Lifetime: time.Hour,
		Sources: map[string]identity.Source{identity.Password: users},
	})
	ps, err := pages.Load("")
	if err != nil {
		t.Fatal(err)
	}
	ix, _ := sessionstore.Store(store).(sessionstore.UserIndex)
	return New(Config{
		Prefix:        "/.session",
		Cookie:        cfg,
		Sessions:      sessions,
		Users:         users,
		PasswordUsers: true,
		Throttle:      throttle.NewPrivate(throttle.Limit{Failures: 5, Window: time.Minute}, nil, 100, zap.NewNop()),
		ThrottleScope: "test",
		Pages:         ps,
		UserIndex:     ix,
		JWKS:          func() []byte { return []byte(`{"keys":[]}`) },
	})
}

func serve(s *Server, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	endpoint := strings.TrimPrefix(r.URL.Path, "/.session")
	if err := s.Serve(w, r, endpoint); err != nil {
		w.Code = 599
	}
	return w
}

// TestLoginWhoamiLogout: a JSON login sets the cookie, whoami names the
// user, logout ends the session, without Caddy.
func TestLoginWhoamiLogout(t *testing.T) {
	s := testServer(t)
	r := httptest.NewRequest("POST", "/.session/login", strings.NewReader(`{"username":"alice","password":"secret"}`))
	r.Header.Set("Content-Type", "application/json")
	w := serve(s, r)
	if w.Code != 200 || w.Body.String() != `{"user":"alice"}`+"\n" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("login: %d %q %v", w.Code, w.Body, w.Header())
	}
	cookie := strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0]

	r = httptest.NewRequest("GET", "/.session/whoami", nil)
	r.Header.Set("Cookie", cookie)
	w = serve(s, r)
	var who whoami
	if err := json.Unmarshal(w.Body.Bytes(), &who); err != nil || w.Code != 200 || who.User != "alice" || who.Source != identity.Password {
		t.Fatalf("whoami: %d %s (%v)", w.Code, w.Body, err)
	}

	r = httptest.NewRequest("POST", "/.session/logout", nil)
	r.Header.Set("Cookie", cookie)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if w = serve(s, r); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/.session/login?signed_out=1" {
		t.Fatalf("logout: %d %v", w.Code, w.Header())
	}
	r = httptest.NewRequest("GET", "/.session/whoami", nil)
	r.Header.Set("Cookie", cookie)
	if w = serve(s, r); w.Code != 401 {
		t.Fatalf("whoami after logout: %d %s", w.Code, w.Body)
	}
}

func TestServeRoutes(t *testing.T) {
	s := testServer(t)
	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/.session/nope", 404, ""},
		{"GET", "/.session/oidc/x/callback", 404, ""}, // no providers
		{"PUT", "/.session/login", 405, "GET, HEAD, POST"},
		{"DELETE", "/.session/whoami", 405, "GET, HEAD"},
		{"POST", "/.session/jwks.json", 405, "GET, HEAD"},
		{"GET", "/.session/jwks.json", 200, ""},
		{"GET", "/.session/login", 200, ""},
	} {
		w := serve(s, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.code || w.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", tc.method, tc.path, w.Code, w.Header().Get("Allow"), tc.code, tc.allow)
		}
	}
	// A cross-site form is refused.
	r := httptest.NewRequest("POST", "/.session/login", strings.NewReader("username=alice&password=secret"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	if w := serve(s, r); w.Code != 403 {
		t.Errorf("cross-site login: %d", w.Code)
	}
}

// TestLoginRequired: a browser navigating goes to the login page under
// the mount, with where it was going; a script gets 401 JSON; a client
// that is not a browser gets a Basic challenge when Basic is on.
func TestLoginRequired(t *testing.T) {
	s := testServer(t)
	s.c.Mount = func(*http.Request) (string, bool) { return "/app", true }
	s.c.OriginalURI = func(*http.Request) string { return "/app/x?y=1" }
	r := httptest.NewRequest("GET", "/x?y=1", nil)
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	s.LoginRequired(w, r)
	if w.Code != 302 || w.Header().Get("Location") != "/app/.session/login?redirect=%2Fapp%2Fx%3Fy%3D1" {
		t.Errorf("navigating: %d %q", w.Code, w.Header().Get("Location"))
	}
	w = httptest.NewRecorder()
	s.LoginRequired(w, httptest.NewRequest("GET", "/x", nil))
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("script, Basic off: %d %v", w.Code, w.Header())
	}
	s.c.HTTPBasic = true
	w = httptest.NewRecorder()
	s.LoginRequired(w, httptest.NewRequest("GET", "/x", nil))
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Basic realm="restricted", charset="UTF-8"` {
		t.Errorf("script, Basic on: %d %v", w.Code, w.Header())
	}
	s.c.Mount = func(*http.Request) (string, bool) { return "", false }
	w = httptest.NewRecorder()
	s.LoginRequired(w, r)
	if w.Code != 400 {
		t.Errorf("unknown mount: %d", w.Code)
	}
}

// TestMalformedJSONLoginLogsNoGoType: a JSON login body that is no object
// gets 400, and the log line says so in words of its own, not Go's
// (which named the struct's package and changed when the code moved).
func TestMalformedJSONLoginLogsNoGoType(t *testing.T) {
	s := testServer(t)
	core, logs := observer.New(zap.WarnLevel)
	s.c.Logger = zap.New(core)
	for _, body := range []string{`[]`, `true`, `"x"`, `1`, `null`, `{"username":1}`} {
		r := httptest.NewRequest("POST", "/.session/login", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := serve(s, r)
		if body == "null" {
			continue // JSON null decodes to nothing: an empty login, refused as such
		}
		if w.Code != 400 || w.Body.String() != `{"error":"malformed login request"}`+"\n" {
			t.Errorf("%s: %d %s", body, w.Code, w.Body)
		}
	}
	for _, e := range logs.All() {
		if msg := fmt.Sprint(e.ContextMap()["error"]); strings.Contains(msg, "endpoints.") || strings.Contains(msg, "Go value") {
			t.Errorf("%s: the log names a Go type: %s", e.Message, msg)
		}
	}
	n := 0
	for _, e := range logs.FilterMessage("malformed login request").All() {
		if fmt.Sprint(e.ContextMap()["error"]) == "body is not a JSON object" {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d lines say the body is not a JSON object, want 4:\n%v", n, logs.All())
	}
}
