package endpoints

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
)

// The auth endpoint, <prefix>/auth: a proxy in front (nginx
// auth_request, Traefik ForwardAuth, Caddy's forward_auth) asks whether
// an original request, which it describes in X-Forwarded-* headers, may
// pass, and which trusted headers to give it (SPEC §14).

// Verdict is what the handler's judge says of a request (see Auth.Judge):
// the same for a request it proxies and for an original request the auth
// endpoint is asked about.
type Verdict int

const (
	// Pass: the request may go on (public, or a user the rules let in).
	Pass Verdict = iota
	// LoginRequired: no user, and not public.
	LoginRequired
	// Forbidden: a user whom the rules do not let in.
	Forbidden
	// StoreDown: no user could be found, the store failed, not public.
	StoreDown
	// Refused: the request cannot be judged (its readings disagree where
	// rules apply, a matcher failed): 400.
	Refused
	// SecondFactor: a user who must prove a second factor first (`mfa
	// required`, or a rule that says `mfa`), and whose session has none.
	SecondFactor
	// Anonymous: the request may go on, as public, without the session:
	// its user must prove a second factor before it is anyone's.
	Anonymous
)

// Auth is what the auth endpoint needs of the server it runs in.
type Auth struct {
	// Trusted reports whether r came from a trusted proxy (Caddy's
	// trusted_proxies): only then are its X-Forwarded-* headers read.
	Trusted func(r *http.Request) bool
	// Prepare gives orig, the original request built from them (its
	// context is the auth request's), what the server's matchers need.
	Prepare func(orig *http.Request) *http.Request
	// Judge judges orig with its session s (nil for none; storeErr is
	// the store's failure to find one), exactly as the handler judges a
	// request it proxies: public in every reading, then the rules.
	Judge func(orig *http.Request, s *session.Session, storeErr error) (Verdict, error)
	// Pass writes the 200 answer: the trusted headers of s (nil or
	// anonymous for none) for orig as response headers, and nothing that
	// any handler before put under those names.
	Pass func(w http.ResponseWriter, orig *http.Request, s *session.Session)

	warned atomic.Int64 // unix seconds of the last warning of an untrusted caller
}

// maxOriginalURI bounds the original URI a proxy reports.
const maxOriginalURI = 16 << 10

// noOriginal is the answer to a request that does not come from a
// trusted proxy, or does not say what the original request was.
var noOriginal = map[string]string{"error": "auth endpoint: no original request from a trusted proxy"}

func (s *Server) serveAuth(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, "GET, HEAD")
	}
	a := s.c.Auth
	var orig *http.Request
	why := "not from a trusted proxy"
	if a.Trusted(r) {
		orig, why = originalRequest(r)
	}
	if orig == nil {
		if now := time.Now().Unix(); a.warned.Load() < now-10 && a.warned.Swap(now) < now-10 {
			s.c.Logger.Warn("auth endpoint: request refused: "+why, s.zapRemoteIP(r))
		}
		return pages.WriteJSON(w, http.StatusBadRequest, noOriginal)
	}
	orig = a.Prepare(orig)
	sess, err := s.c.Sessions.Load(w, orig)
	v, jerr := a.Judge(orig, sess, err)
	switch v {
	case Pass:
		a.Pass(w, orig, sess)
		return nil
	case Anonymous:
		a.Pass(w, orig, nil)
		return nil
	case Forbidden:
		return pages.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden"})
	case StoreDown:
		return ServiceUnavailable(w)
	case Refused:
		s.c.Logger.Info("auth endpoint: original request refused", zap.NamedError("reason", jerr), s.zapRemoteIP(r))
		return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request"})
	}
	// Login required (or a second factor): the login page (the second
	// step) on the original host, back to the original URL afterwards.
	origin := "http://" + orig.Host
	if orig.TLS != nil {
		origin = "https://" + orig.Host
	}
	page, why := "/login", "login required"
	if v == SecondFactor {
		page, why = "/mfa", "second factor required"
	}
	login := origin + s.c.Prefix + page + "?redirect=" + url.QueryEscape(origin+orig.RequestURI)
	switch {
	case !pages.IsNavigation(orig):
		// A script: 401, and no login page for it to follow.
	case r.URL.Query().Get("status") == "401":
		// nginx's auth_request passes on no redirect: it answers 401 and
		// sends the browser to Location itself (auth_request_set).
		w.Header().Set("Location", login)
	default:
		http.Redirect(w, r, login, http.StatusFound)
		return nil
	}
	return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": why})
}

// originalRequest builds the request a trusted proxy asks about from
// its X-Forwarded-* headers (see Auth), or says why it cannot: the
// method (X-Forwarded-Method, else GET), the path and query
// (X-Forwarded-Uri, else X-Original-URI; if both are sent they must
// agree), the host (X-Forwarded-Host, else the Host the proxy sent) and
// the scheme (X-Forwarded-Proto, else the auth request's). Each at most
// once. The header is the auth request's own: the proxies send the
// original request's headers along.
func originalRequest(r *http.Request) (*http.Request, string) {
	one := func(name string) (string, bool) {
		v := r.Header.Values(name)
		if len(v) > 1 {
			return "", false
		}
		if len(v) == 0 {
			return "", true
		}
		return v[0], true
	}
	method, ok1 := one("X-Forwarded-Method")
	uri, ok2 := one("X-Forwarded-Uri")
	nginxURI, ok3 := one("X-Original-Uri")
	host, ok4 := one("X-Forwarded-Host")
	proto, ok5 := one("X-Forwarded-Proto")
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return nil, "an X-Forwarded-* or X-Original-URI header sent more than once"
	}
	switch {
	case uri == "":
		uri = nginxURI
	case nginxURI != "" && nginxURI != uri:
		return nil, "X-Forwarded-Uri and X-Original-URI disagree"
	}
	if uri == "" {
		return nil, "no X-Forwarded-Uri or X-Original-URI"
	}
	if uri[0] != '/' || len(uri) > maxOriginalURI || strings.ContainsFunc(uri, func(c rune) bool { return c <= ' ' || c == 0x7f || c == '#' }) {
		return nil, "original URI not a path and query"
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return nil, "original URI not a path and query"
	}
	if method == "" {
		method = http.MethodGet
	}
	if !validMethod(method) {
		return nil, "bad X-Forwarded-Method"
	}
	if host == "" {
		host = r.Host
	}
	if !validHostPort(host) {
		return nil, "bad X-Forwarded-Host"
	}
	switch proto {
	case "http", "https":
	case "":
		proto = "http"
		if r.TLS != nil {
			proto = "https"
		}
	default:
		return nil, "bad X-Forwarded-Proto"
	}
	orig := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      r.Proto,
		ProtoMajor: r.ProtoMajor,
		ProtoMinor: r.ProtoMinor,
		Header:     r.Header,
		Body:       http.NoBody,
		Host:       host,
		RemoteAddr: r.RemoteAddr,
		RequestURI: uri,
	}
	if proto == "https" {
		orig.TLS = &tls.ConnectionState{}
	}
	return orig.WithContext(r.Context()), ""
}

// validMethod reports whether m is an HTTP token of at most 32 bytes.
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHostPort reports whether h is a plain host name (any case) or an
// IPv4 address, with an optional port.
func validHostPort(h string) bool {
	host, port := splitPort(h)
	if strings.HasSuffix(h, ":") {
		return false
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' || len(port) > 5 {
			return false
		}
	}
	return plainHost(strings.ToLower(host))
}
