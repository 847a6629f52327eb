package session

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// How a user proved who they are (Amr) is in the session's record, and so,
// with the cookie store, in the cookie itself: it comes back with the
// session on the next request, with a server-side store as with the cookie.
func TestLoginKeepsAmrInEveryStore(t *testing.T) {
	for name, store := range map[string]sessionstore.Store{"cookie": nil, "memory": sessionstore.NewMemory(0)} {
		m := newTestManager(t, store)
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "http://app.example/", nil)
		id := identity.Identity{User: "alice", Source: identity.Upstream, Amr: []string{"pwd", "otp", "mfa"}}
		if _, err := m.Login(context.Background(), w, r, nil, id, nil); err != nil {
			t.Fatalf("%s: Login: %v", name, err)
		}
		next := httptest.NewRequest("GET", "http://app.example/", nil)
		for _, c := range w.Result().Cookies() {
			if c.Name == "caddy_session" {
				next.AddCookie(c)
			}
		}
		s, err := m.Load(httptest.NewRecorder(), next)
		if err != nil || s == nil || s.Rec.User != "alice" {
			t.Fatalf("%s: Load = %+v, %v", name, s, err)
		}
		if !slices.Equal(s.Rec.Amr, id.Amr) {
			t.Fatalf("%s: the session's Amr is %q, want %q", name, s.Rec.Amr, id.Amr)
		}
	}
}
