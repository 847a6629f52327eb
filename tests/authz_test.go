package tests

import (
	"strings"
	"testing"
	"time"
)

// TestGroupsForwarded: a logged-in user's groups go to the upstream as
// X-Session-Groups, sorted and comma-space separated, and as
// {http.session.groups}; a client's copy never does; a change in the
// users file applies to live sessions at once.
func TestGroupsForwarded(t *testing.T) {
	up := StartUpstream(t)
	path := t.TempDir() + "/users"
	writeFile(t, path, "carol:"+aliceHash+":staff,ops,admin\n")
	const tmpl = `
[[.Site]] {
	session {
		store memory
		user alice [[.Extra.alice]] zeta alpha
		user bob [[.Extra.bob]]
		users_file [[.Extra.users]]
	}
	request_header X-Groups-Placeholder "<{http.session.groups}>"
	reverse_proxy [[.Upstream]]
}
`
	c := StartCaddy(t, up.Addr, tmpl, WithExtra("alice", aliceHash), WithExtra("bob", bobHash), WithExtra("users", path))
	forged := []string{"X-Session-Groups: admin", "X_Session_Groups: admin"}
	get := func(cl *Client) Echo {
		t.Helper()
		return cl.Get("/private", forged...).Echo(t)
	}
	want := func(e Echo, groups string) {
		t.Helper()
		got := e.Headers["X-Session-Groups"]
		if groups == "" {
			if len(got) != 0 {
				t.Errorf("X-Session-Groups = %q, want none", got)
			}
		} else if len(got) != 1 || got[0] != groups {
			t.Errorf("X-Session-Groups = %q, want %q", got, groups)
		}
		if p := e.Headers["X-Groups-Placeholder"]; len(p) != 1 || p[0] != "<"+groups+">" {
			t.Errorf("{http.session.groups} = %q, want %q", p, "<"+groups+">")
		}
		for name := range e.Headers {
			if name == "X_session_groups" {
				t.Errorf("the client's %s reached the upstream", name)
			}
		}
	}

	anon := NewClient(t, c.Site)
	if r := anon.Get("/private", append(forged, "Accept: application/json")...); r.StatusCode != 401 {
		t.Fatalf("anonymous: %d", r.StatusCode)
	}
	alice := NewClient(t, c.Site)
	alice.MustLogin("alice", alicePassword)
	want(get(alice), "alpha, zeta")
	bob := NewClient(t, c.Site)
	bob.MustLogin("bob", bobPassword)
	want(get(bob), "")
	carol := NewClient(t, c.Site)
	carol.MustLogin("carol", alicePassword)
	want(get(carol), "admin, ops, staff")

	// Carol leaves admin: her live session shows it without a new login.
	time.Sleep(10 * time.Millisecond) // a different modification time
	writeFile(t, path, "carol:"+aliceHash+":ops\n")
	waitFor(t, 10*time.Second, "carol's new groups", func() bool {
		g := get(carol).Headers["X-Session-Groups"]
		return len(g) == 1 && g[0] == "ops"
	})
}

// rulesTemplate: admins reach /admin/*; alice and bob may POST to
// /billing/*; staff and admins reach /reports/*; /admin/help is public;
// everything else is for anyone logged in. alice is an admin, bob is
// staff, carol is in no group.
const rulesTemplate = `
[[.Site]] {
	session {
		store memory
		user alice [[.Extra.alice]] admin
		user bob [[.Extra.bob]] staff
		user carol [[.Extra.alice]]
		public {
			path /public/* /admin/help
		}
		allow group admin {
			path /admin/*
		}
		allow user alice bob {
			path /billing/*
			method POST
		}
		allow group staff admin {
			path /reports/*
		}
	}
	reverse_proxy [[.Upstream]]
}
`

func startRulesSite(t *testing.T) (*Caddy, *Upstream, map[string]*Client) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, rulesTemplate, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	clients := map[string]*Client{"anonymous": NewClient(t, c.Site)}
	for user, pw := range map[string]string{"alice": alicePassword, "bob": bobPassword, "carol": alicePassword} {
		clients[user] = NewClient(t, c.Site)
		clients[user].MustLogin(user, pw)
	}
	return c, up, clients
}

// TestRulesDecideWhoReachesWhat: the first rule that matches decides; a
// user it does not name gets 403 (a page for a browser, JSON otherwise)
// and nothing reaches the upstream; what no rule matches is for anyone
// logged in; public stays public; anonymous requests are sent to log in.
func TestRulesDecideWhoReachesWhat(t *testing.T) {
	c, up, clients := startRulesSite(t)
	asJSON := []string{"Accept: application/json"}
	for _, tt := range []struct {
		user, method, path string
		want               int
	}{
		{"alice", "GET", "/admin/x", 200},
		{"bob", "GET", "/admin/x", 403},
		{"carol", "GET", "/admin/x", 403},
		{"anonymous", "GET", "/admin/x", 401},
		{"alice", "POST", "/billing/1", 200},
		{"bob", "POST", "/billing/1", 200},
		{"carol", "POST", "/billing/1", 403},
		{"carol", "GET", "/billing/1", 200}, // the rule is for POST only
		{"bob", "GET", "/reports/q1", 200},
		{"alice", "GET", "/reports/q1", 200},
		{"carol", "GET", "/reports/q1", 403},
		{"carol", "GET", "/elsewhere", 200},
		{"anonymous", "GET", "/elsewhere", 401},
		{"carol", "GET", "/admin/help", 200}, // public
		{"anonymous", "GET", "/admin/help", 200},
		{"carol", "GET", "/public/x", 200},
	} {
		cl := clients[tt.user]
		before := up.Requests.Load()
		r := cl.Do(cl.NewRequest(tt.method, tt.path, nil, asJSON...))
		if r.StatusCode != tt.want {
			t.Errorf("%s %s %s: %d %s, want %d", tt.user, tt.method, tt.path, r.StatusCode, r.Body, tt.want)
			continue
		}
		reached := up.Requests.Load() != before
		if reached != (tt.want == 200) {
			t.Errorf("%s %s %s: reached the upstream: %v", tt.user, tt.method, tt.path, reached)
		}
		if tt.want == 403 {
			if got := r.JSON(t)["error"]; got != "forbidden" || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s %s: %q %s, want {\"error\":\"forbidden\"}", tt.user, tt.method, tt.path, r.Header.Get("Content-Type"), r.Body)
			}
		}
		if tt.want == 200 && tt.user != "anonymous" && r.Echo(t).Headers["X-Session-User"][0] != tt.user {
			t.Errorf("%s %s %s: the upstream got another user", tt.user, tt.method, tt.path)
		}
	}

	// A browser navigating gets the page, in the login page's style, and
	// anonymous browsers the login page.
	r := clients["bob"].Get("/admin/x?y=1", "Accept: text/html")
	body := string(r.Body)
	if r.StatusCode != 403 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "Access denied") || !strings.Contains(body, "<strong>bob</strong>") ||
		!strings.Contains(body, `value="/.session/login?redirect=%2Fadmin%2Fx%3Fy%3D1"`) {
		t.Errorf("bob's browser on /admin/x: %d %q %s", r.StatusCode, r.Header.Get("Content-Type"), body)
	}
	csp := r.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'nonce-") || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the 403 page's headers: CSP %q, Cache-Control %q", csp, r.Header.Get("Cache-Control"))
	}
	if nonce := strings.TrimSuffix(strings.SplitN(strings.SplitN(csp, "'nonce-", 2)[1], "'", 2)[0], "'"); !strings.Contains(body, `<style nonce="`+nonce+`">`) {
		t.Errorf("the page's style does not carry the CSP's nonce %q", nonce)
	}
	if r := clients["anonymous"].Get("/admin/x", "Accept: text/html"); r.StatusCode != 302 || !strings.HasPrefix(r.Header.Get("Location"), "/.session/login?redirect=") {
		t.Errorf("an anonymous browser on /admin/x: %d %q", r.StatusCode, r.Header.Get("Location"))
	}

	// Each refusal is logged at info with the user, the rule and the path.
	waitFor(t, 5*time.Second, "the refusal in the log", func() bool {
		for line := range strings.SplitSeq(c.Logs(), "\n") {
			if strings.Contains(line, `"msg":"forbidden"`) && strings.Contains(line, `"level":"info"`) &&
				strings.Contains(line, `"user":"carol"`) && strings.Contains(line, `"rule":"#2 allow user alice bob"`) &&
				strings.Contains(line, `"path":"/billing/1"`) {
				return true
			}
		}
		return false
	})
}

// TestRulesJudgeThePathTheUpstreamReceives: no spelling of a ruled path
// gets a user past the rule: dot segments and encoded slashes (refused
// unless every rule lets the user in), case, doubled and trailing
// slashes, ";params". A user every rule lets in still reaches the
// upstream with them.
func TestRulesJudgeThePathTheUpstreamReceives(t *testing.T) {
	c, up, clients := startRulesSite(t)
	tricks := []string{
		"/admin/x/../../public", "/admin/..%2fpublic", "/admin/..%2Fpublic", "/admin/%2e%2e/public",
		"/admin/.%2e/public", "/admin;x/../public", "/admin/..;/public", "/admin/..\\public", "/admin/..%5cpublic",
		"/admin/%252e%252e/public", "/public/../admin/x", "/admin%2fx",
		"/ADMIN/", "/Admin", "/ADMIN/x", "/admin", "/admin/", "//admin/", "//admin//x", "/admin;x", "/admin;x/y",
		"/admin;jsessionid=1", "/%61dmin/x", "/Admin;x/", "/REPORTS", "/reports;x",
	}
	for _, user := range []string{"bob", "carol"} {
		cookie := "Cookie: caddy_session=" + clients[user].SessionCookie()
		for _, path := range tricks {
			if user == "bob" && strings.Contains(strings.ToLower(path), "reports") {
				continue // bob is staff
			}
			before := up.Requests.Load()
			r := rawGet(t, c.Site, path, cookie, "Accept: application/json")
			if r.StatusCode != 403 && r.StatusCode != 400 {
				t.Errorf("%s GET %s: %d %s; want 403 or 400", user, path, r.StatusCode, r.Body)
			}
			if up.Requests.Load() != before {
				t.Errorf("%s GET %s reached the upstream", user, path)
			}
		}
	}
	// alice passes every rule: her odd paths go on, the upstream decides.
	cookie := "Cookie: caddy_session=" + clients["alice"].SessionCookie()
	for _, path := range []string{"/admin/x/../../public", "/admin/..%2fpublic", "/ADMIN/", "/admin;x/y"} {
		if r := rawGet(t, c.Site, path, cookie); r.StatusCode != 200 {
			t.Errorf("alice GET %s: %d %s", path, r.StatusCode, r.Body)
		}
	}
	// Plain paths outside the rules are untouched, for anyone logged in.
	cookie = "Cookie: caddy_session=" + clients["carol"].SessionCookie()
	for _, path := range []string{"/administrator", "/public/x", "/x;y", "/a%20b", "/Elsewhere/"} {
		if r := rawGet(t, c.Site, path, cookie); r.StatusCode != 200 {
			t.Errorf("carol GET %s: %d %s", path, r.StatusCode, r.Body)
		}
	}
}

// TestMatcherInHandleBlocks: the session matcher routes by user, group
// and session data in handle, route, respond, error and reverse_proxy,
// after the session handler and without reading the cookie itself.
func TestMatcherInHandleBlocks(t *testing.T) {
	up := StartUpstream(t)
	const tmpl = `
[[.Site]] {
	session {
		store memory
		user alice [[.Extra.alice]] admin
		user bob [[.Extra.bob]] staff
		user carol [[.Extra.alice]]
		upstream_control on
		public {
			path /public/*
		}
	}
	@admins session group admin
	@bob session user bob
	@mfa session data mfa ok
	@staffWithMFA session {
		group staff
		data mfa ok
	}
	@anyone session
	@stranger not session
	handle /set {
		reverse_proxy [[.Upstream]]
	}
	handle /admin/* {
		handle @admins {
			respond "welcome, admin" 200
		}
		handle {
			respond "admins only" 403
		}
	}
	handle /area {
		respond @admins "admin area" 200
		respond @bob "bob's area" 200
		respond "someone else's area" 200
	}
	route /mfa {
		respond @staffWithMFA "staff with mfa" 200
		respond @mfa "mfa" 200
		error @anyone "needs mfa" 403
	}
	handle /public/* {
		respond @stranger "hello, stranger" 200
		respond @anyone "hello, {http.session.user}" 200
	}
	route /proxy {
		reverse_proxy @admins [[.Upstream]]
		respond "not for you" 404
	}
	handle_errors {
		respond "{err.status_code} {err.message}"
	}
}
`
	c := StartCaddy(t, up.Addr, tmpl, WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	clients := map[string]*Client{"anonymous": NewClient(t, c.Site)}
	for user, pw := range map[string]string{"alice": alicePassword, "bob": bobPassword, "carol": alicePassword} {
		clients[user] = NewClient(t, c.Site)
		clients[user].MustLogin(user, pw)
	}
	check := func(user, path string, wantStatus int, wantBody string) {
		t.Helper()
		r := clients[user].Get(path, "Accept: application/json")
		if r.StatusCode != wantStatus || (wantBody != "" && string(r.Body) != wantBody) {
			t.Errorf("%s GET %s: %d %q, want %d %q", user, path, r.StatusCode, r.Body, wantStatus, wantBody)
		}
	}
	check("alice", "/admin/x", 200, "welcome, admin")
	check("bob", "/admin/x", 403, "admins only")
	check("anonymous", "/admin/x", 401, "")
	check("alice", "/area", 200, "admin area")
	check("bob", "/area", 200, "bob's area")
	check("carol", "/area", 200, "someone else's area")
	check("anonymous", "/area", 401, "")
	check("anonymous", "/public/x", 200, "hello, stranger")
	check("carol", "/public/x", 200, "hello, carol")
	// A forged session cookie of the right name is no session.
	if r := rawGet(t, c.Site, "/public/x", "Cookie: caddy_session=forged"); string(r.Body) != "hello, stranger" {
		t.Errorf("a forged cookie: %d %q", r.StatusCode, r.Body)
	}

	check("bob", "/mfa", 403, "403 needs mfa")
	check("carol", "/mfa", 403, "403 needs mfa")
	for _, user := range []string{"bob", "carol"} {
		clients[user].Get("/set?h=X-Session-Set-Mfa:ok").Echo(t)
	}
	check("bob", "/mfa", 200, "staff with mfa")
	check("carol", "/mfa", 200, "mfa")
	check("alice", "/mfa", 403, "403 needs mfa")

	before := up.Requests.Load()
	if e := clients["alice"].Get("/proxy").Echo(t); e.Headers["X-Session-Groups"][0] != "admin" {
		t.Errorf("alice through reverse_proxy @admins: %v", e.Headers)
	}
	check("bob", "/proxy", 404, "not for you")
	if n := up.Requests.Load() - before; n != 1 {
		t.Errorf("%d requests reached the upstream through reverse_proxy @admins, want alice's 1", n)
	}
}
