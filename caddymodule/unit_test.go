package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

// The session's placeholders come from the session when asked: the user
// (also as {http.auth.user.id}, which the session's user takes over from
// an earlier handler), groups, and valid data; "" for anything missing,
// and for everything until a session is forwarded.
func TestSessionPlaceholders(t *testing.T) {
	h := newTestHandler(t, nil)
	newRequest := func() (*http.Request, *caddy.Replacer) {
		repl := caddy.NewReplacer()
		repl.Set("http.auth.user.id", "set-by-an-earlier-handler")
		r := httptest.NewRequest("GET", "/", nil)
		ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
		ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
		return r.WithContext(ctx), repl
	}
	r, repl := newRequest()
	p := placeholdersFor(r)
	for _, key := range []string{"http.session.user", "http.session.groups", "http.session.data.cart"} {
		if got, ok := repl.GetString(key); !ok || got != "" {
			t.Errorf("before forwarding: {%s} = %q (%v), want \"\"", key, got, ok)
		}
	}
	// Until a session is forwarded, the request's user is whatever set it.
	if got, _ := repl.GetString("http.auth.user.id"); got != "set-by-an-earlier-handler" {
		t.Errorf("before forwarding: {http.auth.user.id} = %q", got)
	}

	s := &session.Session{Rec: sessionstore.Record{User: "alice", Data: map[string]string{"cart": "apple", "bad": "x\ny", "Upper": "no"}}}
	s.Groups = newGroupSet([]string{"staff", "admin"})
	h.forward(r, s)
	p.set(s)
	for key, want := range map[string]string{
		"http.session.user": "alice", "http.auth.user.id": "alice", "http.session.groups": "admin, staff",
		"http.session.data.cart": "apple", "http.session.data.bad": "", "http.session.data.Upper": "",
		"http.session.data.none": "",
	} {
		if got, ok := repl.GetString(key); !ok || got != want {
			t.Errorf("{%s} = %q (%v), want %q", key, got, ok, want)
		}
	}
	if got := repl.ReplaceAll("{http.session.user}/{http.session.data.cart}/{http.other}", "?"); got != "alice/apple/?" {
		t.Errorf("ReplaceAll = %q", got)
	}
	// What was forwarded stays: a later change to the session (upstream
	// control) is not what the upstream got.
	s.Rec = sessionstore.Record{User: "alice", Data: map[string]string{"cart": "pear"}}
	if got, _ := repl.GetString("http.session.data.cart"); got != "apple" {
		t.Errorf("after the session changed: {http.session.data.cart} = %q, want the forwarded %q", got, "apple")
	}
}

// Two session handlers on one request (nested realms, or a handler run
// again by handle_errors): the placeholders are those of the last one to
// forward a session, as the headers the upstream gets are; a handler that
// forwards none leaves none of the one before.
func TestSessionPlaceholdersOfNestedHandlers(t *testing.T) {
	for _, outer := range []*session.Session{{Rec: sessionstore.Record{User: "alice"}}, nil} {
		for _, inner := range []*session.Session{{Rec: sessionstore.Record{User: "root"}}, nil} {
			repl := caddy.NewReplacer()
			r := httptest.NewRequest("GET", "/", nil)
			ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
			ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
			r = r.WithContext(ctx)
			if p := placeholdersFor(r); outer != nil { // the outer handler
				p.set(outer)
			}
			if p := placeholdersFor(r); inner != nil { // the inner one
				p.set(inner)
			}
			want := ""
			if inner != nil {
				want = inner.Rec.User
			}
			for _, key := range []string{"http.session.user", "http.auth.user.id"} {
				if got, _ := repl.GetString(key); got != want {
					t.Errorf("outer %v, inner %v: {%s} = %q, want %q", outer != nil, inner != nil, key, got, want)
				}
			}
		}
	}
}
