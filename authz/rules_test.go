package authz

import (
	"context"
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
func testRules() Rules {
	return Rules{
		{Match: caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/admin/*"}}}, Groups: []string{"admin"}, Name: "#1 allow group admin"},
		{Match: caddyhttp.MatcherSets{{mustRegexp("^/billing/")}}, Users: []string{"alice", "bob"}, Name: "#2 allow user alice bob"},
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
	admin := groupList{"admin"}
	tests := []struct {
		path, user string
		groups     Groups
		want       Verdict
		rule       string
	}{
		{"/admin/x", "carol", admin, Allowed, ""},
		{"/admin/x", "alice", nil, Forbidden, "#1"},
		{"/admin/", "alice", nil, Forbidden, "#1"},
		{"/other", "alice", nil, Allowed, ""},
		{"/billing/1", "alice", nil, Allowed, ""},
		{"/billing/1", "carol", admin, Forbidden, "#2"},
		// Case and trailing slash.
		{"/ADMIN/x", "alice", nil, Forbidden, "#1"},
		{"/Admin", "alice", nil, Forbidden, "#1"},
		{"/admin", "alice", nil, Forbidden, "#1"},
		{"//admin/", "alice", nil, Forbidden, "#1"},
		{"/BILLING/1", "carol", nil, Forbidden, "#2"},
		{"/billing", "carol", nil, Forbidden, "#2"},
		{"//billing//1", "carol", nil, Forbidden, "#2"},
		{"/billing;x/1", "carol", nil, Forbidden, "#2"},
		{"/admin;jsessionid=1/x", "alice", nil, Forbidden, "#1"},
		{"/admin;x", "alice", nil, Forbidden, "#1"},
		{"/administrator", "alice", nil, Allowed, ""},
		// Not plain: only who every rule lets in.
		{"/admin/x/../../public", "alice", nil, Unplain, "#1"},
		{"/admin/..%2fpublic", "alice", nil, Unplain, "#1"},
		{"/admin/%2e%2e/public", "alice", nil, Unplain, "#1"},
		{"/admin;x/../public", "alice", nil, Unplain, "#1"},
		{"/public/..%2fadmin", "carol", admin, Unplain, "#2"},
		{"/a%2fb", "alice", admin, Allowed, ""},
	}
	for _, tt := range tests {
		r := ruleRequest(tt.path)
		got, ru, err := judgeRequest(rs, r, tt.user, tt.groups)
		if err != nil {
			t.Fatal(err)
		}
		name := ""
		if ru != nil {
			name, _, _ = strings.Cut(ru.Name, " ")
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
var defaultReadings = Config{Split: DefaultSplitPath}

// judgeRequest reads r as a handler with the default configuration does,
// and judges it by rs.
func judgeRequest(rs Rules, r *http.Request, user string, groups Groups) (Verdict, *Rule, error) {
	var rd Readings
	rd.Read(r, &defaultReadings)
	return rs.Judge(r, &rd, user, groups, false)
}

// groupList is a user's groups as a caller of Judge may keep them.
type groupList []string

func (g groupList) Has(group string) bool { return slices.Contains(g, group) }

// BenchmarkRulesJudge is the cost of the rules on a request of a user
// whom not every rule lets in: a plain path no rule matches (judged in
// its readings too), and one a rule matches and denies.
func BenchmarkRulesJudge(b *testing.B) {
	rs := testRules()
	for path, want := range map[string]Verdict{"/app/page": Allowed, "/admin/x": Forbidden} {
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
