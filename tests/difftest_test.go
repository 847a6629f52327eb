package tests

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The differential test: what is judged is what runs (SPEC §10). A real
// Caddy with `session`, `public` and rules as the README writes them sits
// in front of four real readers of requests (Flask/Werkzeug, Django, a PHP
// front controller and scripts behind php_fastcgi, Go's ServeMux); each
// says which route it executed (difftest_readers_test.go). A generated
// corpus of variants of each route's request (difftest_corpus_test.go) goes
// to every reader as an anonymous visitor, as a user the route's rule
// denies and as one it admits. The oracle is this file's own table of who
// may run which route with which method: whenever a reader executed a
// route, the table admits the user for the method the reader ran it as,
// and an anonymous visitor executed only what is public. Refusals (400,
// 401, 403) are always fine.

// diffSite is the Caddyfile: one session block, imported by four sites,
// one per reader.
const diffSite = `
(difftest_session) {
	session {
		store memory
		user alice [[.Extra.alice]]
		user bob [[.Extra.bob]] staff
		user carol [[.Extra.alice]] finance
		user dave [[.Extra.bob]] admin
		public {
			path *.css *.js /public/*
		}
		allow group admin {
			path /admin/* /admin.php
		}
		allow user alice bob group finance {
			path /billing/*
			method POST PUT DELETE
		}
		allow user alice {
			path_regexp ^/reports/[0-9]+$
		}
		allow user alice {
			method GET
			path /read/*
		}
	}
}

[[.Site]] {
	import difftest_session
	reverse_proxy [[.Upstream]]
}

http://127.0.0.1:[[.Extra.flaskPort]] {
	import difftest_session
	reverse_proxy [[.Extra.flask]]
}

http://127.0.0.1:[[.Extra.djangoPort]] {
	import difftest_session
	reverse_proxy [[.Extra.django]]
}

http://127.0.0.1:[[.Extra.phpPort]] {
	import difftest_session
	root * [[.Extra.phpRoot]]
	php_fastcgi unix/[[.Extra.fpmSock]]
	file_server
}
`

// diffUsers are the Caddyfile's users: password and groups.
var diffUsers = map[string]struct {
	password string
	groups   []string
}{
	"alice": {alicePassword, nil},
	"bob":   {bobPassword, []string{"staff"}},
	"carol": {alicePassword, []string{"finance"}},
	"dave":  {bobPassword, []string{"admin"}},
}

// diffAccess is the test's own reading of one rule: who may run a route, for
// which methods. Methods the rule does not name are for anyone logged in.
type diffAccess struct {
	public  bool
	methods []string // nil: every method
	users   []string
	groups  []string
}

// routeAccess is the oracle's table, route by route, as the Caddyfile's
// rules mean it.
var routeAccess = map[string]diffAccess{
	"admin":   {groups: []string{"admin"}},
	"billing": {methods: []string{"POST", "PUT", "DELETE"}, users: []string{"alice", "bob"}, groups: []string{"finance"}},
	"reports": {users: []string{"alice"}},
	"read":    {methods: []string{"GET"}, users: []string{"alice"}},
	"public":  {public: true},
}

// routeUsers: for each route, a user its rule denies and one it admits.
var routeUsers = map[string][2]string{
	"admin":   {"bob", "dave"},
	"billing": {"dave", "carol"},
	"reports": {"bob", "alice"},
	"read":    {"bob", "alice"},
	"public":  {"bob", "dave"},
}

// ranAs is the method a handler ran as: upper case, and HEAD as GET (a
// GET handler serves it).
func ranAs(method string) string {
	m := strings.ToUpper(method)
	if m == "HEAD" {
		return "GET"
	}
	return m
}

// diffAdmits reports whether the table lets user ("" for anonymous) run route
// as method.
func diffAdmits(route, user, method string) bool {
	a, ok := routeAccess[route]
	switch {
	case !ok:
		return false // a route the table does not know: nobody was meant to run it
	case a.public:
		return true
	case user == "":
		return false
	case a.methods != nil && !slices.Contains(a.methods, ranAs(method)):
		return true
	case slices.Contains(a.users, user):
		return true
	}
	for _, g := range diffUsers[user].groups {
		if slices.Contains(a.groups, g) {
			return true
		}
	}
	return false
}

// configPublic reports whether the Caddyfile's public block names path as
// the reader read it: the config made it public, so whatever a reader
// runs for it is for anyone (Go's /admin/ subtree serves /admin/x.css).
func configPublic(path string) bool {
	p := strings.ToLower(path)
	return strings.HasSuffix(p, ".css") || strings.HasSuffix(p, ".js") || strings.HasPrefix(p, "/public/")
}

// diffExchange is one variant sent to one reader as one user, and what came
// back.
type diffExchange struct {
	reader, as string // as: "" for anonymous
	v          diffVariant
	status     int
	route      string // X-Route: "" if nothing ran
	method     string // X-Route-Method
	path       string // X-Route-Path, decoded
	seenUser   string // X-Route-User
	err        error
}

// verdict is why an exchange breaks the contract, or "".
func (e *diffExchange) verdict() string {
	switch {
	case e.err != nil:
		return "no answer: " + e.err.Error()
	case e.status >= 500:
		return fmt.Sprintf("answered %d", e.status)
	case e.route == "":
		return ""
	case e.seenUser != e.as:
		return fmt.Sprintf("the reader was told the user is %q", e.seenUser)
	case diffAdmits(e.route, e.as, e.method) || configPublic(e.path):
		return ""
	case e.as == "":
		return "an anonymous visitor ran a route that is not public"
	}
	return "the rule does not admit this user for this method"
}

// TestWhatIsJudgedIsWhatRuns is the differential test (see the top of this
// file). It fails with a table of the variants that ran what the rules
// deny, and a count by transform.
func TestWhatIsJudgedIsWhatRuns(t *testing.T) {
	rd := startDiffReaders(t)
	flask, django, sock, goReader, phpRoot := rd.flask, rd.django, rd.fpmSock, rd.goReader, rd.phpRoot
	flaskPort, djangoPort, phpPort := freePort(t), freePort(t), freePort(t)
	c := StartCaddy(t, goReader, diffSite,
		WithExtra("alice", aliceHash), WithExtra("bob", bobHash),
		WithExtra("flask", flask), WithExtra("flaskPort", flaskPort),
		WithExtra("django", django), WithExtra("djangoPort", djangoPort),
		WithExtra("phpRoot", phpRoot), WithExtra("fpmSock", sock), WithExtra("phpPort", phpPort))
	sites := map[string]string{
		"go":     c.Site,
		"flask":  fmt.Sprintf("http://127.0.0.1:%d", flaskPort),
		"django": fmt.Sprintf("http://127.0.0.1:%d", djangoPort),
		"php":    fmt.Sprintf("http://127.0.0.1:%d", phpPort),
	}

	// Each user logs in at each site through the login endpoint.
	cookies := loginEverywhere(t, sites) // reader, user -> session cookie

	var all []*diffExchange
	for _, reader := range sortedNames(sites) {
		for _, v := range diffCorpus(reader == "php") {
			users := routeUsers[v.route]
			for _, as := range []string{"", users[0], users[1]} {
				all = append(all, &diffExchange{reader: reader, as: as, v: v})
			}
		}
	}
	start := time.Now()
	diffSendAll(sites, cookies, all)
	t.Logf("%d variants over the 4 readers, each as 3 users: %d requests in %v", len(all)/3, len(all), time.Since(start).Round(time.Millisecond))

	// The readers report what they run: every canonical request runs for
	// the user its rule admits (else this test would prove nothing), and
	// only for those the table admits.
	ran, controls := map[string]int{}, map[string]int{}
	for _, e := range all {
		if e.route != "" {
			ran[e.reader]++
		}
		if e.v.how != "" {
			continue
		}
		// On the canonical requests the table and the Caddyfile agree:
		// what the table admits runs, what it does not is refused.
		want := diffAdmits(e.v.route, e.as, e.v.method)
		if (e.route != "") != want || want && (e.route != e.v.route || ranAs(e.method) != ranAs(e.v.method)) {
			t.Errorf("%s: %s %s as %q: %d, ran %q as %q; the table says it may run: %v", e.reader, e.v.method, e.v.target, e.as, e.status, e.route, e.method, want)
		}
		if e.as == routeUsers[e.v.route][1] {
			controls[e.reader]++
		}
	}
	for reader := range sites {
		if want := len(diffCanonicals(reader == "php")); controls[reader] != want {
			t.Errorf("%s: %d canonical requests sent as the admitted user, want %d", reader, controls[reader], want)
		}
	}
	t.Logf("requests that ran a route, by reader: %v", ran)
	// Caddy's file_server answers the PHP site's static files for anyone.
	if r := rawGet(t, sites["php"], "/style.css"); r.StatusCode != 200 || !strings.Contains(string(r.Body), "color") {
		t.Errorf("the PHP site's style.css: %d %s", r.StatusCode, r.Body)
	}

	var bad []*diffExchange
	for _, e := range all {
		if e.verdict() != "" {
			bad = append(bad, e)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d requests ran what the rules deny (or got no proper answer):\n%s", len(bad), len(all), diffReport(bad))
	}
}
