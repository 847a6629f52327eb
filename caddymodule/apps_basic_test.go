// Tests of the http_basic login: answers, throttling, credentials never forwarded.

package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/throttle"
)

// basicHandler is a test handler with http_basic on, alice's password
// "secret", and a throttle of its own.
func basicHandler(t *testing.T, failures int) *Handler {
	t.Helper()
	h := newTestHandler(t, sessionstore.NewMemory(0))
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h.Users = []User{{Name: "alice", Hash: string(hash)}}
	h.users, err = newUserDB(h.Users, "", h.logger)
	if err != nil {
		t.Fatal(err)
	}
	h.setupSources()
	h.setupSessions()
	h.HTTPBasic = &HTTPBasic{Realm: "DAV"}
	h.UpstreamControl = true
	h.throttle = throttle.NewPrivate(throttle.Limit{Failures: failures, Window: time.Minute}, nil, 1000, h.logger)
	h.scope = throttleScope(h.Realm, h.Users, h.UsersFile)
	h.setupEndpoints()
	return h
}

func basicRequest(user, password string, headers ...string) *http.Request {
	r := httptest.NewRequest("PROPFIND", "/dav/", nil)
	if user != "" {
		r.SetBasicAuth(user, password)
	}
	for _, hv := range headers {
		name, value, _ := strings.Cut(hv, ": ")
		r.Header.Add(name, value)
	}
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
}

func TestHTTPBasic(t *testing.T) {
	h := basicHandler(t, 3)
	const challenge = `Basic realm="DAV", charset="UTF-8"`

	var seen http.Header
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Clone()
		w.Header().Set("X-Session-Set-Cart", "x") // upstream control: nothing to write to
		w.WriteHeader(http.StatusMultiStatus)
		return nil
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, basicRequest("alice", "secret", "Authorization: Bearer app-token"), next)
	if w.Code != http.StatusMultiStatus {
		t.Fatalf("good credentials: %d %s", w.Code, w.Body)
	}
	if seen.Get("X-Session-User") != "alice" || seen.Get("Remote-User") != "alice" {
		t.Errorf("the upstream got %v", seen)
	}
	if got := seen["Authorization"]; len(got) != 1 || got[0] != "Bearer app-token" {
		t.Errorf("the upstream got Authorization %q, want only the Bearer one", got)
	}
	if sc := w.Header()["Set-Cookie"]; len(sc) != 0 {
		t.Errorf("a Basic request set a cookie: %q", sc)
	}
	if cc := w.Header()["Cache-Control"]; len(cc) != 0 {
		t.Errorf("the upstream's answer got Cache-Control %q", cc)
	}

	// No credentials: a client that is not a browser is challenged; a
	// browser's script is not (its own password dialog would follow).
	for _, tc := range []struct {
		headers   []string
		challenge bool
	}{
		{nil, true},
		{[]string{"Accept: */*", "User-Agent: git/2.39"}, true},
		{[]string{"Sec-Fetch-Mode: cors"}, false},
		{[]string{"X-Requested-With: XMLHttpRequest"}, false},
		{[]string{"Referer: http://example.com/app"}, false},
	} {
		w = httptest.NewRecorder()
		h.ServeHTTP(w, basicRequest("", "", tc.headers...), next)
		got := w.Header().Get("WWW-Authenticate")
		if w.Code != 401 || (got == challenge) != tc.challenge {
			t.Errorf("no credentials, %q: %d, WWW-Authenticate %q, want challenge %v", tc.headers, w.Code, got, tc.challenge)
		}
	}
	// A browser navigating still goes to the login page.
	w = httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/dav/", nil)
	r.Header.Set("Accept", "text/html")
	h.ServeHTTP(w, r, next)
	if w.Code != http.StatusFound || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("browser navigating: %d %v", w.Code, w.Header())
	}

	// Wrong passwords are failures of the same throttle as the form; an
	// unknown user too.
	for i, user := range []string{"alice", "nobody", "alice", "alice"} {
		w = httptest.NewRecorder()
		h.ServeHTTP(w, basicRequest(user, "wrong", "Sec-Fetch-Mode: cors"), next)
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != challenge {
			t.Errorf("wrong password %d: %d %q", i, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, basicRequest("alice", "wrong"), next)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("after the limit: %d %v", w.Code, w.Header())
	}
	// Locked out, the right password is not even checked.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, basicRequest("alice", "secret"), next)
	if w.Code != http.StatusTooManyRequests {
		t.Errorf("locked out, right password: %d", w.Code)
	}
	if _, wait, _ := h.throttle.Begin(context.Background(), h.scope, "192.0.2.1", "alice", time.Now()); wait <= 0 {
		t.Error("the form's login is not locked out by Basic failures")
	}
}

// TestHTTPBasicInParallel: a client sending many requests at once is not
// turned away by the throttle's guard against parallel guessing.
func TestHTTPBasicInParallel(t *testing.T) {
	h := basicHandler(t, 2)
	var wg sync.WaitGroup
	codes := make([]int, 12)
	for i := range codes {
		wg.Go(func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, basicRequest("alice", "secret"), okHandler)
			codes[i] = w.Code
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: %d", i, c)
		}
	}
}
