package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// spoofedHeaders are trusted header names in the spellings a client might
// try: any case, '_' for '-', data and prefix headers, user headers.
var spoofedHeaders = []string{
	"X-Session-User", "x-session-user", "X-SESSION-USER", "X_Session_User", "x_session_user",
	"X-Session_User", "x-SeSsIoN-uSeR", "X-Session-Data-Role", "x_session_data_role",
	"X-Session-Anything", "X-Session-", "Remote-User", "remote_user", "REMOTE-USER", "Remote_User",
	"X-Webauth-User", "x_webauth_user", "X-WEBAUTH_USER",
}

func TestSpoofedTrustedHeadersNeverReachUpstream(t *testing.T) {
	forStores(t, allStores, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "")
		var headers []string
		for _, name := range spoofedHeaders {
			headers = append(headers, name+": mallory", name+": mallory2")
		}
		check := func(t *testing.T, e Echo, wantUser string) {
			t.Helper()
			for name, values := range e.Headers {
				n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
				if !strings.HasPrefix(n, "x-session-") && n != "remote-user" && n != "x-webauth-user" {
					continue
				}
				for _, v := range values {
					if strings.Contains(v, "mallory") {
						t.Errorf("the upstream got the client's %s: %q", name, v)
					}
				}
				if n == "x-session-user" || n == "remote-user" || n == "x-webauth-user" {
					if len(values) != 1 || values[0] != wantUser {
						t.Errorf("the upstream got %s = %q, want [%s]", name, values, wantUser)
					}
				} else if n == "x-session-data-role" && len(values) != 0 {
					t.Errorf("the upstream got %s = %q", name, values)
				}
			}
		}

		t.Run("anonymous on a public route", func(t *testing.T) {
			cl := NewClient(t, c.Site)
			e := cl.Get("/public/page", headers...).Echo(t)
			check(t, e, "")
			if _, ok := e.Headers["X-Session-User"]; ok {
				t.Error("an anonymous request carried X-Session-User")
			}
		})
		t.Run("anonymous on a protected route", func(t *testing.T) {
			before := up.Requests.Load()
			if r := NewClient(t, c.Site).Get("/private", headers...); r.StatusCode != 401 {
				t.Fatalf("spoofed headers got %d, want 401", r.StatusCode)
			}
			if up.Requests.Load() != before {
				t.Fatal("a request with spoofed headers and no session reached the upstream")
			}
		})
		t.Run("logged in", func(t *testing.T) {
			cl := NewClient(t, c.Site)
			cl.MustLogin("bob", bobPassword)
			check(t, cl.Get("/private", headers...).Echo(t), "bob")
			check(t, cl.Get("/public/page", headers...).Echo(t), "bob")
		})
	})
}

func TestTamperedCookieIsNoSession(t *testing.T) {
	forStores(t, allStores, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "")
		cl := NewClient(t, c.Site)
		cl.MustLogin("alice", alicePassword)
		good := cl.SessionCookie()

		flip := func(s string, i int) string {
			b := []byte(s)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		}
		otherSite := startSite(t, up, "memory", "secret another-secret-of-at-least-32-bytes!")
		foreign := NewClient(t, otherSite.Site)
		foreign.MustLogin("alice", alicePassword)

		bad := map[string]string{
			"first byte flipped":  flip(good, 0),
			"middle byte flipped": flip(good, len(good)/2),
			"last byte flipped":   flip(good, len(good)-1),
			"truncated":           good[:len(good)-4],
			"doubled":             good + good,
			"garbage":             "not-a-cookie-at-all",
			"base64 garbage":      "MTc5NTYyOTU0N3xvRjh1Wmp0aWM4R09FczFid1lBUzAwWkFMSDN0SnJsOTJF",
			"16 KB":               strings.Repeat("A", 16<<10),
			"other secret":        foreign.SessionCookie(),
		}
		for name, v := range bad {
			t.Run(name, func(t *testing.T) {
				att := NewClient(t, c.Site)
				att.SetSessionCookie(v)
				r := att.Get("/private")
				if r.StatusCode != 401 {
					t.Fatalf("got %d, want 401", r.StatusCode)
				}
				// The bad cookie is cleared.
				if sc := r.Header.Get("Set-Cookie"); !strings.Contains(sc, "caddy_session=;") || !strings.Contains(sc, "Max-Age=0") {
					t.Errorf("Set-Cookie %q does not clear the bad cookie", sc)
				}
				if r := att.Get("/public/x", "Accept: application/json"); r.StatusCode != 200 {
					t.Errorf("public route with a bad cookie: %d", r.StatusCode)
				}
			})
		}
		if code, user := cl.Whoami(); code != 200 || user != "alice" {
			t.Fatalf("the good cookie stopped working: %d %q", code, user)
		}
	})
}

func TestLogoutThenReplayIsNoSession(t *testing.T) {
	forEachStore(t, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "")
		cl := NewClient(t, c.Site)
		cl.MustLogin("alice", alicePassword)
		stolen := cl.SessionCookie()

		r := cl.Post("/.session/logout", "application/x-www-form-urlencoded", "redirect=%2Fbye")
		if r.StatusCode != 303 || r.Header.Get("Location") != "/bye" {
			t.Fatalf("logout: %d Location %q", r.StatusCode, r.Header.Get("Location"))
		}
		if sc := r.Header.Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
			t.Errorf("logout did not expire the cookie: %q", sc)
		}
		replay := NewClient(t, c.Site)
		replay.SetSessionCookie(stolen)
		if r := replay.Get("/private"); r.StatusCode != 401 {
			t.Fatalf("replayed cookie after logout: %d, want 401", r.StatusCode)
		}
		if code, _ := replay.Whoami(); code != 401 {
			t.Fatalf("replayed cookie whoami: %d", code)
		}

		// JSON clients get 204.
		cl.MustLogin("alice", alicePassword)
		if r := cl.LogoutJSON(); r.StatusCode != 204 {
			t.Fatalf("JSON logout: %d", r.StatusCode)
		}
		if code, _ := cl.Whoami(); code != 401 {
			t.Fatalf("whoami after JSON logout: %d", code)
		}
	})
}

func TestLogoutGetChangesNothing(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "")
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	r := cl.Get("/.session/logout?redirect=%2Fhome")
	if r.StatusCode != 200 || !strings.Contains(string(r.Body), `method="post"`) || !strings.Contains(string(r.Body), `value="/home"`) {
		t.Fatalf("GET logout: %d %s", r.StatusCode, r.Body)
	}
	if r.Header.Get("Set-Cookie") != "" {
		t.Error("GET logout set a cookie")
	}
	if code, user := cl.Whoami(); code != 200 || user != "alice" {
		t.Fatalf("GET logout logged out: %d", code)
	}
}

func TestOpenRedirectPayloadsGoHome(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "login_limit 1000 1m")
	payloads := []string{
		"//evil.example", "//evil.example/path", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
		"https://evil.example", "http:evil.example", "javascript:alert(1)", "JaVaScRiPt:alert(1)",
		"data:text/html,<script>alert(1)</script>", "evil.example", "/%09/evil.example", "/\t/evil.example",
		"/\r\n/evil.example", "/ok\\..\\evil", " /x", "", "///evil.example", "https:/evil.example",
		"/x\x00y", "//%65vil.example",
	}
	for _, p := range payloads {
		t.Run(fmt.Sprintf("%q", p), func(t *testing.T) {
			cl := NewClient(t, c.Site)
			r := cl.LoginForm("alice", alicePassword, p)
			if r.StatusCode != 303 || r.Header.Get("Location") != "/" {
				t.Fatalf("login with redirect %q: %d Location %q, want 303 /", p, r.StatusCode, r.Header.Get("Location"))
			}
			r = cl.Post("/.session/logout", "application/x-www-form-urlencoded", url.Values{"redirect": {p}}.Encode())
			want := "/"
			if p == "" {
				want = "/.session/login?signed_out=1" // no redirect: the signed-out page
			}
			if r.StatusCode != 303 || r.Header.Get("Location") != want {
				t.Fatalf("logout with redirect %q: %d Location %q, want 303 %s", p, r.StatusCode, r.Header.Get("Location"), want)
			}
		})
	}
	// Local paths are kept.
	cl := NewClient(t, c.Site)
	if r := cl.LoginForm("alice", alicePassword, "/a/b?c=d#e"); r.Header.Get("Location") != "/a/b?c=d#e" {
		t.Fatalf("a local redirect was changed to %q", r.Header.Get("Location"))
	}
}

func TestCrossOriginLoginAndLogoutRefused(t *testing.T) {
	forStores(t, allStores, func(t *testing.T, store string) {
		up := StartUpstream(t)
		c := startSite(t, up, store, "")
		cross := [][]string{
			{"Sec-Fetch-Site: cross-site"},
			{"Sec-Fetch-Site: same-site"},
			{"Origin: http://evil.example"},
			{"Origin: null"},
		}
		for _, hdrs := range cross {
			cl := NewClient(t, c.Site)
			r := cl.LoginForm("alice", alicePassword, "/", hdrs...)
			if r.StatusCode != 403 {
				t.Errorf("cross-origin login %v: %d, want 403", hdrs, r.StatusCode)
			}
			if r.Header.Get("Set-Cookie") != "" || cl.SessionCookie() != "" {
				t.Errorf("cross-origin login %v set a cookie", hdrs)
			}
			if r := cl.LoginJSON("alice", alicePassword, hdrs...); r.StatusCode != 403 {
				t.Errorf("cross-origin JSON login %v: %d, want 403", hdrs, r.StatusCode)
			}
		}
		cl := NewClient(t, c.Site)
		cl.MustLogin("alice", alicePassword)
		for _, hdrs := range cross {
			r := cl.Post("/.session/logout", "application/x-www-form-urlencoded", "", hdrs...)
			if r.StatusCode != 403 || strings.Contains(r.Header.Get("Set-Cookie"), "Max-Age=0") {
				t.Errorf("cross-origin logout %v: %d, Set-Cookie %q", hdrs, r.StatusCode, r.Header.Get("Set-Cookie"))
			}
		}
		if code, _ := cl.Whoami(); code != 200 {
			t.Fatal("a cross-origin logout ended the session")
		}
		// Same origin, as a browser says it, works.
		site := c.Site
		if r := cl.Post("/.session/logout", "application/x-www-form-urlencoded", "", "Sec-Fetch-Site: same-origin", "Origin: "+site); r.StatusCode != 303 {
			t.Fatalf("same-origin logout: %d", r.StatusCode)
		}
	})
}

func TestIdleTimeoutAndLifetime(t *testing.T) {
	forStores(t, allStores, func(t *testing.T, store string) {
		up := StartUpstream(t)
		t.Run("idle", func(t *testing.T) {
			t.Parallel()
			c := startSite(t, up, store, "idle_timeout 2s\nlifetime 1h")
			cl := NewClient(t, c.Site)
			cl.MustLogin("alice", alicePassword)
			// Used every 400ms for 3s: stays alive past the idle timeout.
			for range 8 {
				time.Sleep(400 * time.Millisecond)
				if r := cl.Get("/app"); r.StatusCode != 200 {
					t.Fatalf("an active session expired: %d", r.StatusCode)
				}
			}
			time.Sleep(2500 * time.Millisecond)
			if r := cl.Get("/app"); r.StatusCode != 401 {
				t.Fatalf("after 2.5s idle with idle_timeout 2s: %d, want 401", r.StatusCode)
			}
		})
		t.Run("lifetime", func(t *testing.T) {
			t.Parallel()
			c := startSite(t, up, store, "idle_timeout 1h\nlifetime 3s")
			cl := NewClient(t, c.Site)
			cl.MustLogin("alice", alicePassword)
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline.Add(-500 * time.Millisecond)) {
				if r := cl.Get("/app"); r.StatusCode != 200 {
					t.Fatalf("expired before its lifetime: %d", r.StatusCode)
				}
				time.Sleep(300 * time.Millisecond)
			}
			time.Sleep(time.Until(deadline) + 500*time.Millisecond)
			if r := cl.Get("/app"); r.StatusCode != 401 {
				t.Fatalf("an active session outlived its lifetime: %d", r.StatusCode)
			}
		})
		t.Run("idle 0 disables", func(t *testing.T) {
			t.Parallel()
			c := startSite(t, up, store, "idle_timeout 0\nlifetime 1h")
			cl := NewClient(t, c.Site)
			cl.MustLogin("alice", alicePassword)
			time.Sleep(1500 * time.Millisecond)
			if r := cl.Get("/app"); r.StatusCode != 200 {
				t.Fatalf("idle_timeout 0 expired a session: %d", r.StatusCode)
			}
		})
	})
}

func TestBadInputIsRefusedWith4xx(t *testing.T) {
	up := StartUpstream(t)
	c := startSite(t, up, "memory", "")
	cl := NewClient(t, c.Site)
	big := strings.Repeat("a", 2<<20)
	tests := []struct {
		name string
		req  *http.Request
		want int
	}{
		{"2 MB form login body", cl.NewRequest("POST", "/.session/login", strings.NewReader("username=alice&password="+big), "Content-Type: application/x-www-form-urlencoded"), 413},
		{"2 MB JSON login body", cl.NewRequest("POST", "/.session/login", strings.NewReader(`{"username":"alice","password":"`+big+`"}`), "Content-Type: application/json"), 413},
		{"invalid UTF-8 username (form)", cl.NewRequest("POST", "/.session/login", strings.NewReader("username=%ff%fe&password=x"), "Content-Type: application/x-www-form-urlencoded"), 400},
		{"invalid UTF-8 username (JSON)", cl.NewRequest("POST", "/.session/login", strings.NewReader("{\"username\":\"\xff\xfe\",\"password\":\"x\"}"), "Content-Type: application/json"), 400},
		{"control character in username", cl.NewRequest("POST", "/.session/login", strings.NewReader(`{"username":"al\u0000ice","password":"x"}`), "Content-Type: application/json"), 400},
		{"malformed JSON", cl.NewRequest("POST", "/.session/login", strings.NewReader(`{"username":`), "Content-Type: application/json"), 400},
		{"JSON of the wrong shape", cl.NewRequest("POST", "/.session/login", strings.NewReader(`["alice"]`), "Content-Type: application/json"), 400},
		{"no content type", cl.NewRequest("POST", "/.session/login", strings.NewReader(`x`)), 415},
		{"text/plain login", cl.NewRequest("POST", "/.session/login", strings.NewReader(`x`), "Content-Type: text/plain"), 415},
		{"long password", cl.NewRequest("POST", "/.session/login", strings.NewReader(`{"username":"alice","password":"`+strings.Repeat("p", 5000)+`"}`), "Content-Type: application/json"), 400},
		{"PUT login", cl.NewRequest("PUT", "/.session/login", nil), 405},
		{"DELETE logout", cl.NewRequest("DELETE", "/.session/logout", nil), 405},
		{"16 KB cookie", cl.NewRequest("GET", "/private", nil, "Cookie: caddy_session="+strings.Repeat("x", 16<<10)), 401},
		{"garbage cookie", cl.NewRequest("GET", "/private", nil, "Cookie: caddy_session=%%%;;;===; caddy_session; caddy_session=\"\""), 401},
		{"2 MB logout body", cl.NewRequest("POST", "/.session/logout", strings.NewReader(big), "Content-Type: application/x-www-form-urlencoded"), 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewClient(t, c.Site).Do(tt.req)
			if r.StatusCode != tt.want {
				t.Fatalf("got %d %s, want %d", r.StatusCode, truncate(r.Body), tt.want)
			}
		})
	}
	if strings.Contains(c.Logs(), `"level":"error"`) {
		t.Errorf("bad input was logged as an error:\n%s", c.Logs())
	}
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
