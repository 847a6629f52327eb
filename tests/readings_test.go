package tests

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// readingsTemplate: assets are public; admins reach /admin/* and
// /secret*; alice and bob may POST, PUT and DELETE under /billing/*;
// staff reach numbered reports; only alice may GET /read/*. alice is an
// admin and staff, bob has no group, carol has no group.
const readingsTemplate = `
[[.Site]] {
	session {
		store memory
		user alice [[.Extra.alice]] admin staff
		user bob [[.Extra.bob]]
		user carol [[.Extra.alice]]
		public {
			path *.css *.js *.png /static/*
		}
		allow group admin {
			path /admin/* /secret*
		}
		allow user alice bob {
			path /billing/*
			method POST PUT DELETE
		}
		allow group staff {
			path_regexp ^/reports/[0-9]+$
		}
		allow user alice {
			path /read/*
			method GET
		}
	}
	reverse_proxy [[.Upstream]]
}
`

type readingsSite struct {
	t       *testing.T
	c       *Caddy
	up      *Upstream
	cookies map[string]string // user: "Cookie: ..." ("" for anonymous)
}

func startReadingsSite(t *testing.T) *readingsSite {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, readingsTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	s := &readingsSite{t: t, c: c, up: up, cookies: map[string]string{"anonymous": ""}}
	for user, pw := range map[string]string{"alice": alicePassword, "bob": bobPassword, "carol": alicePassword} {
		cl := NewClient(t, c.Site)
		cl.MustLogin(user, pw)
		s.cookies[user] = "Cookie: caddy_session=" + cl.SessionCookie()
	}
	return s
}

// send sends method and target exactly as given, as user, with extra
// header lines, and returns the status and whether the upstream got it.
func (s *readingsSite) send(user, method, target string, headers ...string) (int, bool) {
	s.t.Helper()
	req := method + " " + target + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(s.c.Site, "http://") +
		"\r\nConnection: close\r\nAccept: application/json\r\nContent-Length: 0\r\n"
	if s.cookies[user] != "" {
		req += s.cookies[user] + "\r\n"
	}
	for _, h := range headers {
		req += h + "\r\n"
	}
	before := s.up.Requests.Load()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.c.Site, "http://"), 5*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		s.t.Fatal(err)
	}
	// The method tells ReadResponse whether a body follows (not for HEAD).
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: strings.ToUpper(method)})
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, target, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		s.t.Errorf("%s %s: %d", method, target, resp.StatusCode)
	}
	return resp.StatusCode, s.up.Requests.Load() != before
}

// expect checks that each request of user gets want and reaches the
// upstream exactly when want is 200.
func (s *readingsSite) expect(user string, want int, requests ...string) {
	s.t.Helper()
	for _, req := range requests {
		parts := strings.Split(req, " | ")
		method, target, _ := strings.Cut(parts[0], " ")
		got, reached := s.send(user, method, target, parts[1:]...)
		if got != want {
			s.t.Errorf("%s %s: %d, want %d", user, req, got, want)
		}
		if reached != (want == 200) {
			s.t.Errorf("%s %s: reached the upstream: %v", user, req, reached)
		}
	}
}

// TestMethodCaseIsJudged (issue 17, item 1): Werkzeug, Django, Symfony
// and Laravel upper-case the method, so a rule for POST PUT DELETE judges
// "post", "delete" and "Delete" too.
func TestMethodCaseIsJudged(t *testing.T) {
	s := startReadingsSite(t)
	s.expect("carol", 403, "post /billing/transfer", "delete /billing/transfer", "Delete /billing/transfer", "pUT /billing/transfer")
	s.expect("carol", 200, "GET /billing/transfer")
	// A GET not spelled GET is POST to Caddy's own php_fastcgi (its client
	// sends every method it does not know by spelling as POST), so it is
	// judged as POST too.
	s.expect("carol", 403, "get /billing/transfer")
	s.expect("bob", 200, "post /billing/transfer", "Delete /billing/transfer")
	s.expect("anonymous", 401, "post /billing/transfer")
}

// TestPublicIsJudgedInEveryReading (item 2): `public { path *.css ... }`
// does not let an anonymous visitor run a PHP script through its
// PATH_INFO, reach a front controller's route, or reach a path whose
// ";params" an upstream cuts; what is an asset stays public.
func TestPublicIsJudgedInEveryReading(t *testing.T) {
	s := startReadingsSite(t)
	s.expect("anonymous", 401,
		"GET /admin.php/x.css", "GET /index.php/admin/users.png", "GET /Admin.PHP/x.js", "GET /admin.php.css",
		"GET /admin;.css", "GET /admin;x.js", "GET /admin/users;v=1.png",
		"GET /index.php/static/app.css",
	)
	s.expect("anonymous", 200, "GET /static/app.css", "GET /css/site.css", "GET /static/", "GET /img/Logo.PNG", "GET /static/a;v=2.css",
		"GET /static/x.php/y.css", "GET /private;/x.css")
}

// TestRulesJudgeThePathInfo (item 3): a rule on /admin/* judges the route
// a PHP front controller takes from PATH_INFO, and the script it runs.
func TestRulesJudgeThePathInfo(t *testing.T) {
	s := startReadingsSite(t)
	s.expect("carol", 403, "GET /index.php/admin/users", "GET /app/index.php/admin/users", "GET /INDEX.PHP/Admin/users",
		"GET /index.php//admin;x/users", "GET /index.php/secret", "POST /index.php/billing/transfer")
	s.expect("carol", 200, "GET /index.php/welcome", "GET /index.php", "GET /administrator.txt", "GET /admin.php/x")
	s.expect("alice", 200, "GET /index.php/admin/users", "POST /index.php/billing/transfer")
}

// TestMethodOverrideAndHeadAreJudged (item 7): the overriding method of
// X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override (in any
// spelling Caddy lets through) and a "_method" query parameter is judged, and HEAD is
// judged as GET; an override is not removed, so an allowed user's app
// still sees it.
func TestMethodOverrideAndHeadAreJudged(t *testing.T) {
	s := startReadingsSite(t)
	s.expect("carol", 403,
		"GET /billing/transfer | X-HTTP-Method-Override: DELETE",
		"POST /billing/transfer | X-HTTP-Method-Override: DELETE",
		"GET /billing/transfer | X-HTTP-Method: put",
		"GET /billing/transfer | X-Method-Override: Delete",
		"GET /billing/transfer | x-http-method-override: GET, DELETE",
		"GET /billing/transfer?_method=DELETE",
		"GET /billing/transfer?a=1&%5Fmethod=put",
		"HEAD /read/x",
		"head /read/x",
		"POST /read/x | X-HTTP-Method-Override: HEAD",
	)
	s.expect("carol", 200,
		"GET /billing/transfer | X-HTTP-Method-Override: GET",
		"GET /billing/transfer?method=DELETE",
	)
	s.expect("alice", 200, "HEAD /read/x", "GET /billing/transfer | X-HTTP-Method-Override: DELETE")
	cl := NewClient(t, s.c.Site)
	cl.MustLogin("bob", bobPassword)
	e := cl.Get("/billing/transfer", "X-HTTP-Method-Override: DELETE").Echo(t)
	if got := e.Headers["X-Http-Method-Override"]; len(got) != 1 || got[0] != "DELETE" {
		t.Errorf("the override bob's request carried reached the upstream as %q", got)
	}
}

// TestUnicodePathsAreJudged (item 8): non-ASCII that upstreams fold is
// judged as they fold it: Unicode digits for Werkzeug's <int:>, dotless
// ı and long ſ for case-folding upstreams, fullwidth letters and digits;
// non-ASCII that folds into a dot segment is refused.
func TestUnicodePathsAreJudged(t *testing.T) {
	s := startReadingsSite(t)
	s.expect("carol", 403,
		"GET /reports/%D9%A1%D9%A2",       // Arabic-Indic 12
		"GET /reports/%EF%BC%91%EF%BC%92", // fullwidth 12
		"GET /reports/%E0%A5%A7%E0%A5%A8", // Devanagari 12
		"GET /adm%C4%B1n/x",               // dotless ı
		"GET /%C5%BFecret",                // long ſ
		"GET /%EF%BD%81dmin/x",            // fullwidth a
		"GET /%EF%BC%A1%EF%BC%A4MIN/x",    // fullwidth A D
		"GET /index.php/adm%C4%B1n/users", // and through PATH_INFO
	)
	s.expect("carol", 400, "GET /admin/%E2%80%A5/public", "GET /x/%EF%BC%8E%EF%BC%8E/admin/x")
	s.expect("anonymous", 401, "GET /adm%C4%B1n;.css", "GET /%EF%BD%81dmin.php/x.css")
	s.expect("carol", 200, "GET /wiki/M%C3%BCller", "GET /reports/q%C3%BC", "GET /%E6%97%A5%E6%9C%AC")
	s.expect("alice", 200, "GET /reports/%D9%A1%D9%A2", "GET /adm%C4%B1n/x", "GET /admin/%E2%80%A5/public")
}
