package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// testRules are `allow group admin { path /admin/* }` and `allow user alice
// bob { path_regexp ^/billing/ }`, provisioned by hand.
func testRules() ruleSet {
	return ruleSet{
		{match: caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/admin/*"}}}, groups: []string{"admin"}, name: "#1 allow group admin"},
		{match: caddyhttp.MatcherSets{{mustRegexp("^/billing/")}}, users: []string{"alice", "bob"}, name: "#2 allow user alice bob"},
	}
}

func mustRegexp(pattern string) *caddyhttp.MatchPathRE {
	m := &caddyhttp.MatchPathRE{MatchRegexp: caddyhttp.MatchRegexp{Pattern: pattern}}
	if err := m.Provision(caddy.Context{}); err != nil {
		panic(err)
	}
	return m
}

// ruleRequest is a request for target (sent as is) with a replacer, as
// Caddy's matchers expect.
func ruleRequest(target string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RequestURI = target
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic(err)
	}
	r.URL = u
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
}

func TestRulesJudge(t *testing.T) {
	rs := testRules()
	admin := newGroupSet([]string{"admin"})
	tests := []struct {
		path, user string
		groups     *groupSet
		want       verdict
		rule       string
	}{
		{"/admin/x", "carol", admin, allowed, ""},
		{"/admin/x", "alice", nil, forbidden, "#1"},
		{"/admin/", "alice", nil, forbidden, "#1"},
		{"/other", "alice", nil, allowed, ""},
		{"/billing/1", "alice", nil, allowed, ""},
		{"/billing/1", "carol", admin, forbidden, "#2"},
		// Case and trailing slash.
		{"/ADMIN/x", "alice", nil, forbidden, "#1"},
		{"/Admin", "alice", nil, forbidden, "#1"},
		{"/admin", "alice", nil, forbidden, "#1"},
		{"//admin/", "alice", nil, forbidden, "#1"},
		{"/BILLING/1", "carol", nil, forbidden, "#2"},
		{"/billing", "carol", nil, forbidden, "#2"},
		{"//billing//1", "carol", nil, forbidden, "#2"},
		{"/billing;x/1", "carol", nil, forbidden, "#2"},
		{"/admin;jsessionid=1/x", "alice", nil, forbidden, "#1"},
		{"/admin;x", "alice", nil, forbidden, "#1"},
		{"/administrator", "alice", nil, allowed, ""},
		// Not plain: only who every rule lets in.
		{"/admin/x/../../public", "alice", nil, unplain, "#1"},
		{"/admin/..%2fpublic", "alice", nil, unplain, "#1"},
		{"/admin/%2e%2e/public", "alice", nil, unplain, "#1"},
		{"/admin;x/../public", "alice", nil, unplain, "#1"},
		{"/public/..%2fadmin", "carol", admin, unplain, "#2"},
		{"/a%2fb", "alice", admin, allowed, ""},
	}
	for _, tt := range tests {
		r := ruleRequest(tt.path)
		got, ru, err := judgeRequest(rs, r, tt.user, tt.groups)
		if err != nil {
			t.Fatal(err)
		}
		name := ""
		if ru != nil {
			name, _, _ = strings.Cut(ru.name, " ")
		}
		if got != tt.want || name != tt.rule {
			t.Errorf("%s as %s: %v by %q, want %v by %q", tt.path, tt.user, got, name, tt.want, tt.rule)
		}
		if r.URL.Path != ruleRequest(tt.path).URL.Path {
			t.Errorf("%s: judge changed the request's path to %q", tt.path, r.URL.Path)
		}
	}
}

// defaultReadings is the readings configuration of a handler with no
// split_path.
var defaultReadings = readingsConfig{split: DefaultSplitPath}

// judgeRequest reads r as a handler with the default configuration does,
// and judges it by rs.
func judgeRequest(rs ruleSet, r *http.Request, user string, groups *groupSet) (verdict, *rule, error) {
	var rd readings
	rd.readRequest(r, &defaultReadings)
	return rs.judge(r, &rd, user, groups)
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

// BenchmarkRulesJudge is the cost of the rules on a request of a user
// whom not every rule lets in: a plain path no rule matches (judged in
// its readings too), and one a rule matches and denies.
func BenchmarkRulesJudge(b *testing.B) {
	rs := testRules()
	for path, want := range map[string]verdict{"/app/page": allowed, "/admin/x": forbidden} {
		b.Run(path, func(b *testing.B) {
			r := ruleRequest(path)
			b.ReportAllocs()
			for b.Loop() {
				if v, _, _ := judgeRequest(rs, r, "carol", nil); v != want {
					b.Fatal(v)
				}
			}
		})
	}
}
