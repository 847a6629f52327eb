package tests

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// mountWalkTemplate is one app under handle_path /app/*, with everything
// that makes the handler emit a URL: pages, forms, rules (the 403 page),
// an OIDC provider that logs out at the provider too, the assertion.
const mountWalkTemplate = `
[[.Site]] {
	handle_path /app/* {
		session {
			store memory
			secret 0123456789abcdef0123456789abcdef
			title "Acme Wiki"
			user alice [[.Extra.alice]] admin
			user bob [[.Extra.bob]]
			allow group admin {
				path /admin/*
			}
			assertion
			oidc test {
				issuer [[.Extra.issuer]]
				client_id edge
				client_secret [[.Extra.secret]]
				provider_logout on
			}
		}
		reverse_proxy [[.Upstream]]
	}
	handle {
		respond "not the app" 404
	}
}
`

// htmlForm is a form of a page: where it posts, and its fields.
type htmlForm struct {
	Action string
	Fields url.Values
}

// parsePage reads the forms and the links of an HTML page.
func parsePage(t testing.TB, body []byte) (forms []htmlForm, links []string) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the page: %v", err)
	}
	attr := func(n *html.Node, name string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == name {
				return a.Val, true
			}
		}
		return "", false
	}
	var walk func(n *html.Node, form *htmlForm)
	walk = func(n *html.Node, form *htmlForm) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				action, ok := attr(n, "action")
				if !ok {
					t.Errorf("a form without an action posts to the page's own URL, which is fine, but the handler always gives one")
				}
				forms = append(forms, htmlForm{Action: action, Fields: url.Values{}})
				form = &forms[len(forms)-1]
			case "input", "button":
				name, _ := attr(n, "name")
				value, _ := attr(n, "value")
				if form != nil && name != "" {
					form.Fields.Add(name, value)
				}
			case "a", "link":
				if href, ok := attr(n, "href"); ok {
					links = append(links, href)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, form)
			if form != nil && n.Type == html.ElementNode && n.Data == "form" {
				// forms[len-1] may have moved: keep the pointer fresh.
				form = &forms[len(forms)-1]
			}
		}
	}
	walk(doc, nil)
	return forms, links
}

// mountChecker checks every URL that the handler emits for a site mounted
// at mount: local ones must be under it; absolute ones to the site too;
// the URLs of the site that a provider is given (redirect_uri,
// post_logout_redirect_uri) too.
type mountChecker struct {
	t     *testing.T
	site  string // scheme and host
	mount string // "/app"
	seen  map[string]bool
}

func (m *mountChecker) url(where, raw string) {
	m.t.Helper()
	m.seen[raw] = true
	u, err := url.Parse(raw)
	if err != nil {
		m.t.Errorf("%s: %q is not a URL: %v", where, raw, err)
		return
	}
	if u.Host == "" && u.Scheme == "" {
		if !strings.HasPrefix(raw, m.mount+"/") {
			m.t.Errorf("%s: %q is not under %s/", where, raw, m.mount)
		}
	} else if strings.HasPrefix(raw, m.site+"/") {
		if !strings.HasPrefix(raw, m.site+m.mount+"/") {
			m.t.Errorf("%s: %q is not under %s%s/", where, raw, m.site, m.mount)
		}
	} else {
		// Another site (the provider): the URLs of ours that it is given.
		for _, p := range []string{"redirect_uri", "post_logout_redirect_uri"} {
			if v := u.Query().Get(p); v != "" {
				m.url(where+" "+p, v)
			}
		}
	}
	if v := u.Query().Get("redirect"); v != "" && u.Host == "" {
		m.url(where+" redirect", v)
	}
}

// response checks every URL in r: Location, the paths of cookies the
// handler scopes to its endpoints, and an HTML page's form actions, links
// and redirect fields. It returns the page's forms.
func (m *mountChecker) response(r *Response) []htmlForm {
	m.t.Helper()
	where := r.Request.Method + " " + r.Request.URL.RequestURI()
	if loc := r.Header.Get("Location"); loc != "" {
		m.url(where+" Location", loc)
	}
	for _, line := range r.Header["Set-Cookie"] {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			m.t.Errorf("%s: Set-Cookie %q: %v", where, line, err)
			continue
		}
		if c.Path != "/" { // "/" is the session cookie's configured path
			m.url(where+" cookie "+c.Name+" path", c.Path)
		}
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		return nil
	}
	forms, links := parsePage(m.t, r.Body)
	for _, f := range forms {
		m.url(where+" form action", f.Action)
		for _, v := range f.Fields["redirect"] {
			m.url(where+" form redirect field", v)
		}
	}
	for _, l := range links {
		m.url(where+" link", l)
	}
	return forms
}

// formWith returns the form of forms whose fields include name=value.
func formWith(t *testing.T, forms []htmlForm, name, value string) htmlForm {
	t.Helper()
	for _, f := range forms {
		if f.Fields.Get(name) == value {
			return f
		}
	}
	t.Fatalf("no form with %s=%s in %+v", name, value, forms)
	return htmlForm{}
}

// TestMountWalk: under handle_path /app/*, every URL the handler emits (on
// its login, logout, sessions, 403, message and OIDC pages, in its
// redirects, cookies and provider requests, and the assertion's iss)
// keeps /app in front, and the forms found on the pages work there:
// "sign out everywhere else" really signs the other session out.
func TestMountWalk(t *testing.T) {
	port := freePort(t)
	site := "http://127.0.0.1:" + strconv.Itoa(port)
	o := StartOP(t, 0, site+"/app")
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, mountWalkTemplate, WithSitePort(port), WithExtra("issuer", o.Issuer), WithExtra("secret", opSecret),
		WithExtra("alice", aliceHash), WithExtra("bob", bobHash))
	m := &mountChecker{t: t, site: site, mount: "/app", seen: map[string]bool{}}
	form := func(cl *Client, f htmlForm, headers ...string) *Response {
		t.Helper()
		if !strings.HasPrefix(f.Action, "/") {
			t.Fatalf("form action %q", f.Action)
		}
		return cl.Post(f.Action, "application/x-www-form-urlencoded", f.Fields.Encode(), append(headers, browserFormPost...)...)
	}
	status := func(r *Response, want int) *Response {
		t.Helper()
		if r.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d: %s", r.Request.Method, r.Request.URL, r.StatusCode, want, r.Body)
		}
		return r
	}

	// Anonymous: to the login page, and its forms and provider button.
	alice := NewClient(t, c.Site)
	r := status(alice.Get("/app/reports?q=1", browserNavigation...), http.StatusFound)
	m.response(r)
	forms := m.response(status(alice.Get(r.Header.Get("Location"), browserNavigation...), http.StatusOK))
	_, links := parsePage(t, alice.Get("/app/.session/login", browserNavigation...).Body)
	login := formWith(t, forms, "redirect", "/app/reports?q=1")
	login.Fields.Set("username", "alice")
	login.Fields.Set("password", alicePassword)
	r = status(form(alice, login), http.StatusSeeOther)
	m.response(r)
	if loc := r.Header.Get("Location"); loc != "/app/reports?q=1" {
		t.Errorf("after login: Location %q", loc)
	}
	if e := alice.Get("/app/reports?q=1").Echo(t); e.Path != "/reports" || e.Headers["X-Session-User"][0] != "alice" {
		t.Fatalf("the app saw %s as %v", e.Path, e.Headers["X-Session-User"])
	}

	// The provider's button, its redirect to the provider (redirect_uri)
	// and the state cookie's path.
	if len(links) != 1 {
		t.Fatalf("login page links: %q", links)
	}
	m.response(status(NewClient(t, c.Site).Get(links[0], browserNavigation...), http.StatusFound))

	// The assertion: its iss is the app's, and <iss>/jwks.json verifies it.
	e := alice.Get("/app/reports").Echo(t)
	token := e.Headers["X-Session-Assertion"]
	if len(token) != 1 {
		t.Fatalf("assertion: %q", token)
	}
	claims, err := decodeClaims(token[0])
	if err != nil {
		t.Fatal(err)
	}
	iss, _ := claims["iss"].(string)
	m.url("assertion iss", iss+"/")
	v := &jwksVerifier{url: iss + "/jwks.json"}
	if _, _, err := v.verify(token[0], "127.0.0.1/app", site+"/app/.session"); err != nil {
		t.Errorf("the assertion does not verify with the keys at its iss: %v", err)
	}

	// The sessions page: a second session of alice's (a laptop), signed out
	// from here with the page's own "sign out everywhere else" form.
	laptop := NewClient(t, c.Site)
	if r := laptop.Post("/app/.session/login", "application/json", `{"username":"alice","password":"`+alicePassword+`"}`); r.StatusCode != 200 {
		t.Fatalf("laptop login: %d %s", r.StatusCode, r.Body)
	}
	if e := laptop.Get("/app/x").Echo(t); e.Headers["X-Session-User"][0] != "alice" {
		t.Fatal("the laptop is not signed in")
	}
	forms = m.response(status(alice.Get("/app/.session/sessions", browserNavigation...), http.StatusOK))
	r = status(form(alice, formWith(t, forms, "others", "1")), http.StatusSeeOther)
	m.response(r)
	if loc := r.Header.Get("Location"); loc != "/app/.session/sessions?signed-out=1" {
		t.Errorf("sign out everywhere else: Location %q", loc)
	}
	m.response(status(alice.Get(r.Header.Get("Location"), browserNavigation...), http.StatusOK))
	if r := laptop.Get("/app/x"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("the laptop's session survived \"sign out everywhere else\": %d %s", r.StatusCode, r.Body)
	}
	if e := alice.Get("/app/x").Echo(t); e.Headers["X-Session-User"][0] != "alice" {
		t.Error("\"sign out everywhere else\" signed this session out")
	}
	// Revoking this very session with its own form: to the login page.
	forms = m.response(status(alice.Get("/app/.session/sessions", browserNavigation...), http.StatusOK))
	var current htmlForm
	for _, f := range forms {
		if f.Fields.Get("handle") != "" {
			current = f
		}
	}
	if current.Action == "" {
		t.Fatalf("no revoke form on the sessions page: %+v", forms)
	}
	m.response(status(form(alice, current), http.StatusSeeOther))
	if r := alice.Get("/app/x"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("after revoking this session: %d", r.StatusCode)
	}

	// The 403 page: bob is not in admin. Its sign-in-as-someone-else form
	// logs out and lands on the login page, which goes back to the page.
	bob := NewClient(t, c.Site)
	status(bob.Post("/app/.session/login", "application/json", `{"username":"bob","password":"`+bobPassword+`"}`), http.StatusOK)
	forms = m.response(status(bob.Get("/app/admin/users", browserNavigation...), http.StatusForbidden))
	if len(forms) != 1 {
		t.Fatalf("403 page forms: %+v", forms)
	}
	r = status(form(bob, forms[0]), http.StatusSeeOther)
	m.response(r)
	if loc := r.Header.Get("Location"); loc != "/app/.session/login?redirect=%2Fapp%2Fadmin%2Fusers" {
		t.Errorf("403 page's form: Location %q", loc)
	}
	m.response(status(bob.Get(r.Header.Get("Location"), browserNavigation...), http.StatusOK))

	// The logout page, its form, and the signed-out login page.
	status(bob.Post("/app/.session/login", "application/json", `{"username":"bob","password":"`+bobPassword+`"}`), http.StatusOK)
	forms = m.response(status(bob.Get("/app/.session/logout", browserNavigation...), http.StatusOK))
	r = status(form(bob, forms[0]), http.StatusSeeOther)
	m.response(r)
	m.response(status(bob.Get(r.Header.Get("Location"), browserNavigation...), http.StatusOK))

	// A message page: a form from another site.
	m.response(status(bob.Post("/app/.session/logout", "application/x-www-form-urlencoded", "", append(browserFormPost, "Sec-Fetch-Site: cross-site")...), http.StatusForbidden))
	// An OIDC problem page.
	m.response(status(bob.Get("/app/.session/login?provider=nosuch", browserNavigation...), http.StatusNotFound))

	// OIDC: the login through the provider (its redirect_uri is registered
	// under /app only), the callback's redirect, the logout hint cookie,
	// and the logout at the provider with its post_logout_redirect_uri.
	carol := NewClient(t, c.Site+"/app")
	cb := StartOIDCLogin(t, carol, "test", "/app/reports", "carol", "carol-pw")
	m.url("provider's callback", cb)
	r = status(FinishOIDCLogin(t, carol, cb), http.StatusSeeOther)
	m.response(r)
	if loc := r.Header.Get("Location"); loc != "/app/reports" {
		t.Errorf("OIDC callback: Location %q", loc)
	}
	carol.Base = c.Site
	r = status(carol.Post("/app/.session/logout", "application/x-www-form-urlencoded", "", browserFormPost...), http.StatusSeeOther)
	m.response(r)
	if !strings.HasPrefix(r.Header.Get("Location"), o.Issuer) {
		t.Errorf("logout did not go to the provider: %q", r.Header.Get("Location"))
	}
	// The provider accepts the post_logout_redirect_uri (registered under
	// /app) and sends the browser back there.
	next := r.Header.Get("Location")
	for range 5 {
		resp, err := carol.Client.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("the provider's logout ended at %s with %d", next, resp.StatusCode)
		}
		if next = loc.String(); strings.HasPrefix(next, site+"/") {
			break
		}
	}
	if next != site+"/app/" {
		t.Errorf("after the provider's logout: %s, want %s/app/", next, site)
	}

	// The walk saw each kind of URL (so that it cannot pass by seeing none).
	for _, want := range []string{
		"/app/.session/login?redirect=%2Fapp%2Freports%3Fq%3D1", "/app/.session/login",
		"/app/.session/sessions", "/app/.session/sessions?signed-out=1", "/app/.session/logout",
		site + "/app/.session/oidc/test/callback", "/app/.session/", site + "/app/", // the state cookies' path: <prefix>/ under the mount
		"/app/.session/login?redirect=%2Fapp%2Fadmin%2Fusers", "/app/.session/login?signed_out=1",
	} {
		if !m.seen[want] {
			t.Errorf("the walk never saw %s", want)
		}
	}
	t.Logf("checked %d URLs", len(m.seen))
}
