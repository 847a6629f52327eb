package tests

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// hydraTemplate is two sites of one Caddy, each its own client of Hydra
// (provider "hydra"), with its own session cookie (one browser holds
// both: cookies do not tell ports apart). Both end Hydra's session at
// logout (provider_logout on).
const hydraTemplate = `
[[.Site]] {
	session {
		store memory
		secret 0123456789abcdef0123456789abcdef
		cookie {
			name site_a
		}
		oidc hydra {
			issuer [[.Extra.issuer]]
			client_id [[.Extra.idA]]
			client_secret [[.Extra.secretA]]
			claims groups
			provider_logout on
		}
	}
	reverse_proxy [[.Upstream]]
}

http://127.0.0.1:[[.Extra.portB]] {
	session {
		store memory
		secret 0123456789abcdef0123456789abcdef
		cookie {
			name site_b
		}
		oidc hydra {
			issuer [[.Extra.issuer]]
			client_id [[.Extra.idB]]
			client_secret [[.Extra.secretB]]
			claims groups
			provider_logout on
		}
	}
	reverse_proxy [[.Upstream]]
}
`

// hydraSites is Hydra, the Caddy under test with its two sites, and a
// back-channel tap in front of each site.
type hydraSites struct {
	hydra        *Hydra
	caddy        *Caddy
	up           *Upstream
	siteA, siteB string
	tapA, tapB   *backchannelTap
}

func startHydraSites(t *testing.T) *hydraSites {
	t.Helper()
	hy := StartHydra(t)
	portA, portB := freePort(t), freePort(t)
	s := &hydraSites{hydra: hy, siteA: fmt.Sprintf("http://127.0.0.1:%d", portA), siteB: fmt.Sprintf("http://127.0.0.1:%d", portB)}
	s.tapA = newBackchannelTap(t, s.siteA+"/.session/oidc/hydra/backchannel-logout")
	s.tapB = newBackchannelTap(t, s.siteB+"/.session/oidc/hydra/backchannel-logout")
	a := hy.CreateClient(s.siteA, "hydra", s.tapA.URL())
	b := hy.CreateClient(s.siteB, "hydra", s.tapB.URL())
	s.up = StartUpstream(t)
	s.caddy = StartCaddy(t, s.up.Addr, hydraTemplate, WithSitePort(portA), WithExtra("portB", portB), WithExtra("issuer", hy.Issuer),
		WithExtra("idA", a.ID), WithExtra("secretA", a.Secret), WithExtra("idB", b.ID), WithExtra("secretB", b.Secret))
	return s
}

// hydraBrowser is one browser: a cookie jar shared by its clients of site A
// and site B (and Hydra).
type hydraBrowser struct{ a, b *Client }

func (s *hydraSites) newBrowser(t *testing.T) hydraBrowser {
	a := NewClient(t, s.siteA)
	b := NewClient(t, s.siteB)
	b.Client = a.Client
	return hydraBrowser{a, b}
}

// hydraLogin signs in at c's site with Hydra as a browser does: the
// site's login link, Hydra, the login app's form (posted as user, if
// Hydra shows it), consent, and the callback, which must end in a
// session. It reports whether the login form was shown.
func (s *hydraSites) hydraLogin(t *testing.T, c *Client, user, password string) (formShown bool) {
	t.Helper()
	before := s.hydra.LoginForms()
	if r := s.hydraCallback(t, c, user, password); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback at %s: %d %s", c.Base, r.StatusCode, r.Body)
	}
	return s.hydra.LoginForms() > before
}

// hydraCallback goes through a login at Hydra as user and returns the
// callback's answer, whatever it is.
func (s *hydraSites) hydraCallback(t *testing.T, c *Client, user, password string) *Response {
	t.Helper()
	r := c.Get("/.session/login?provider=hydra", "Accept: text/html")
	if r.StatusCode != http.StatusFound {
		t.Fatalf("starting a login at %s: %d %s", c.Base, r.StatusCode, r.Body)
	}
	cb := s.follow(t, c, r.Header.Get("Location"), c.Base+"/.session/oidc/hydra/callback", user, password)
	return c.Get(strings.TrimPrefix(cb, c.Base), "Accept: text/html")
}

// follow follows redirects from next, through Hydra and its login app
// (posting the login form as user when it is shown), until one goes to a
// URL that starts with until, and returns that URL.
func (s *hydraSites) follow(t *testing.T, c *Client, next, until, user, password string) string {
	t.Helper()
	for range 20 {
		if strings.HasPrefix(next, until) {
			return next
		}
		resp, err := c.Client.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		u, _ := url.Parse(next)
		if resp.StatusCode == http.StatusOK && u.Path == "/login" && strings.Contains(string(body), `name="password"`) {
			// The login app's form: post it as a person would.
			resp, err = c.Client.PostForm(u.Scheme+"://"+u.Host+"/login", url.Values{
				"challenge": {u.Query().Get("login_challenge")}, "username": {user}, "password": {password}})
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if resp.StatusCode/100 != 3 {
			t.Fatalf("%s: %d %s", next, resp.StatusCode, body)
		}
		loc, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		next = loc.String()
	}
	t.Fatalf("not at %s after 20 redirects, at %s", until, next)
	return ""
}

// logout signs out at c's site as a browser does (the logout form), which
// goes on to Hydra's end_session with the ID token as id_token_hint, and
// follows Hydra back to the site.
func (s *hydraSites) logout(t *testing.T, c *Client) {
	t.Helper()
	r := c.Post("/.session/logout", "application/x-www-form-urlencoded", "", "Accept: text/html")
	end := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(end, s.hydra.Issuer+"/oauth2/sessions/logout?") {
		t.Fatalf("logout at %s: %d to %q; want Hydra's end_session", c.Base, r.StatusCode, end)
	}
	if u, _ := url.Parse(end); u.Query().Get("id_token_hint") == "" {
		t.Errorf("end_session without id_token_hint: %s", end)
	}
	if back := s.follow(t, c, end, c.Base+"/", "", ""); back != c.Base+"/" {
		t.Errorf("Hydra sent the browser to %s after logout; want %s/", back, c.Base)
	}
}

// wantBackchannelLogout waits for Hydra's back-channel logout of sid to
// reach tap's site, and fails the test unless the site accepted it.
func (s *hydraSites) wantBackchannelLogout(t *testing.T, tap *backchannelTap, sid string) {
	t.Helper()
	a := tap.Wait(t, sid, 10*time.Second)
	if a.status == http.StatusOK || a.status == http.StatusNoContent {
		return
	}
	var why []string
	for _, line := range strings.Split(s.caddy.Logs(), "\n") {
		if strings.Contains(line, "logout token") {
			why = append(why, line)
		}
	}
	t.Errorf("%s answered Hydra's back-channel logout %d %s\ntoken header %v claims %v\ncaddy: %s", tap.target, a.status, strings.TrimSpace(a.body), a.header, a.claims, strings.Join(why, "\n"))
}

func alive(t *testing.T, c *Client) bool {
	t.Helper()
	status, _ := c.Whoami()
	return status == http.StatusOK
}

// TestHydra: edgesession with Ory Hydra v2.3.0, an OpenID Certified
// provider, end to end: login, claims and groups to the upstream, single
// sign-on across two clients, RP-initiated logout, and back-channel
// logout by sid (Hydra's admin API ending a login session, and a logout
// that another client started).
func TestHydra(t *testing.T) {
	s := startHydraSites(t)

	t.Run("login, claims and groups to the upstream", func(t *testing.T) {
		br := s.newBrowser(t)
		if r := br.a.Get("/private", "Accept: text/html"); r.StatusCode != http.StatusFound {
			t.Fatalf("anonymous: %d", r.StatusCode)
		}
		before := s.up.Requests.Load()
		if !s.hydraLogin(t, br.a, "alice", "alice-pw") {
			t.Error("a first login did not show the login form")
		}
		if s.up.Requests.Load() != before {
			t.Error("the login reached the upstream")
		}
		e := br.a.Get("/private").Echo(t)
		for k, v := range map[string]string{
			"X-Session-User":        "hydra:alice", // preferred_username, not the subject u-1001, qualified by the provider
			"X-Session-Source":      "oidc:hydra",
			"X-Session-Data-Email":  "alice@example.com",
			"X-Session-Data-Name":   "Alice Liddell",
			"X-Session-Data-Groups": "staff,ops",
		} {
			if got := strings.Join(e.Headers[k], "|"); got != v {
				t.Errorf("%s = %q; want %q", k, got, v)
			}
		}
	})

	t.Run("a second client signs in without a new login", func(t *testing.T) {
		br := s.newBrowser(t)
		s.hydraLogin(t, br.a, "bob", "bob-pw")
		if s.hydraLogin(t, br.b, "", "") {
			t.Error("the second client's login showed the login form: Hydra's session did not answer it")
		}
		if got := br.b.Get("/private").Echo(t).Headers["X-Session-User"]; len(got) != 1 || got[0] != "hydra:bob" {
			t.Errorf("site B: X-Session-User %q; want hydra:bob", got)
		}
	})

	t.Run("RP-initiated logout ends Hydra's session", func(t *testing.T) {
		br := s.newBrowser(t)
		s.hydraLogin(t, br.a, "alice", "alice-pw")
		logouts := s.hydra.Logouts()
		s.logout(t, br.a)
		if alive(t, br.a) {
			t.Error("session left at site A after its logout")
		}
		if s.hydra.Logouts() != logouts+1 {
			t.Error("Hydra did not ask the login app to log the user out")
		}
		// Hydra's session is gone: the next login asks for the password.
		if !s.hydraLogin(t, br.a, "alice", "alice-pw") {
			t.Error("after logout, Hydra signed the user in again without the login form")
		}
	})

	t.Run("back-channel logout: a logout started by the second client", func(t *testing.T) {
		br := s.newBrowser(t)
		s.hydraLogin(t, br.a, "bob", "bob-pw")
		sid := s.hydra.SessionOf("u-1002")
		if sid == "" {
			t.Fatal("no login session ID from Hydra's consent request")
		}
		s.hydraLogin(t, br.b, "", "")
		s.logout(t, br.b)
		if alive(t, br.b) {
			t.Error("session left at site B after its logout")
		}
		s.wantBackchannelLogout(t, s.tapA, sid)
		if alive(t, br.a) {
			t.Error("the session at site A outlived the logout at site B")
		}
	})

	t.Run("back-channel logout: Hydra's admin API ends the login session", func(t *testing.T) {
		br := s.newBrowser(t)
		s.hydraLogin(t, br.a, "alice", "alice-pw")
		s.hydraLogin(t, br.b, "", "")
		sid := s.hydra.SessionOf("u-1001")
		other := s.newBrowser(t)
		s.hydraLogin(t, other.a, "bob", "bob-pw")

		s.hydra.RevokeSession(sid)
		s.wantBackchannelLogout(t, s.tapA, sid)
		s.wantBackchannelLogout(t, s.tapB, sid)
		if alive(t, br.a) || alive(t, br.b) {
			t.Error("sessions outlived the end of their login session at Hydra")
		}
		if !alive(t, other.a) {
			t.Error("another user's session ended with alice's login session")
		}
		// Hydra's session is gone too: the next login asks again.
		if !s.hydraLogin(t, br.a, "alice", "alice-pw") {
			t.Error("after the admin API ended the login session, Hydra signed the user in without the form")
		}
	})
}
