// Attacks on the signed-in marker cookie.

package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// markerTemplate is an app with logout_cookies under a mount, with a
// realm, and another app whose realm makes its session cookie the first
// app's marker name would be if it had no realm: collisions are checked
// with realmlessMarkerTemplate.
const markerTemplate = `
[[.Site]] {
	handle_path /app/* {
		session {
			store memory
			realm app
			user alice [[.Extra.alice]]
			logout_cookies sessionid
			public {
				path /public/*
			}
		}
		reverse_proxy [[.Upstream]]
	}
}
`

// TestAttackMarkerNeverReachesTheUpstream: the marker is the handler's, in
// every spelling a browser or a client sends it, on public and signed-in
// requests; an app cookie of another name goes through.
func TestAttackMarkerNeverReachesTheUpstream(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, markerTemplate, WithExtra("alice", aliceHash))
	const marker = "caddy_session_app~signedin"
	alice := loginAt(t, c.Site, "/app", "alice", alicePassword)
	if !jarHas(alice, "/app/x", marker) {
		t.Fatal("no marker after the login")
	}
	cookies := func(e Echo) []*http.Cookie {
		return (&http.Request{Header: http.Header{"Cookie": e.Headers["Cookie"]}}).Cookies()
	}
	for _, extra := range [][]string{
		{"Cookie: " + marker + "=1"},
		{"Cookie: " + marker + "=1; " + marker + "=2"},
		{"Cookie: a=1", "Cookie: " + marker + "=1"},
		{"Cookie: " + marker + "=\"1\""},
		{"Cookie: " + marker + " = 1"},
		{"Cookie: a=1;" + marker + "=1;b=2"},
	} {
		for name, cl := range map[string]*Client{"anonymous": NewClient(t, c.Site), "signed in": alice} {
			for _, p := range []string{"/app/public/x", "/app/x"} {
				r := cl.Get(p, extra...)
				if r.StatusCode != http.StatusOK {
					continue
				}
				for _, ck := range cookies(r.Echo(t)) {
					if ck.Name == marker {
						t.Errorf("%s GET %s with %q: the upstream got the marker (%v)", name, p, extra, r.Echo(t).Headers["Cookie"])
					}
				}
			}
		}
	}
	// Its name may not be one of the app's cookies to expire.
	for _, cfg := range []string{
		"logout_cookies " + marker, "logout_cookies caddy_session_app",
		// The cookie named after logout_cookies: the check must see it.
		"logout_cookies sess~signedin\n\t\t\tcookie {\n\t\t\t\tname sess\n\t\t\t}",
		"cookie {\n\t\t\t\tname sess\n\t\t\t}\n\t\t\tlogout_cookies sess~signedin",
	} {
		if out, err := validateConfig(t, strings.Replace(markerTemplate, "logout_cookies sessionid", cfg, 1)); err == nil {
			t.Errorf("%s is accepted: %s", cfg, out)
		}
	}
}

// validateConfig runs `caddy validate` on the Caddyfile template tmpl.
func validateConfig(t *testing.T, tmpl string) (string, error) {
	t.Helper()
	c := &Caddy{t: t, Dir: t.TempDir(), Extra: map[string]any{"alice": aliceHash, "bob": bobHash}}
	c.choosePorts()
	c.file = filepath.Join(c.Dir, "Caddyfile")
	c.writeConfig(tmpl)
	cmd := exec.Command(caddyBin, "validate", "--config", c.file, "--adapter", "caddyfile")
	cmd.Env = c.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// collidingMarkerTemplate: an app without a realm that sets the marker
// (it was caddy_session_signedin; it is now caddy_session~signedin, a name
// no realm gives), and another app whose realm is "signedin": its session
// cookie is caddy_session_signedin, with the same path.
const collidingMarkerTemplate = `
[[.Site]] {
	handle_path /app/* {
		session {
			store memory
			user alice [[.Extra.alice]]
			logout_cookies sessionid
		}
		reverse_proxy [[.Upstream]]
	}
	handle_path /other/* {
		session {
			store memory
			realm signedin
			user alice [[.Extra.alice]]
		}
		reverse_proxy [[.Upstream]]
	}
}
`

// TestAttackMarkerCollidesWithAnotherAppsCookie: the marker's name was the
// session cookie's name with "_signedin"; a realm's cookie is
// caddy_session_<realm>. Two apps on one host must not share a cookie
// name: either Caddy refuses the configuration, or signing in to one app
// does not sign the user out of the other.
func TestAttackMarkerCollidesWithAnotherAppsCookie(t *testing.T) {
	if _, err := validateConfig(t, collidingMarkerTemplate); err != nil {
		return // refused: safe
	}
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, collidingMarkerTemplate, WithExtra("alice", aliceHash))
	cl := NewClient(t, c.Site)
	for _, mount := range []string{"/other", "/app"} {
		b, _ := json.Marshal(map[string]string{"username": "alice", "password": alicePassword})
		if r := cl.Post(mount+"/.session/login", "application/json", string(b)); r.StatusCode != http.StatusOK {
			t.Fatalf("login at %s: %d %s", mount, r.StatusCode, r.Body)
		}
	}
	for _, p := range []string{"/app/x", "/other/x"} {
		if r := cl.Get(p); r.StatusCode != http.StatusOK {
			t.Errorf("signed in to both apps, then GET %s: %d %s (the marker of /app took the name of /other's session cookie)", p, r.StatusCode, r.Body)
		}
	}
}

// TestAttackMarkerPlantedElsewhere: a cookie the handler did not set (a
// cookie tossed with a path of its own, as a sibling subdomain's Domain
// cookie or a plain-HTTP injection would be) arriving without a session:
// the marker, or a session cookie that does not decode. The handler expires
// the app's cookies and its own once; the planted cookie, which it cannot
// expire, must not make it keep the app's anonymous session (a CSRF token,
// an upstream_control login form, both of which the docs promise to leave
// alone) from the app on every request after that.
func TestAttackMarkerPlantedElsewhere(t *testing.T) {
	up := StartUpstream(t)
	c := StartCaddy(t, up.Addr, markerTemplate, WithExtra("alice", aliceHash))
	for name, planted := range map[string]*http.Cookie{
		"marker":                     {Name: "caddy_session_app~signedin", Value: "1", Path: "/app/public"},
		"undecodable session cookie": {Name: "caddy_session_app", Value: "garbage", Path: "/app/public"},
	} {
		t.Run(name, func(t *testing.T) {
			cl := NewClient(t, c.Site)
			u, _ := url.Parse(c.Site + "/app/")
			// With a path of its own: sent first, and not the cookie
			// that a Path=/ expiry removes.
			cl.Jar.SetCookies(u, []*http.Cookie{planted})
			// The app starts its anonymous session on a public page, and
			// the browser keeps it (the app's Set-Cookie comes last).
			setApp := "/app/public/x?h=" + url.QueryEscape("Set-Cookie:sessionid=anon; Path=/")
			cl.Get(setApp).Echo(t)
			if !jarHas(cl, "/app/public/x", "sessionid") {
				t.Fatalf("the app's cookie is not in the browser")
			}
			kept := 0
			for range 3 {
				e := cl.Get("/app/public/x").Echo(t)
				for _, ck := range (&http.Request{Header: http.Header{"Cookie": e.Headers["Cookie"]}}).Cookies() {
					if ck.Name == "sessionid" {
						kept++
					}
				}
			}
			if kept != 3 {
				t.Errorf("the app got its anonymous session cookie on %d of 3 requests after the first: the planted %s, which the handler cannot expire, ends the app's session on every request", kept, name)
			}
		})
	}
}
