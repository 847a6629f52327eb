package caddymodule

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/authz"
)

// testRules are `allow group admin { path /admin/* }` and `allow user alice
// bob { path_regexp ^/billing/ }`, provisioned as the handler provisions
// its rules.
func testRules(t testing.TB) authz.Rules {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	rs, err := loadRules(ctx, []Rule{
		{MatchRaw: caddyhttp.RawMatcherSets{{"path": json.RawMessage(`["/admin/*"]`)}}, Groups: []string{"admin"}},
		{MatchRaw: caddyhttp.RawMatcherSets{{"path_regexp": json.RawMessage(`{"pattern": "^/billing/"}`)}}, Users: []string{"alice", "bob"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestAllowCaddyfile(t *testing.T) {
	out, err := adapt(t, "allow group admin ops user alice {\npath /admin/*\nmethod POST\n}\nallow user \"group\" bob\nallow group staff {\npath /staff/*\n}")
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseAdapted(t, out)
	var h Handler
	for _, srv := range cfg.Apps.HTTP.Servers {
		if err := json.Unmarshal(srv.Routes[0].Handle[0].Routes[0].Handle[0], &h); err != nil {
			t.Fatal(err)
		}
	}
	if len(h.Rules) != 3 {
		t.Fatalf("rules: %+v", h.Rules)
	}
	r0, r1, r2 := h.Rules[0], h.Rules[1], h.Rules[2]
	if !slices.Equal(r0.Groups, []string{"admin", "ops"}) || !slices.Equal(r0.Users, []string{"alice"}) || len(r0.MatchRaw) != 1 || len(r0.MatchRaw[0]) != 2 {
		t.Errorf("rule 1: %+v", r0)
	}
	if !slices.Equal(r1.Users, []string{"group", "bob"}) || r1.Groups != nil || r1.MatchRaw != nil {
		t.Errorf("rule 2: %+v", r1)
	}
	if !slices.Equal(r2.Groups, []string{"staff"}) || string(r2.MatchRaw[0]["path"]) != `["/staff/*"]` {
		t.Errorf("rule 3: %+v", r2)
	}

	for body, want := range map[string]string{
		"allow {\npath /x\n}":        "names no user and no group",
		"allow admin {\npath /x\n}":  `allow "admin": want`,
		"allow group {\npath /x\n}":  "allow group: names no one",
		"allow user group admin":     "allow user: names no one",
		"allow group a,b":            `group "a,b"`,
		"allow user a:b:c":           `user "a:b:c"`,
		"allow user ..":              `user ".."`,
		"allow user corp:a/b":        `user "corp:a/b"`,
		"allow user corp:alice":      "",
		"allow group a {\nfrob x\n}": "frob",
		"allow group a {\npath\n}\n": "",
	} {
		_, err := adapt(t, body)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}

func TestSplitPathConfig(t *testing.T) {
	out, err := adapt(t, "split_path .php .phtml") // as the docs show it
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseAdapted(t, out)
	var h Handler
	for _, srv := range cfg.Apps.HTTP.Servers {
		if err := json.Unmarshal(srv.Routes[0].Handle[0].Routes[0].Handle[0], &h); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(h.SplitPath, []string{".php", ".phtml"}) {
		t.Fatalf("split_path: %q", h.SplitPath)
	}
	h.setDefaults()
	// The handler's readings split at ".phtml" too: a rule for /admin/*
	// judges its PATH_INFO.
	rs := authz.Rules{{Match: caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/admin/*"}}}, Groups: []string{"admin"}, Name: "#1"}}
	var rd authz.Readings
	r := httptest.NewRequest("GET", "/a.PHTML/Admin", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	rd.Read(r, &h.readings)
	if v, _, _ := rs.Judge(r, &rd, "alice", nil, false); v != authz.Forbidden {
		t.Errorf("split_path .phtml on /a.PHTML/Admin: %v under a rule for /admin/*", v)
	}
	bad := Handler{SplitPath: []string{"/x.php"}}
	bad.setDefaults()
	if err := bad.validate(); err == nil || !strings.Contains(err.Error(), `split_path "/x.php"`) {
		t.Errorf("JSON split_path [\"/x.php\"]: %v", err)
	}
	var d Handler
	d.setDefaults()
	if !slices.Equal(d.readings.Split, []string{".php"}) {
		t.Errorf("default split: %q", d.readings.Split)
	}
}
