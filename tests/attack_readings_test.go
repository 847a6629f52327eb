package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Hostile review of the request readings (SPEC §10, authz/readings.go)
// beyond the differential test's generated corpus: hand-made requests sent
// to the same real readers (Flask/Werkzeug, Django, a PHP front controller
// behind php_fastcgi, Go's ServeMux) and to a fifth, CodeIgniter 3's
// reading of REQUEST_URI behind php_fastcgi. Each request goes as an
// anonymous visitor and as a user the route's rule denies; the oracle is
// the differential test's (diffExchange.verdict): nothing runs that the
// table does not admit. A failing case is a finding.

// attackSite is the differential test's Caddyfile plus two CodeIgniter 3
// sites (one with the differential test's session block, one whose
// `public` also names the landing page "/", as a site with a public home
// page has it) and a Zend Framework 1 site.
//
// The reports rule is the prefix form `path /reports/*`, not the
// differential test's `path_regexp ^/reports/[0-9]+$`: Go's Atoi runs
// "/reports/+12" as report 12, which that regexp does not match, and the
// docs (rules.md) advise protecting a route by its prefix, not by a
// regexp of what the app accepts. That case tests a rule-writing choice,
// not the readings; the differential test keeps the regexp for its
// Unicode digit readings.
var attackSite = attackBase + strings.Replace(strings.Replace(attackBase[:strings.Index(attackBase, "\n[[.Site]]")],
	"(difftest_session)", "(attack_landing_session)", 1),
	"path *.css *.js /public/*", "path *.css *.js /public/* /", 1) + `
http://127.0.0.1:[[.Extra.ci3Port]] {
	import difftest_session
	root * [[.Extra.ci3Root]]
	php_fastcgi unix/[[.Extra.fpmSock]]
}

http://127.0.0.1:[[.Extra.zf1Port]] {
	import difftest_session
	root * [[.Extra.zf1Root]]
	php_fastcgi unix/[[.Extra.fpmSock]]
}

http://127.0.0.1:[[.Extra.landingPort]] {
	import attack_landing_session
	root * [[.Extra.ci3Root]]
	php_fastcgi unix/[[.Extra.fpmSock]]
}
`

var attackBase = strings.Replace(diffSite, "path_regexp ^/reports/[0-9]+$", "path /reports/*", 1)

// attackCase is one hand-made request. raw, when set, is the whole
// request after the request line's target and Host (for chunked bodies,
// trailers, odd Host headers): "{host}" in target and raw is the site's
// host:port.
type attackCase struct {
	name    string
	route   string // whose rule's denied user sends it
	method  string
	target  string
	headers []string
	raw     string   // the request from the first header line on, "" for the usual
	readers []string // nil: every reader
}

func attackCases() []attackCase {
	cases := []attackCase{
		// Query-string routing.
		{name: "CodeIgniter 3: /index.php?/admin/keys", route: "admin", method: "GET", target: "/index.php?/admin/keys"},
		{name: "CodeIgniter 3: /?/admin/keys", route: "admin", method: "GET", target: "/?/admin/keys"},
		{name: "CodeIgniter 3: /index.php/?/admin/keys", route: "admin", method: "GET", target: "/index.php/?/admin/keys"},
		{name: "CodeIgniter 3: /public/x.css?/admin/keys (public path)", route: "admin", method: "GET", target: "/public/x.css?/admin/keys"},
		{name: "CodeIgniter 3: /?/admin/keys where / is public", route: "admin", method: "GET", target: "/?/admin/keys", readers: []string{"ci3-landing"}},
		{name: "CodeIgniter 3: //?/admin/keys where / is public", route: "admin", method: "GET", target: "//?/admin/keys", readers: []string{"ci3-landing"}},
		{name: "CodeIgniter 3: /index.php?/admin/keys where / is public", route: "admin", method: "GET", target: "/index.php?/admin/keys", readers: []string{"ci3-landing"}},
		// Path-override headers (IIS rewrite modules; Zend Framework 1,
		// Symfony before CVE-2018-14773).
		{name: "X-Original-URL on a public path", route: "admin", method: "GET", target: "/public/x.css", headers: []string{"X-Original-URL: /admin/keys"}},
		{name: "X-Rewrite-URL on a public path", route: "admin", method: "GET", target: "/public/x.css", headers: []string{"X-Rewrite-URL: /admin/keys"}},
		{name: "X_Original_URL (underscores) on a public path", route: "admin", method: "GET", target: "/public/x.css", headers: []string{"X_Original_URL: /admin/keys"}},
		{name: "X-Original-URL on an unprotected path", route: "admin", method: "GET", target: "/index.php", headers: []string{"X-Original-URL: /admin/keys"}},
		// Several split markers, case, and what may follow one.
		{name: "two scripts: /a.php/b.php/admin/keys", route: "admin", method: "GET", target: "/a.php/b.php/admin/keys"},
		{name: "/index.php/x.php/admin/keys", route: "admin", method: "GET", target: "/index.php/x.php/admin/keys"},
		{name: "/index.php/index.php/admin/keys", route: "admin", method: "GET", target: "/index.php/index.php/admin/keys"},
		{name: "/INDEX.PHP/admin/keys", route: "admin", method: "GET", target: "/INDEX.PHP/admin/keys"},
		{name: "/index.PhP/Admin/Keys", route: "admin", method: "GET", target: "/index.PhP/Admin/Keys"},
		{name: "/index.php%00/admin/keys", route: "admin", method: "GET", target: "/index.php%00/admin/keys"},
		{name: "/index.php;/admin/keys", route: "admin", method: "GET", target: "/index.php;/admin/keys"},
		{name: "/index.php;x/admin/keys", route: "admin", method: "GET", target: "/index.php;x/admin/keys"},
		{name: "/index.php%20/admin/keys", route: "admin", method: "GET", target: "/index.php%20/admin/keys"},
		{name: "/index.php./admin/keys", route: "admin", method: "GET", target: "/index.php./admin/keys"},
		{name: "/index.phpadmin/keys (no slash after the marker)", route: "admin", method: "GET", target: "/index.phpadmin/keys"},
		{name: ".php inside a directory name: /x.php.d/admin/keys", route: "admin", method: "GET", target: "/x.php.d/admin/keys"},
		{name: "/admin.php%00.css", route: "admin", method: "GET", target: "/admin.php%00.css"},
		{name: "/admin.php;.css", route: "admin", method: "GET", target: "/admin.php;.css"},
		{name: "/admin.php%20", route: "admin", method: "GET", target: "/admin.php%20"},
		{name: "/admin.php. (trailing dot)", route: "admin", method: "GET", target: "/admin.php."},
		{name: "/admin.php/", route: "admin", method: "GET", target: "/admin.php/"},
		{name: "/admin.php//x.css", route: "admin", method: "GET", target: "/admin.php//x.css"},
		{name: "/admin.php?x.css", route: "admin", method: "GET", target: "/admin.php?x.css"},
		{name: "/Admin.PHP/x.css", route: "admin", method: "GET", target: "/Admin.PHP/x.css"},
		// Fragments, whitespace, control characters.
		{name: "raw # before a public suffix: /admin/keys#.css", route: "admin", method: "GET", target: "/admin/keys#.css"},
		{name: "raw # in a PHP path: /index.php/admin/keys#.css", route: "admin", method: "GET", target: "/index.php/admin/keys#.css"},
		{name: "/admin/keys%23.css", route: "admin", method: "GET", target: "/admin/keys%23.css"},
		{name: "/admin/keys%09", route: "admin", method: "GET", target: "/admin/keys%09"},
		{name: "/admin/keys%20", route: "admin", method: "GET", target: "/admin/keys%20"},
		{name: "/admin/keys. (trailing dot)", route: "admin", method: "GET", target: "/admin/keys."},
		{name: "/admin/keys%00.css", route: "admin", method: "GET", target: "/admin/keys%00.css"},
		{name: "/admin/keys%E2%80%A8 (line separator)", route: "admin", method: "GET", target: "/admin/keys%E2%80%A8"},
		{name: "/admin/keys%C2%A0.css (no-break space)", route: "admin", method: "GET", target: "/admin/keys%C2%A0.css"},
		{name: "overlong UTF-8 a: /%C1%A1dmin/keys", route: "admin", method: "GET", target: "/%C1%A1dmin/keys"},
		{name: "UTF-16 surrogate in UTF-8: /admin/keys%ED%A0%80.css", route: "admin", method: "GET", target: "/admin/keys%ED%A0%80.css"},
		{name: "raw non-UTF-8 byte: /adm\xffin/keys.css", route: "admin", method: "GET", target: "/adm\xffin/keys.css"},
		// Unicode letters.
		{name: "dotted capital I: /adm%C4%B0n/keys", route: "admin", method: "GET", target: "/adm%C4%B0n/keys"},
		{name: "dotted capital I upper: /ADM%C4%B0N/KEYS", route: "admin", method: "GET", target: "/ADM%C4%B0N/KEYS"},
		{name: "dotless i + combining dot: /adm%C4%B1%CC%87n/keys", route: "admin", method: "GET", target: "/adm%C4%B1%CC%87n/keys"},
		{name: "i + combining dot above: /admi%CC%87n/keys", route: "admin", method: "GET", target: "/admi%CC%87n/keys"},
		{name: "Kelvin sign: /admin/%E2%84%AAeys", route: "admin", method: "GET", target: "/admin/%E2%84%AAeys"},
		{name: "long s at the end: /admin/key%C5%BF", route: "admin", method: "GET", target: "/admin/key%C5%BF"},
		{name: "Greek final sigma: /admin/key%CF%82", route: "admin", method: "GET", target: "/admin/key%CF%82"},
		{name: "fi ligature in a public suffix: /admin/keys.%EF%AC%81", route: "admin", method: "GET", target: "/admin/keys.%EF%AC%81"},
		{name: "fullwidth .css: /admin/keys%EF%BC%8Ecss", route: "admin", method: "GET", target: "/admin/keys%EF%BC%8Ecss"},
		{name: "fullwidth .php: /index%EF%BC%8Ephp/admin/keys", route: "admin", method: "GET", target: "/index%EF%BC%8Ephp/admin/keys"},
		{name: "fullwidth .PHP: /index%EF%BC%8E%EF%BC%B0%EF%BC%A8%EF%BC%B0/admin/keys", route: "admin", method: "GET", target: "/index%EF%BC%8E%EF%BC%B0%EF%BC%A8%EF%BC%B0/admin/keys"},
		{name: "fullwidth solidus: /index.php%EF%BC%8Fadmin/keys", route: "admin", method: "GET", target: "/index.php%EF%BC%8Fadmin/keys"},
		{name: "fullwidth semicolon: /admin%EF%BC%9Bx/keys", route: "admin", method: "GET", target: "/admin%EF%BC%9Bx/keys"},
		// Unicode digits.
		{name: "superscript digits: /reports/%C2%B9%C2%B2", route: "reports", method: "GET", target: "/reports/%C2%B9%C2%B2"},
		{name: "Roman numeral twelve: /reports/%E2%85%AB", route: "reports", method: "GET", target: "/reports/%E2%85%AB"},
		{name: "circled digits: /reports/%E2%91%A0%E2%91%A1", route: "reports", method: "GET", target: "/reports/%E2%91%A0%E2%91%A1"},
		{name: "mathematical digits: /reports/%F0%9D%9F%8F%F0%9D%9F%90", route: "reports", method: "GET", target: "/reports/%F0%9D%9F%8F%F0%9D%9F%90"},
		{name: "digit + combining mark: /reports/1%CC%B22", route: "reports", method: "GET", target: "/reports/1%CC%B22"},
		{name: "signed number: /reports/+12", route: "reports", method: "GET", target: "/reports/+12"},
		{name: "underscore in number: /reports/1_2", route: "reports", method: "GET", target: "/reports/1_2"},
		{name: "Arabic-Indic digits via index.php: /index.php/reports/%D9%A1%D9%A2", route: "reports", method: "GET", target: "/index.php/reports/%D9%A1%D9%A2"},
		// Request forms.
		{name: "absolute-form target", route: "admin", method: "GET", target: "http://{host}/admin/keys"},
		{name: "absolute-form target to a public path, other path in Host", route: "admin", method: "GET", target: "http://{host}/public/x.css", raw: "Host: {host}/admin/keys\r\n"},
		{name: "Host header with a path", route: "admin", method: "GET", target: "/public/info", raw: "Host: {host}/admin/keys\r\n"},
		{name: "origin-form starting with //", route: "admin", method: "GET", target: "//{host}/admin/keys"},
		{name: "HTTP/1.0 without Host", route: "admin", method: "GET", target: "/admin/keys", raw: "HTTP/1.0"},
		// Methods and overrides (read: GET is alice's only).
		{name: "override header twice, differing case", route: "read", method: "POST", target: "/read/notes", headers: []string{"x-http-method-override: POST", "X-HTTP-METHOD-OVERRIDE: GET"}},
		{name: "override list DELETE, GET", route: "read", method: "POST", target: "/read/notes", headers: []string{"X-HTTP-Method-Override: DELETE, GET"}},
		{name: "override with tab padding", route: "read", method: "POST", target: "/read/notes", headers: []string{"X-HTTP-Method-Override: \tget\t"}},
		{name: "override by X_HTTP_METHOD_OVERRIDE", route: "read", method: "POST", target: "/read/notes", headers: []string{"X_HTTP_METHOD_OVERRIDE: GET"}},
		{name: "override by X.HTTP.Method.Override", route: "read", method: "POST", target: "/read/notes", headers: []string{"X.HTTP.Method.Override: GET"}},
		{name: "_method=GET in the query, %5F-encoded", route: "read", method: "POST", target: "/read/notes?%5Fmethod=get"},
		{name: "_method[]=GET in the query", route: "read", method: "POST", target: "/read/notes?_method[]=GET"},
		{name: "_method twice in the query", route: "read", method: "POST", target: "/read/notes?_method=POST&_method=GET"},
		{name: "override in a chunked trailer", route: "read", method: "POST", target: "/read/notes",
			raw: "Transfer-Encoding: chunked\r\nTrailer: X-HTTP-Method-Override\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n0\r\nX-HTTP-Method-Override: GET\r\n\r\n"},
		{name: "billing DELETE by chunked body _method", route: "billing", method: "POST", target: "/billing/12",
			raw: "Transfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nE\r\n_method=DELETE\r\n0\r\n\r\n"},
		{name: "method OPTIONS on read", route: "read", method: "OPTIONS", target: "/read/notes"},
		{name: "method gEt", route: "read", method: "gEt", target: "/read/notes"},
		{name: "method hEaD", route: "read", method: "hEaD", target: "/read/notes"},
	}
	return cases
}

// TestAttackReadings sends every attackCase to every reader as an
// anonymous visitor and as the user the route's rule denies.
func TestAttackReadings(t *testing.T) {
	rd := startDiffReaders(t)
	flask, django, sock, goReader, phpRoot := rd.flask, rd.django, rd.fpmSock, rd.goReader, rd.phpRoot
	ci3Root, err := filepath.Abs("testdata/attack_readings/ci3")
	if err != nil {
		t.Fatal(err)
	}
	zf1Root, err := filepath.Abs("testdata/attack_readings/zf1")
	if err != nil {
		t.Fatal(err)
	}
	flaskPort, djangoPort, phpPort, ci3Port, landingPort, zf1Port := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	c := StartCaddy(t, goReader, attackSite,
		WithExtra("alice", aliceHash), WithExtra("bob", bobHash),
		WithExtra("flask", flask), WithExtra("flaskPort", flaskPort),
		WithExtra("django", django), WithExtra("djangoPort", djangoPort),
		WithExtra("phpRoot", phpRoot), WithExtra("fpmSock", sock), WithExtra("phpPort", phpPort),
		WithExtra("ci3Root", ci3Root), WithExtra("ci3Port", ci3Port), WithExtra("landingPort", landingPort),
		WithExtra("zf1Root", zf1Root), WithExtra("zf1Port", zf1Port))
	sites := map[string]string{
		"go":     c.Site,
		"flask":  fmt.Sprintf("http://127.0.0.1:%d", flaskPort),
		"django": fmt.Sprintf("http://127.0.0.1:%d", djangoPort),
		"php":    fmt.Sprintf("http://127.0.0.1:%d", phpPort),
		"ci3":    fmt.Sprintf("http://127.0.0.1:%d", ci3Port),
		"zf1":    fmt.Sprintf("http://127.0.0.1:%d", zf1Port),
		// ci3 again, with "/" public
		"ci3-landing": fmt.Sprintf("http://127.0.0.1:%d", landingPort),
	}
	cookies := loginEverywhere(t, sites)

	// The CodeIgniter reader serves its canonical route for the user the
	// rule admits, and refuses the one it denies (else its findings would
	// prove nothing).
	for _, as := range []string{"dave", "bob"} {
		e := &diffExchange{reader: "ci3", as: as, v: diffVariant{route: "admin", method: "GET", target: "/index.php/admin/keys"}}
		e.send(sites["ci3"], cookies[[2]string{"ci3", as}])
		if ran := e.route == "admin"; ran != (as == "dave") || e.verdict() != "" {
			t.Errorf("ci3: GET /index.php/admin/keys as %s: %d, ran %q; want it run for dave only", as, e.status, e.route)
		}
	}

	// The Zend Framework reader serves its canonical route for the user the
	// rule admits, and refuses the one it denies.
	for _, as := range []string{"dave", "bob"} {
		e := &diffExchange{reader: "zf1", as: as, v: diffVariant{route: "admin", method: "GET", target: "/admin/keys"}}
		e.send(sites["zf1"], cookies[[2]string{"zf1", as}])
		if ran := e.route == "admin"; ran != (as == "dave") || e.verdict() != "" {
			t.Errorf("zf1: GET /admin/keys as %s: %d, ran %q; want it run for dave only", as, e.status, e.route)
		}
	}

	// On the landing site, "/" is public and admin/keys is not.
	for target, want := range map[string]int{"/": 404, "/index.php/admin/keys": 401} {
		if r := rawGet(t, sites["ci3-landing"], target, "Accept: application/json"); r.StatusCode != want {
			t.Errorf("ci3-landing: GET %s anonymously: %d, want %d", target, r.StatusCode, want)
		}
	}

	for _, ac := range attackCases() {
		t.Run(ac.name, func(t *testing.T) { sendAttack(t, ac, sites, cookies) })
	}
}

// sendAttack sends ac to each reader, as an anonymous visitor and as the
// user the route's rule denies, and fails for whatever ran that the
// differential test's table does not admit.
func sendAttack(t *testing.T, ac attackCase, sites map[string]string, cookies map[[2]string]string) {
	for _, reader := range sortedNames(sites) {
		if ac.readers != nil && !contains(ac.readers, reader) {
			continue
		}
		for _, as := range []string{"", routeUsers[ac.route][0]} {
			e := &diffExchange{reader: reader, as: as, v: diffVariant{route: ac.route, method: ac.method, target: ac.target, headers: ac.headers, how: ac.name}}
			cookie := ""
			if as != "" {
				cookie = cookies[[2]string{reader, as}]
			}
			if ac.raw != "" || strings.Contains(ac.target, "{host}") {
				e.sendRaw(sites[reader], cookie, ac)
			} else {
				e.send(sites[reader], cookie)
			}
			who := as
			if who == "" {
				who = "anonymous"
			}
			if v := e.verdict(); v != "" {
				t.Errorf("FINDING %s: %s %s to %s as %s: %d, ran %q as %q on path %q: %s",
					ac.name, ac.method, ac.target, reader, who, e.status, e.route, e.method, e.path, v)
			} else {
				t.Logf("safe: %-60s %-6s as %-9s: %d ran %q", ac.name, reader, who, e.status, e.route)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sendRaw writes ac by hand: its target with {host} filled in, then
// either ac.raw as the header lines (with a Host from it or the site's),
// or, for raw "HTTP/1.0", a request line of that version and no Host.
func (e *diffExchange) sendRaw(site, cookie string, ac attackCase) {
	host := strings.TrimPrefix(site, "http://")
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		e.err = err
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	target := strings.ReplaceAll(ac.target, "{host}", host)
	raw := strings.ReplaceAll(ac.raw, "{host}", host)
	var b strings.Builder
	cookieLine := ""
	if cookie != "" {
		cookieLine = "Cookie: caddy_session=" + cookie + "\r\n"
	}
	switch {
	case raw == "HTTP/1.0":
		fmt.Fprintf(&b, "%s %s HTTP/1.0\r\nAccept: application/json\r\n%s\r\n", ac.method, target, cookieLine)
	case strings.HasPrefix(raw, "Host:"):
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n%sConnection: close\r\nAccept: application/json\r\n%s\r\n", ac.method, target, raw, cookieLine)
	default:
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nAccept: application/json\r\n%s", ac.method, target, host, cookieLine)
		for _, h := range ac.headers {
			b.WriteString(h + "\r\n")
		}
		if raw == "" {
			b.WriteString("\r\n")
		} else {
			b.WriteString(raw)
		}
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		e.err = err
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: ac.method})
	if err != nil {
		e.err = err
		return
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	e.status = resp.StatusCode
	e.route = resp.Header.Get("X-Route")
	e.method = resp.Header.Get("X-Route-Method")
	e.seenUser = resp.Header.Get("X-Route-User")
	e.path = resp.Header.Get("X-Route-Path")
	if p, err := url.PathUnescape(e.path); err == nil {
		e.path = p
	}
}
