package session

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/edgesession/edgesession/cookie"
)

// Logout reaches the app (SPEC §12). An app behind the handler often
// keeps a session of its own once it has seen the user (tt-rss's
// ttrss_sid, Django's session under PersistentRemoteUserMiddleware). If
// that session outlives ours, the next person at the same browser is the
// previous user to the app. So whenever one of our sessions ends, the
// app's session cookies named in LogoutCookies are expired too, and on
// logout Clear-Site-Data can be sent.
//
// A session also ends without the handler seeing it end: its cookie
// expires in the browser, a browser restart drops it, a new secret makes
// it undecodable. The app's cookie may outlive it all the same. An
// undecodable cookie of ours is a session that ended: the app's cookies
// go with it. A missing one is not enough to tell: an app may set its
// cookie before our login (a CSRF token in its session on a public page,
// a login through upstream_control), and expiring it on every anonymous
// request would break that. So a login also sets a marker cookie,
// <cookie name>~signedin=1, which lives on (400 days, persistent whatever
// the session cookie is). The marker without a live session means "this
// browser signed in and its session ended unseen": the app's cookies are
// expired. The marker is set only when LogoutCookies are configured, and
// never reaches the upstream.
//
// Once. Whenever a session ends, the marker is not expired but set to 0
// (the end was seen and acted on). A cookie the handler cannot expire (a
// marker or session cookie tossed in with a path or domain of its own: a
// sibling subdomain, a plain-HTTP injection) keeps arriving; the 0 that
// arrives with it says that its end was acted on already, and the app's
// anonymous session is left alone. On HTTPS the marker's name carries the
// __Host- prefix (or __Secure- when the session cookie has a path or a
// domain), so that neither can plant it at all.
//
// Its name has a '~', which no realm has: it is never another handler's
// default session cookie (caddy_session_<realm>).

// AppCookie is one of the app's own cookies, expired when a session ends.
// A browser drops a cookie only when told so with the name, path and
// domain it was set with: give each path and domain the app uses.
type AppCookie struct {
	// Name of the cookie.
	Name string `json:"name"`
	// Path the app sets it with. Default "/".
	Path string `json:"path,omitempty"`
	// Domain the app sets it with. Default none (a host-only cookie).
	Domain string `json:"domain,omitempty"`
}

// ClearSiteDataTypes are the Clear-Site-Data types that may be sent.
var ClearSiteDataTypes = []string{"cookies", "storage", "cache", "*"}

// ValidateAppLogout checks the logout cookies and Clear-Site-Data types
// of a handler whose session cookie is called sessionCookie.
func ValidateAppLogout(sessionCookie string, cookies []AppCookie, clearSiteData []string) error {
	for _, c := range cookies {
		if err := c.Validate(sessionCookie); err != nil {
			return fmt.Errorf("logout_cookies %q: %v", c.Name, err)
		}
	}
	for i, t := range clearSiteData {
		if !slices.Contains(ClearSiteDataTypes, t) {
			return fmt.Errorf("clear_site_data %q: want some of %s", t, strings.Join(ClearSiteDataTypes, ", "))
		}
		if slices.Contains(clearSiteData[:i], t) {
			return fmt.Errorf("clear_site_data %q given twice", t)
		}
	}
	return nil
}

// Validate checks c; sessionCookie is the handler's own cookie name,
// which is expired anyway and must not be named here.
func (c AppCookie) Validate(sessionCookie string) error {
	switch {
	case c.Name == "" || strings.ContainsFunc(c.Name, func(r rune) bool { return !cookie.IsTokenChar(r) }):
		return fmt.Errorf("not a valid cookie name")
	case c.Name == sessionCookie:
		return fmt.Errorf("is the session cookie, which is expired at logout anyway")
	case newMarkerNames(sessionCookie).has(c.Name):
		return fmt.Errorf("is the handler's own signed-in marker")
	case c.Path != "" && (c.Path[0] != '/' || strings.ContainsFunc(c.Path, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ';' })):
		return fmt.Errorf("path %q: must start with / and have no spaces, ';' or control characters", c.Path)
	case strings.ContainsFunc(c.Domain, func(r rune) bool { return !cookie.IsTokenChar(r) }):
		return fmt.Errorf("domain %q: not a domain", c.Domain)
	case strings.HasPrefix(c.Name, "__Host-") && (c.Domain != "" || (c.Path != "" && c.Path != "/")):
		return fmt.Errorf("a __Host- cookie has path / and no domain")
	}
	return nil
}

// Ended is called whenever a session ends or is found to have
// ended: the session cookie and the app's logout cookies are expired, and
// the signed-in marker says so (0).
func (m *Manager) Ended(w http.ResponseWriter, r *http.Request) {
	m.ExpireCookie(w, r)
	m.appSessionEnded(w, r)
}

// foundEnded is Ended for a session cookie that arrives
// expired, revoked or undecodable: the app's cookies are expired unless
// the marker says that this was done already (a cookie that the handler
// cannot expire keeps arriving).
func (m *Manager) foundEnded(w http.ResponseWriter, r *http.Request) {
	m.ExpireCookie(w, r)
	if len(m.c.LogoutCookies) == 0 || m.markerState(r) == markerEnded {
		return
	}
	m.appSessionEnded(w, r)
}

// appSessionEnded expires the app's logout cookies and sets the signed-in
// marker to 0.
func (m *Manager) appSessionEnded(w http.ResponseWriter, r *http.Request) {
	if len(m.c.LogoutCookies) == 0 {
		return
	}
	m.expireAppCookies(w, r)
	m.setMarker(w, r, "0")
}

// signedInMaxAge is how long the signed-in marker lives: as long as
// browsers keep any cookie.
const signedInMaxAge = 400 * 24 * time.Hour

// setMarker sets the signed-in marker to value ("1" signed in, "0" the
// end was seen), with the session cookie's attributes (path, domain,
// Secure, SameSite) and its own name.
func (m *Manager) setMarker(w http.ResponseWriter, r *http.Request, value string) {
	c := m.c.Cookie.New(r, value)
	c.Name = m.markers.name(c)
	c.MaxAge = int(signedInMaxAge / time.Second)
	cookie.ReplaceSet(w.Header(), c.Name, c.String())
}

// markSignedIn sets the signed-in marker after a login.
func (m *Manager) markSignedIn(w http.ResponseWriter, r *http.Request) {
	if len(m.c.LogoutCookies) == 0 {
		return
	}
	m.setMarker(w, r, "1")
}

// noSession is called when a request has no session cookie at all: if
// the signed-in marker arrives, and no 0 with it, this browser's session
// ended unseen, and the app's session ends now.
func (m *Manager) noSession(w http.ResponseWriter, r *http.Request) {
	if len(m.c.LogoutCookies) == 0 {
		return
	}
	if m.markerState(r) == markerSignedIn {
		m.appSessionEnded(w, r)
	}
}

// markerNames are the names the signed-in marker goes by: <cookie
// name>~signedin, and on HTTPS with the __Host- or __Secure- prefix
// (unless the session cookie's name has one already).
type markerNames struct{ plain, host, secure string }

func newMarkerNames(name string) markerNames {
	base := name + markerSuffix
	if cookie.HasPrefixFold(name, "__Host-") || cookie.HasPrefixFold(name, "__Secure-") {
		return markerNames{base, base, base}
	}
	return markerNames{base, "__Host-" + base, "__Secure-" + base}
}

const markerSuffix = "~signedin"

// name is the marker's name for a cookie with c's attributes: a browser
// keeps a __Host- cookie only if it is Secure, has path / and no domain.
func (m markerNames) name(c *http.Cookie) string {
	switch {
	case !c.Secure:
		return m.plain
	case c.Path == "/" && c.Domain == "":
		return m.host
	}
	return m.secure
}

func (m markerNames) has(name string) bool {
	return name == m.plain || name == m.host || name == m.secure
}

// remove takes every spelling of the marker out of a request's header.
func (m markerNames) remove(h http.Header) {
	cookie.Remove(h, m.plain)
	if m.host != m.plain {
		cookie.Remove(h, m.host)
		cookie.Remove(h, m.secure)
	}
}

const (
	markerNone     = iota // no marker: never signed in here, or from before markers
	markerSignedIn        // a marker other than 0 and none that is 0
	markerEnded           // a 0: the end of the session was seen and acted on
)

// markerState reads the marker a request carries, under the one name it
// has on this request (see markerNames.name): on HTTPS a marker without
// the prefix may have been planted over plain HTTP or by a sibling
// subdomain, and does not count.
func (m *Manager) markerState(r *http.Request) int {
	state := markerNone
	for v := range cookie.Each(r, m.markers.name(m.c.Cookie.New(r, ""))) {
		if v == "0" {
			return markerEnded
		}
		state = markerSignedIn
	}
	return state
}

// expireAppCookies tells the browser to drop the app's logout cookies, and
// takes them out of r, so that the upstream (if r goes on to it) does not
// see the ended session and send its cookie again. A cookie the response
// already sets, other than by an earlier call, is left as the upstream set
// it: an app that logs a user in or out with its response knows its own
// session best.
func (m *Manager) expireAppCookies(w http.ResponseWriter, r *http.Request) {
	if len(m.c.LogoutCookies) == 0 {
		return
	}
	https := cookie.CameOverHTTPS(r)
	ours := make([]string, len(m.c.LogoutCookies))
	for i, c := range m.c.LogoutCookies {
		ours[i] = c.expiry(https)
	}
	hdr := w.Header()
	before := hdr["Set-Cookie"]
	add := before[:len(before):len(before)]
	for i, c := range m.c.LogoutCookies {
		cookie.Remove(r.Header, c.Name)
		if !slices.Contains(before, ours[i]) && !setsOtherwise(before, c.Name, ours) {
			add = append(add, ours[i])
		}
	}
	hdr["Set-Cookie"] = add
}

// expiry is the Set-Cookie line that expires c.
func (c AppCookie) expiry(https bool) string {
	ck := http.Cookie{
		Name:   c.Name,
		Path:   c.Path,
		Domain: c.Domain,
		MaxAge: -1, // Max-Age=0
		// For clients that know only Expires.
		Expires: time.Unix(0, 0),
		// A browser lets only a secure origin overwrite a Secure cookie,
		// and wants Secure on the prefixed names.
		Secure: https || strings.HasPrefix(c.Name, "__Secure-") || strings.HasPrefix(c.Name, "__Host-"),
	}
	if ck.Path == "" {
		ck.Path = "/"
	}
	return ck.String()
}

// setsOtherwise reports whether lines set the cookie name other than with
// one of the lines in ours.
func setsOtherwise(lines []string, name string, ours []string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, name+"=") && !slices.Contains(ours, l) {
			return true
		}
	}
	return false
}

// ClearSiteData adds the Clear-Site-Data header of a logout.
func (m *Manager) ClearSiteData(w http.ResponseWriter) {
	if len(m.c.ClearSiteData) == 0 {
		return
	}
	quoted := make([]string, len(m.c.ClearSiteData))
	for i, t := range m.c.ClearSiteData {
		quoted[i] = `"` + t + `"`
	}
	w.Header().Set("Clear-Site-Data", strings.Join(quoted, ", "))
}

// RemoveMarkers takes the signed-in marker, under every name it goes by,
// out of a request's header h (so that it never reaches the upstream).
func (m *Manager) RemoveMarkers(h http.Header) {
	if len(m.c.LogoutCookies) > 0 {
		m.markers.remove(h)
	}
}
