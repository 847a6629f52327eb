package session

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgesession/edgesession/sessionstore"
)

func TestExpireAppCookies(t *testing.T) {
	h := newTestManager(t, nil, func(c *Config) {
		c.LogoutCookies = []AppCookie{{Name: "ttrss_sid"}, {Name: "ttrss_sid", Path: "/tt-rss/"}, {Name: "sessionid", Domain: "example.com"}, {Name: "__Host-sid"}}
		c.ClearSiteData = []string{"cookies", "storage"}
	})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/.session/logout", nil)
	r.Header.Set("Cookie", "ttrss_sid=abc; theme=dark; sessionid=x")
	h.expireAppCookies(w, r)
	h.expireAppCookies(w, r) // twice: no line twice
	want := []string{
		"ttrss_sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0",
		"ttrss_sid=; Path=/tt-rss/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0",
		"sessionid=; Path=/; Domain=example.com; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0",
		"__Host-sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure",
	}
	if got := w.Header()["Set-Cookie"]; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Set-Cookie:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := r.Header.Get("Cookie"); got != "theme=dark" {
		t.Errorf("the request still has %q", got)
	}

	// Over TLS every line is Secure; a cookie the upstream's response
	// sets itself is left as it set it.
	w = httptest.NewRecorder()
	w.Header().Add("Set-Cookie", "sessionid=fresh; Path=/; HttpOnly")
	r = httptest.NewRequest("GET", "https://example.com/", nil)
	h.expireAppCookies(w, r)
	got := w.Header()["Set-Cookie"]
	if len(got) != 4 || got[0] != "sessionid=fresh; Path=/; HttpOnly" || !strings.HasSuffix(got[1], "; Secure") {
		t.Errorf("Set-Cookie over TLS after the app's own: %q", got)
	}
	for _, l := range got[1:] {
		if strings.HasPrefix(l, "sessionid=") {
			t.Errorf("the app's own sessionid was overridden: %q", got)
		}
	}

	w = httptest.NewRecorder()
	h.ClearSiteData(w)
	if got := w.Header().Get("Clear-Site-Data"); got != `"cookies", "storage"` {
		t.Errorf("Clear-Site-Data: %q", got)
	}
}

// TestSignedInMarkerOnHTTPS: on HTTPS the marker carries the __Host-
// prefix (__Secure- when the session cookie has a domain), which neither
// a sibling subdomain nor a plain-HTTP response can set; the same name
// without the prefix, which they can, is not read as the marker there.
func TestSignedInMarkerOnHTTPS(t *testing.T) {
	store := sessionstore.NewMemory(0)
	t.Cleanup(func() { store.Close() })
	for _, tc := range []struct{ domain, name string }{
		{"", "__Host-caddy_session~signedin"},
		{"example.com", "__Secure-caddy_session~signedin"},
	} {
		h := newTestManager(t, store, func(c *Config) {
			c.LogoutCookies = []AppCookie{{Name: "app_sid"}}
			c.Cookie.Domain = tc.domain
		})
		r := httptest.NewRequest("GET", "https://example.com/", nil)
		w := httptest.NewRecorder()
		h.markSignedIn(w, r)
		if got := w.Header().Get("Set-Cookie"); !strings.HasPrefix(got, tc.name+"=1;") || !strings.Contains(got, "; Secure") {
			t.Errorf("domain %q: the login sets %q, want %s=1, Secure", tc.domain, got, tc.name)
		}
		for cookie, want := range map[string]int{
			tc.name + "=1":                                markerSignedIn,
			tc.name + "=0; " + tc.name + "=1":             markerEnded,
			"caddy_session~signedin=0":                    markerNone,
			"caddy_session~signedin=1":                    markerNone,
			"caddy_session~signedin=0; " + tc.name + "=1": markerSignedIn,
		} {
			r.Header.Set("Cookie", cookie)
			if got := h.markerState(r); got != want {
				t.Errorf("domain %q, Cookie %q over HTTPS: marker state %d, want %d", tc.domain, cookie, got, want)
			}
		}
	}
}
