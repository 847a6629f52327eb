package caddymodule

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

func TestMatchSessionCaddyfile(t *testing.T) {
	for in, want := range map[string]string{
		"session":                       `{}`,
		"session user alice bob":        `{"users":["alice","bob"]}`,
		"session group admin":           `{"groups":["admin"]}`,
		"session data role":             `{"data":{"role":[]}}`,
		"session data role admin owner": `{"data":{"role":["admin","owner"]}}`,
		"session {\nuser alice\ngroup ops\ndata mfa ok\n}": `{"users":["alice"],"groups":["ops"],"data":{"mfa":["ok"]}}`,
		"session group a\nsession user":                    "session user: needs at least one name",
		"session group a\nsession group b":                 `{"groups":["a","b"]}`,
		"session role admin":                               `unknown criterion "role"`,
		"session data Role x":                              `data key "Role"`,
		"session group a,b":                                `group "a,b"`,
		"session user":                                     "needs at least one name",
		"session data":                                     "needs a key",
	} {
		var m MatchSession
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in))
		if strings.HasPrefix(want, "{") {
			got, _ := json.Marshal(m)
			if err != nil || string(got) != want {
				t.Errorf("%q: %s, %v; want %s", in, got, err, want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", in, err, want)
		}
	}
}

func TestMatchSession(t *testing.T) {
	alice := &session.Session{Rec: sessionstore.Record{User: "alice", Data: map[string]string{"role": "owner", "mfa": "ok"}}}
	alice.Groups = newGroupSet([]string{"admin", "staff"})
	bob := &session.Session{Rec: sessionstore.Record{User: "bob"}}
	anon := &session.Session{Rec: sessionstore.Record{Data: map[string]string{"role": "owner"}}}
	tests := []struct {
		m    MatchSession
		s    *session.Session
		want bool
	}{
		{MatchSession{}, alice, true},
		{MatchSession{}, bob, true},
		{MatchSession{}, anon, false},
		{MatchSession{}, nil, false},
		{MatchSession{Users: []string{"bob", "alice"}}, alice, true},
		{MatchSession{Users: []string{"bob"}}, alice, false},
		{MatchSession{Groups: []string{"ops", "staff"}}, alice, true},
		{MatchSession{Groups: []string{"ops"}}, alice, false},
		{MatchSession{Groups: []string{"staff"}}, bob, false},
		{MatchSession{Data: map[string][]string{"role": nil}}, alice, true},
		{MatchSession{Data: map[string][]string{"role": {"admin", "owner"}}}, alice, true},
		{MatchSession{Data: map[string][]string{"role": {"admin"}}}, alice, false},
		{MatchSession{Data: map[string][]string{"role": nil}}, bob, false},
		{MatchSession{Data: map[string][]string{"role": nil}}, anon, false},
		{MatchSession{Users: []string{"alice"}, Groups: []string{"admin"}, Data: map[string][]string{"mfa": {"ok"}}}, alice, true},
		{MatchSession{Users: []string{"alice"}, Groups: []string{"ops"}}, alice, false},
	}
	h := newTestHandler(t, nil)
	for i, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
		if tt.s != nil {
			caddyhttp.SetVar(r.Context(), sessionVarKey, sessionVar{tt.s})
		}
		if got, err := tt.m.MatchWithError(r); got != tt.want || err != nil {
			t.Errorf("#%d: %v, %v; want %v", i, got, err, tt.want)
		}
		// A later session handler without a session leaves none behind.
		h.identify(r, nil)
		if got, _ := tt.m.MatchWithError(r); got {
			t.Errorf("#%d: matched after a session handler that found no session", i)
		}
	}
	// Nothing else can pass a session: a var of another type is none.
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{sessionVarKey: "alice"}))
	if got, _ := (MatchSession{}).MatchWithError(r); got {
		t.Error("matched a string var")
	}
	if got := (sessionVar{alice}).String(); got != "alice" {
		t.Errorf("the var prints as %q", got)
	}
}
