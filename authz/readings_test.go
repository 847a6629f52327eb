package authz

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// readRequest reads r as a handler with the default configuration does.
func readRequest(r *http.Request) *Readings {
	rd := new(Readings)
	rd.Read(r, &defaultReadings)
	return rd
}

func TestPathReadings(t *testing.T) {
	tests := []struct {
		path     string
		routes   []string // after the path itself
		variants []string
	}{
		{"/app/page", nil, []string{"/app/page/"}},
		{"/", nil, nil},
		{"/a/", nil, []string{"/a"}},
		{"/A/b", []string{"/a/b"}, []string{"/A/b/", "/a/b/"}},
		{"//a//b/", []string{"/a/b/"}, []string{"//a//b", "/a/b"}},
		{"/a;x/b;y=1", []string{"/a/b"}, []string{"/a;x/b;y=1/", "/a/b/"}},
		{"/Admin;jsid=Q/", []string{"/Admin/", "/admin;jsid=q/", "/admin/"}, []string{"/Admin;jsid=Q", "/Admin", "/admin;jsid=q", "/admin"}},
		// The script split: the script, and its PATH_INFO.
		{"/index.php/admin/users", []string{"/index.php", "/admin/users"}, []string{"/index.php/admin/users/", "/index.php/", "/admin/users/"}},
		{"/a/Index.PHP/Admin", []string{"/a/Index.PHP", "/Admin", "/a/index.php/admin", "/a/index.php", "/admin"}, nil},
		{"/admin.php/x.css", []string{"/admin.php", "/x.css"}, nil},
		{"/admin.php;x/y", []string{"/admin.php/y", "/admin.php", "/y"}, nil},
		{"/index.php", nil, []string{"/index.php/"}},
		{"/a.phpx/y", []string{"/a.php", "/x/y"}, nil},
		// Unicode: NFKC, folding both ways, digits.
		{"/reports/١٢", []string{"/reports/12"}, nil},
		{"/reports/１２", []string{"/reports/12"}, nil},
		{"/admın", []string{"/admin"}, nil},
		{"/ſecret", []string{"/secret"}, nil},
		{"/ａｄｍｉｎ/x", []string{"/admin/x"}, nil},
		{"/ＡＤＭＩＮ/x", []string{"/ａｄｍｉｎ/x", "/ADMIN/x", "/admin/x"}, nil},
		{"/\u212Aey", []string{"/Key", "/key"}, nil}, // the Kelvin sign
		{"/wiki/Müller", []string{"/wiki/müller"}, nil},
		{"/admin／x", []string{"/admin/x"}, nil}, // fullwidth solidus
	}
	for _, tt := range tests {
		rd := readRequest(ruleRequest(escapePath(tt.path)))
		if rd.refused != "" {
			t.Errorf("%s: refused: %s", tt.path, rd.refused)
			continue
		}
		routes := rd.paths()
		if routes[0] != tt.path {
			t.Errorf("%s: the first reading is %q", tt.path, routes[0])
		}
		for _, want := range tt.routes {
			if !slices.Contains(routes[1:], want) {
				t.Errorf("%s: no route reading %q in %q", tt.path, want, routes)
			}
		}
		rd.withVariants()
		variants := rd.paths()[rd.routes:]
		for _, want := range tt.variants {
			if !slices.Contains(variants, want) {
				t.Errorf("%s: no variant %q in %q", tt.path, want, variants)
			}
		}
		for _, q := range rd.paths() {
			if !plainString(q) {
				t.Errorf("%s: reading %q is not plain", tt.path, q)
			}
		}
	}
	// Past the first 8 paths, the readings go on (on the heap).
	rd := readRequest(ruleRequest(escapePath("/a/Index.PHP/ＡＤＭＩＮ;x/ſ/١")))
	if rd.refused != "" || len(rd.paths()) <= len(rd.path) || !slices.Contains(rd.paths(), "/admin/s/1") || rd.paths()[0] != "/a/Index.PHP/ＡＤＭＩＮ;x/ſ/١" {
		t.Errorf("many readings: %d %q (refused %q)", len(rd.paths()), rd.paths(), rd.refused)
	}
	// Exactly so for the common case: nothing to judge but the path and,
	// for rules, its trailing-slash twin.
	rd = readRequest(ruleRequest("/app/page"))
	rd.withVariants()
	if got := rd.paths(); !slices.Equal(got, []string{"/app/page", "/app/page/"}) || rd.routes != 1 {
		t.Errorf("/app/page: %q, %d routes", got, rd.routes)
	}
}

// escapePath percent-encodes p's non-ASCII bytes, as a client sends them.
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if c := p[i]; c >= 0x80 {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func TestReadingsRefused(t *testing.T) {
	for _, target := range []string{
		"/admin/../public", "/a/%2e%2e/b", "/a%2fb", "/a\\b", "/a/%252e%252e/b", // not plain, as before
		"/a/%FF/b",                          // not UTF-8
		"/admin/%E2%80%A5/x",                // "‥" is ".." to NFKC
		"/a/%EF%BC%8E%EF%BC%8E/b",           // fullwidth ".."
		"/a%EF%BC%BCb",                      // fullwidth '\'
		"/a/%EF%BC%85%32%65/b",              // fullwidth '%' before "2e"
		"/x" + strings.Repeat(".php/y", 40), // too many splits
	} {
		if rd := readRequest(ruleRequest(target)); rd.refused == "" {
			t.Errorf("%s: readings %q, want it refused", target, rd.paths())
		}
	}
	r := ruleRequest("/x")
	for i := range maxMethodReadings {
		r.Header.Add("X-HTTP-Method-Override", "M"+string(rune('A'+i)))
	}
	if rd := readRequest(r); rd.refused == "" {
		t.Errorf("%d override methods: %q, want them refused", maxMethodReadings, rd.methods())
	}
}

// A protected route, and the spellings of it that some common upstream
// routes to it: each transform is undone by one (see the package comment).
var (
	protectedRoutes = []string{"/admin/users", "/billing/transfer", "/reports/12", "/secret/keys"}

	pathTransforms = map[string]func(string) string{
		"upper":      strings.ToUpper,
		"title":      func(p string) string { return strings.ReplaceAll(p, "/a", "/A") },
		"params":     func(p string) string { return strings.Replace(p, "/", "/;x=1/", 2)[len("/;x=1"):] + ";jsessionid=1" },
		"segparam":   func(p string) string { i := strings.LastIndexByte(p, '/'); return p[:i] + ";v=2" + p[i:] },
		"slashes":    func(p string) string { return "/" + strings.ReplaceAll(p, "/", "//") },
		"trailing":   func(p string) string { return p + "/" },
		"front":      func(p string) string { return "/index.php" + p },
		"subfront":   func(p string) string { return "/app/Index.PHP" + p },
		"dotless-i":  func(p string) string { return strings.ReplaceAll(p, "i", "ı") },
		"long-s":     func(p string) string { return strings.ReplaceAll(p, "s", "ſ") },
		"kelvin":     func(p string) string { return strings.ReplaceAll(p, "k", "\u212A") },
		"fullwidth":  fullwidthLetters,
		"arabic":     func(p string) string { return shiftDigits(p, 0x0660) },
		"devanagari": func(p string) string { return shiftDigits(p, 0x0966) },
		"fwdigits":   func(p string) string { return shiftDigits(p, 0xFF10) },
		"mathdigits": func(p string) string { return shiftDigits(p, 0x1D7CE) },
	}
)

func fullwidthLetters(p string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return r - 'A' + 0xFF21
		}
		return r
	}, p)
}

func shiftDigits(p string, zero rune) string {
	return strings.Map(func(r rune) rune {
		if '0' <= r && r <= '9' {
			return r - '0' + zero
		}
		return r
	}, p)
}

// generatedVariants are the protected routes under every transform and
// every pair of them.
func generatedVariants() map[string]string {
	out := map[string]string{}
	names := make([]string, 0, len(pathTransforms))
	for name := range pathTransforms {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, route := range protectedRoutes {
		for _, a := range names {
			out[pathTransforms[a](route)] = route + " " + a
			for _, b := range names {
				out[pathTransforms[b](pathTransforms[a](route))] = route + " " + a + "+" + b
			}
		}
	}
	return out
}

// routeRules are one rule per protected route, each as a user would
// write it: path for some, path_regexp (case-sensitive, ASCII digits) for
// others.
func routeRules() Rules {
	return Rules{
		{Match: caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/admin/*"}}}, Groups: []string{"admin"}, Name: "#1"},
		{Match: caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/billing/*"}, caddyhttp.MatchMethod{"POST", "PUT", "DELETE"}}}, Users: []string{"alice"}, Name: "#2"},
		{Match: caddyhttp.MatcherSets{{mustRegexp("^/reports/[0-9]+$")}}, Groups: []string{"staff"}, Name: "#3"},
		{Match: caddyhttp.MatcherSets{{mustRegexp("^/secret")}}, Users: []string{"alice"}, Name: "#4"},
	}
}

// TestGeneratedVariantsAreJudged: no spelling of a protected route that
// some upstream routes to it gets carol (in no group) past its rule, nor
// makes it public under public matchers for assets; alice, whom every
// rule lets in, passes with every one of them.
func TestGeneratedVariantsAreJudged(t *testing.T) {
	rs := routeRules()
	public := caddyhttp.MatcherSets{{caddyhttp.MatchPath{"*.css", "*.js", "/static/*"}}}
	alice := groupList{"admin", "staff"}
	for variant, what := range generatedVariants() {
		target := escapePath(variant)
		r := ruleRequest(target)
		r.Method = "POST"
		v, _, err := judgeRequest(rs, r, "carol", nil)
		if err != nil {
			t.Fatalf("%s (%s): %v", variant, what, err)
		}
		if v == Allowed {
			t.Errorf("carol POST %s (%s): allowed", variant, what)
		}
		if v, _, _ := judgeRequest(rs, ruleRequest(target), "alice", alice); v != Allowed {
			t.Errorf("alice GET %s (%s): %v", variant, what, v)
		}
	}
	// The protected routes, spelled so that `public` matches them: never
	// public. (A route that merely ends in ".css" is another route.)
	n := 0
	for variant, what := range generatedVariants() {
		for _, asset := range []string{";.css", ";x.js", ".php/x.css", ";/.php/x.css"} {
			for _, p := range []string{variant + asset, "/index.php" + variant + ".css", "/static/x.php" + variant} {
				r := ruleRequest(escapePath(p))
				if ok, _ := EveryReadingMatches(public, r, readRequest(r)); ok {
					t.Errorf("%s (%s) is public", p, what)
				}
				n++
			}
		}
	}
	if n < 1000 {
		t.Errorf("only %d variants", n)
	}
	// What is public stays so.
	for _, p := range []string{"/static/app.css", "/static/", "/css/site.css", "/static/Logo.PNG", "/static/a;v=1.css"} {
		r := ruleRequest(p)
		if ok, err := EveryReadingMatches(public, r, readRequest(r)); !ok || err != nil {
			t.Errorf("%s: not public (%v)", p, err)
		}
	}
}

// TestReadingsCommonCaseAllocatesNothing: a plain lower-case ASCII path,
// an upper-case method, no override: reading it and judging public
// allocates nothing.
func TestReadingsCommonCaseAllocatesNothing(t *testing.T) {
	public := caddyhttp.MatcherSets{{caddyhttp.MatchPath{"/static/*"}}}
	r := ruleRequest("/app/page?x=1")
	r.Header.Set("Accept", "text/html")
	allocs := testing.AllocsPerRun(100, func() {
		var rd Readings
		rd.Read(r, &defaultReadings)
		if ok, _ := EveryReadingMatches(public, r, &rd); ok {
			t.Fatal("public")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
}

// FuzzReadings: whatever the target, method and override header, reading
// a request never fails; its first path and method are its own; every
// path reading is plain, or the readings are refused; judging restores
// the request; and a request public in its readings is public as Caddy
// reads it, and denied to carol if its own reading is.
func FuzzReadings(f *testing.F) {
	for _, s := range [][3]string{
		{"/app/page", "GET", ""}, {"/index.php/admin/users", "post", "DELETE"}, {"/admin;.css", "HEAD", ""},
		{"/reports/%D9%A1%D9%A2", "GET", "put, head"}, {"/adm%C4%B1n/x", "Delete", ""}, {"/%EF%BD%81dmin.php/x.css", "GET", ""},
		{"/a/%E2%80%A5/b", "GET", ""}, {"/a%2fb", "GET", ""}, {"/%FF", "GET", ""}, {"//a;b//c/", "GET", "GET"},
		{"/x?_method=delete&.method=put", "POST", ""}, {"/A.PHP;x/B.php/c", "GET", ""}, {"/\u212A/\u017F", "GET", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	rs := routeRules()
	public := caddyhttp.MatcherSets{{caddyhttp.MatchPath{"*.css", "/static/*"}}}
	f.Fuzz(func(t *testing.T, target, method, override string) {
		if !strings.HasPrefix(target, "/") || method == "" || strings.ContainsAny(method, " \t\r\n/") {
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := ruleRequest("/")
		r.URL, r.Method = u, method
		if override != "" {
			r.Header.Set("X-HTTP-Method-Override", override)
		}
		path, raw := r.URL.Path, r.URL.RawPath
		rd := readRequest(r)
		if rd.refused == "" {
			if rd.paths()[0] != path || rd.methods()[0] != method {
				t.Fatalf("first reading %q %q, want %q %q", rd.methods()[0], rd.paths()[0], method, path)
			}
			for _, p := range rd.paths() {
				if !plainString(p) {
					t.Fatalf("%q: reading %q is not plain", target, p)
				}
			}
		}
		ownPublic, _ := public.AnyMatchWithError(r)
		allPublic, _ := EveryReadingMatches(public, r, rd)
		if allPublic && !ownPublic {
			t.Fatalf("%q: public in its readings, not as Caddy reads it", target)
		}
		ownDenied, _ := rs.firstDenying(r, "carol", nil, false)
		v, _, err := rs.Judge(r, rd, "carol", nil, false)
		if err == nil && ownDenied != nil && v == Allowed {
			t.Fatalf("%s %q: allowed, but its own reading is denied by %s", method, target, ownDenied.Name)
		}
		if r.URL.Path != path || r.URL.RawPath != raw || r.Method != method {
			t.Fatalf("judging left the request as %s %q %q", r.Method, r.URL.Path, r.URL.RawPath)
		}
	})
}

// TestQueryRouteReadings: CodeIgniter 3 routes on a query that starts
// with '/' when the path leaves no route of its own; the query up to '?'
// and up to '&', decoded, is a route reading then, and only then.
func TestQueryRouteReadings(t *testing.T) {
	for target, want := range map[string][]string{
		"/index.php?/admin/keys":       {"/admin/keys"},
		"/?/admin/keys":                {"/admin/keys"},
		"//?/admin/keys":               {"/admin/keys"},
		"/index.php/?/admin/keys":      {"/admin/keys"},
		"/INDEX.PHP?/Admin/Keys":       {"/Admin/Keys", "/admin/keys"},
		"/?%2Fadmin%2Fkeys":            {"/admin/keys"},
		"/?/admin/keys&x=1":            {"/admin/keys&x=1", "/admin/keys"},
		"/index.php?/admin/keys?x=1":   {"/admin/keys"},
		"/?/index.php/admin/keys":      {"/admin/keys"},
		"/?/adm%C4%B0n/keys":           {"/admİn/keys", "/admin/keys"},
		"/index.php/x?/admin/keys":     nil, // the path has a route of its own
		"/public/x.css?/admin/keys":    nil,
		"/?admin/keys":                 nil, // not a path
		"/?q=/admin/keys":              nil, // a named parameter: a query matcher's job
		"/shop/index.php5?/admin/keys": nil,
	} {
		rd := readRequest(ruleRequest(target))
		if rd.refused != "" {
			t.Errorf("%s: refused (%s)", target, rd.refused)
			continue
		}
		routes := rd.paths()[:rd.routes]
		for _, p := range want {
			if !slices.Contains(routes, p) {
				t.Errorf("%s: route readings %q, want %q among them", target, routes, p)
			}
		}
		if want == nil && slices.ContainsFunc(routes, func(p string) bool { return strings.Contains(p, "admin") }) {
			t.Errorf("%s: route readings %q, want none from the query", target, routes)
		}
	}
	for _, target := range []string{"/?/../admin", "/index.php?/a%5Cb", "/?/a%25%32%65%25%32%65/b", "/?/x%ZZ"} {
		if rd := readRequest(ruleRequest(target)); rd.refused == "" {
			t.Errorf("%s: readings %q, want them refused", target, rd.paths())
		}
	}
}

// TestLongPathsWithReadingsAreRefused: past maxReadPath, a path that needs
// readings beyond its own is refused (never public; 400 where rules
// apply); a long path that is its only reading is read as usual.
func TestLongPathsWithReadingsAreRefused(t *testing.T) {
	long := "/a/" + strings.Repeat("b", maxReadPath)
	if rd := readRequest(ruleRequest(long)); rd.refused != "" || len(rd.paths()) != 1 {
		t.Errorf("long plain path: refused %q, %d readings; want it read as itself", rd.refused, len(rd.paths()))
	}
	for _, p := range []string{long + "/X", long + ";x", long + "/x.php/y"} {
		if rd := readRequest(ruleRequest(p)); rd.refused == "" {
			t.Errorf("%d-byte path with readings: not refused", len(p))
		}
	}
	short := "/A" + strings.Repeat("b", maxReadPath-3)
	if rd := readRequest(ruleRequest(short)); rd.refused != "" {
		t.Errorf("%d-byte path: refused (%s)", len(short), rd.refused)
	}
}
