package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/sessionstore"
)

// pageHandler is newTestHandler with its pages and same-origin check, over
// store as Provision wraps it.
func pageHandler(t *testing.T, store sessionstore.Store) *Handler {
	t.Helper()
	h := newTestHandler(t, store)
	if store != nil {
		h.store = closingStore{h.store}
		h.setupSessions()
	}
	tp, err := pages.Load("")
	if err != nil {
		t.Fatal(err)
	}
	h.pages = tp
	h.setupEndpoints()
	return h
}

func pageRequest(t *testing.T, h *Handler, method, cookie, accept string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, "/.session/sessions", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	} else {
		r = httptest.NewRequest(method, "/.session/sessions", nil)
	}
	r.Header.Set("Accept", accept)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, okHandler); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestSessionsPage(t *testing.T) {
	m := sessionstore.NewMemory(0)
	defer m.Close()
	h := pageHandler(t, m)
	here, laptop, bob := loggedIn(t, h, "alice"), loggedIn(t, h, "alice"), loggedIn(t, h, "bob")
	// A namesake's session on another site sharing the store: not hers.
	now := time.Now()
	elsewhere := sessionstore.KeyOf(sessionstore.NewID())
	m.Create(context.Background(), elsewhere, sessionstore.Record{User: "alice", Source: identity.Upstream, Site: "other.example", Created: now, LastSeen: now, Expires: now.Add(time.Hour)})

	// JSON: two sessions, this one marked.
	w := pageRequest(t, h, "GET", here, "application/json", nil)
	var list struct {
		User     string             `json:"user"`
		Sessions []pages.SessionRow `json:"sessions"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || w.Code != 200 {
		t.Fatalf("GET JSON: %d %s", w.Code, w.Body)
	}
	if list.User != "alice" || len(list.Sessions) != 2 || !list.Sessions[0].Current || list.Sessions[1].Current {
		t.Fatalf("GET JSON: %s", w.Body)
	}
	if strings.Contains(w.Body.String(), elsewhere.Handle().String()) {
		t.Fatal("the list shows a namesake's session on another site")
	}

	// HTML: the same, with its buttons.
	w = pageRequest(t, h, "GET", here, "text/html", nil)
	body := w.Body.String()
	if w.Code != 200 || strings.Count(body, "data-handle=") != 2 || strings.Count(body, `aria-current="true"`) != 1 ||
		!strings.Contains(body, "Sign out everywhere else") || !strings.Contains(body, "Sign out this one") ||
		!strings.Contains(w.Header().Get("Content-Security-Policy"), "form-action 'self'") {
		t.Fatalf("GET HTML: %d\n%s", w.Code, body)
	}

	// A cross-site form is refused.
	r := httptest.NewRequest("POST", "/.session/sessions", strings.NewReader("others=1"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.Header.Set("Cookie", here)
	cw := httptest.NewRecorder()
	h.ServeHTTP(cw, r, okHandler)
	if cw.Code != 403 {
		t.Fatalf("a cross-site POST: %d, want 403", cw.Code)
	}

	// Sign out everywhere else: the laptop is out, this one is not, nor
	// bob, nor the namesake elsewhere.
	w = pageRequest(t, h, "POST", here, "text/html", url.Values{"others": {"1"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/.session/sessions?signed-out=1" {
		t.Fatalf("sign out everywhere else: %d %q", w.Code, w.Header().Get("Location"))
	}
	whoami := func(cookie string) int {
		r := httptest.NewRequest("GET", "/.session/whoami", nil)
		r.Header.Set("Cookie", cookie)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r, okHandler)
		return w.Code
	}
	if whoami(laptop) != 401 || whoami(here) != 200 || whoami(bob) != 200 {
		t.Fatalf("after sign out everywhere else: laptop %d, here %d, bob %d", whoami(laptop), whoami(here), whoami(bob))
	}
	if _, found, _ := m.Find(context.Background(), elsewhere); !found {
		t.Fatal("signing out everywhere else reached another site's session")
	}
	r = httptest.NewRequest("GET", "/.session/sessions?signed-out=1", nil)
	r.Header.Set("Cookie", here)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r, okHandler)
	if !strings.Contains(w.Body.String(), "Signed out 1 session.") || strings.Contains(w.Body.String(), "everywhere else") {
		t.Fatalf("after: %s", w.Body)
	}
	// The way back to the app (at the site's root: nothing is mounted).
	if !strings.Contains(w.Body.String(), `<a href="/">Back to the site</a>`) {
		t.Errorf("the sessions page has no way back to the app: %s", w.Body)
	}

	// Another user's handle is not hers to sign out.
	bobs := pageRequest(t, h, "GET", bob, "application/json", nil)
	var bl struct{ Sessions []pages.SessionRow }
	json.Unmarshal(bobs.Body.Bytes(), &bl)
	if w := pageRequest(t, h, "POST", here, "application/json", url.Values{"handle": {bl.Sessions[0].Handle}}); w.Code != 200 || !strings.Contains(w.Body.String(), `"revoked":0`) || whoami(bob) != 200 {
		t.Fatalf("posting bob's handle as alice: %d %s", w.Code, w.Body)
	}

	// Sign out this one: the cookie goes, and so does the user.
	w = pageRequest(t, h, "POST", here, "text/html", url.Values{"handle": {list.Sessions[0].Handle}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/.session/login" || !strings.Contains(w.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign out this one: %d %v", w.Code, w.Header())
	}
	if whoami(here) != 401 {
		t.Fatal("signed out, still signed in")
	}

	// Without a session: to the login page, or 401.
	if w := pageRequest(t, h, "GET", "", "text/html", nil); w.Code != http.StatusFound || !strings.HasPrefix(w.Header().Get("Location"), "/.session/login?redirect=%2F.session%2Fsessions") {
		t.Fatalf("anonymous GET: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := pageRequest(t, h, "GET", "", "application/json", nil); w.Code != 401 {
		t.Fatalf("anonymous JSON GET: %d", w.Code)
	}
}

func TestSessionsPageCookieStore(t *testing.T) {
	h := pageHandler(t, nil)
	cookie := loggedIn(t, h, "alice")
	w := pageRequest(t, h, "GET", cookie, "text/html", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "only in this browser") {
		t.Fatalf("cookie store: %d %s", w.Code, w.Body)
	}
}
