package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// TestForwardGroups: local users' groups come from the users now, anyone
// else's from the record; the header and the placeholder carry them
// sorted, and no two headers share a slice.
func TestForwardGroups(t *testing.T) {
	h := newTestHandler(t, nil)
	db, err := newUserDB([]User{{Name: "alice", Hash: bcryptHash(t, "pw"), Groups: []string{"staff", "admin"}}}, "", h.logger)
	if err != nil {
		t.Fatal(err)
	}
	h.users = db
	for _, tt := range []struct {
		rec  sessionstore.Record
		want string
	}{
		{sessionstore.Record{User: "alice", Source: identity.Password, Groups: []string{"ignored"}}, "admin, staff"},
		{sessionstore.Record{User: "carol", Source: identity.Password}, ""},
		{sessionstore.Record{User: "dave", Source: "oidc:corp", Groups: []string{"ops", "Domain Admins"}}, "Domain Admins, ops"},
		{sessionstore.Record{User: "erin", Source: identity.Upstream}, ""},
		{sessionstore.Record{Groups: []string{"anonymous"}}, ""},
	} {
		repl := caddy.NewReplacer()
		r := httptest.NewRequest("GET", "/", nil)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
		s := &session{rec: tt.rec}
		s.groups = h.groupsOf(s.rec)
		h.forward(r, s)
		placeholdersFor(r).set(s)
		got, ok := r.Header["X-Session-Groups"]
		if tt.want == "" {
			if ok {
				t.Errorf("%s: X-Session-Groups = %q, want none", tt.rec.User, got)
			}
			continue
		}
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: X-Session-Groups = %q, want %q", tt.rec.User, got, tt.want)
		}
		if v, _ := repl.GetString("http.session.groups"); v != tt.want {
			t.Errorf("%s: {http.session.groups} = %q, want %q", tt.rec.User, v, tt.want)
		}
		got[0] = "changed"
		if r.Header.Get("X-Session-User") != tt.rec.User || r.Header.Get("Remote-User") != tt.rec.User {
			t.Errorf("%s: the groups header shares a slice with the user headers", tt.rec.User)
		}
	}
}

// BenchmarkStripAndForwardGroups is BenchmarkStripAndForward with the
// replacer, for a user without and with groups: forwarding groups should
// cost no allocation of its own.
func BenchmarkStripAndForwardGroups(b *testing.B) {
	h := newTestHandler(b, nil)
	base := http.Header{
		"Accept": {"text/html"}, "Accept-Encoding": {"gzip"}, "User-Agent": {"bench"},
		"Cookie": {"caddy_session=xyz; theme=dark"}, "X-Session-User": {"mallory"}, "X_session_data_role": {"root"},
		"Remote-User": {"mallory"}, "Referer": {"https://example.com/"}, "Accept-Language": {"en"},
	}
	for name, groups := range map[string][]string{"none": nil, "two": {"staff", "admin"}} {
		b.Run(name, func(b *testing.B) {
			s := &session{rec: sessionstore.Record{User: "alice", Data: map[string]string{"cart": "apple", "role": "admin"}}}
			s.groups = newGroupSet(groups)
			r := httptest.NewRequest("GET", "/", nil)
			ctx := r.Context()
			b.ReportAllocs()
			for b.Loop() {
				r = r.WithContext(context.WithValue(ctx, caddy.ReplacerCtxKey, caddy.NewReplacer()))
				r.Header = base.Clone()
				h.strip.removeFrom(r.Header)
				h.forward(r, s)
				placeholdersFor(r).set(s)
				cookie.Remove(r.Header, h.Cookie.Name)
			}
		})
	}
}
