package authz

import (
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestMethodReadings(t *testing.T) {
	tests := []struct {
		method, query string
		headers       []string
		want          []string
	}{
		{"GET", "", nil, []string{"GET"}},
		{"get", "", nil, []string{"get", "GET", "POST"}},
		{"Get", "", nil, []string{"Get", "GET", "POST"}},
		{"post", "", nil, []string{"post", "POST"}},
		{"Delete", "", nil, []string{"Delete", "DELETE"}},
		{"HEAD", "", nil, []string{"HEAD", "GET"}},
		{"head", "", nil, []string{"head", "HEAD", "GET"}},
		{"POST", "", []string{"X-HTTP-Method-Override: delete"}, []string{"POST", "DELETE"}},
		{"POST", "", []string{"X-Http-Method: PUT, patch"}, []string{"POST", "PUT", "PATCH"}},
		{"POST", "", []string{"X_HTTP_METHOD_OVERRIDE: DELETE"}, []string{"POST", "DELETE"}},
		{"POST", "", []string{"X.Http.Method: DELETE"}, []string{"POST", "DELETE"}},
		{"POST", "", []string{"x-method-override: HEAD"}, []string{"POST", "HEAD", "GET"}},
		{"POST", "", []string{"X-HTTP-Method-Overrider: DELETE"}, []string{"POST"}},
		{"POST", "_method=DELETE", nil, []string{"POST", "DELETE"}},
		{"POST", "a=1&%5Fmethod=put", nil, []string{"POST", "PUT"}},
		{"POST", ".method=PUT&+method=PATCH&[method=delete", nil, []string{"POST", "PUT", "PATCH", "DELETE"}},
		{"POST", "_method[]=PUT&x_method=PUT&_Method=PUT&method=PUT", nil, []string{"POST"}},
	}
	for _, tt := range tests {
		r := ruleRequest("/x?" + tt.query)
		r.Method = tt.method
		for _, h := range tt.headers {
			name, value, _ := strings.Cut(h, ": ")
			r.Header[name] = append(r.Header[name], value)
		}
		rd := readRequest(r)
		if got := rd.methods(); !slices.Equal(got, tt.want) || rd.refused != "" {
			t.Errorf("%s ?%s %q: %q (refused %q), want %q", tt.method, tt.query, tt.headers, got, rd.refused, tt.want)
		}
	}
}

// TestMethodReadingsAreJudged: the billing rule (POST PUT DELETE for
// alice) judges the method the upstream will run.
func TestMethodReadingsAreJudged(t *testing.T) {
	rs := routeRules()
	get := ruleRules(t, rs, "carol", nil)
	for _, tt := range []struct {
		method  string
		target  string
		headers []string
		want    Verdict
	}{
		{"GET", "/billing/transfer", nil, Allowed},
		{"POST", "/billing/transfer", nil, Forbidden},
		{"post", "/billing/transfer", nil, Forbidden},
		{"dElEtE", "/billing/transfer", nil, Forbidden},
		{"GET", "/billing/transfer", []string{"X-HTTP-Method-Override: DELETE"}, Forbidden},
		{"GET", "/billing/transfer", []string{"X_Http_Method: put"}, Forbidden},
		{"GET", "/billing/transfer?_method=delete", nil, Forbidden},
		{"GET", "/billing/transfer", []string{"X-HTTP-Method-Override: GET"}, Allowed},
	} {
		if got := get(tt.method, tt.target, tt.headers); got != tt.want {
			t.Errorf("carol %s %s %q: %v, want %v", tt.method, tt.target, tt.headers, got, tt.want)
		}
	}
	// HEAD is judged as GET: a rule for GET covers it.
	rs = Rules{{Match: caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/read/*"}, caddyhttp.MatchMethod{"GET"}}}, Users: []string{"alice"}, Name: "#1"}}
	if got := ruleRules(t, rs, "carol", nil)("HEAD", "/read/x", nil); got != Forbidden {
		t.Errorf("carol HEAD /read/x under a GET rule: %v", got)
	}
}

func ruleRules(t *testing.T, rs Rules, user string, groups Groups) func(method, target string, headers []string) Verdict {
	return func(method, target string, headers []string) Verdict {
		r := ruleRequest(target)
		r.Method = method
		for _, h := range headers {
			name, value, _ := strings.Cut(h, ": ")
			r.Header[name] = append(r.Header[name], value)
		}
		v, _, err := judgeRequest(rs, r, user, groups)
		if err != nil {
			t.Fatal(err)
		}
		if r.Method != method || r.URL.Path != ruleRequest(target).URL.Path {
			t.Fatalf("judging changed the request to %s %s", r.Method, r.URL.Path)
		}
		return v
	}
}
