package endpoints

import (
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity/oidc"
	"github.com/edgesession/edgesession/identity/password"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/throttle"
)

// Config is what a Server needs, given once.
type Config struct {
	// Prefix is the path prefix the endpoints are under (/.session),
	// without the mount.
	Prefix string
	// Title is the site's name the pages carry.
	Title string
	// Cookie is the session cookie's configuration (its SameSite mode
	// decides how an OIDC login lands).
	Cookie cookie.Config

	Sessions *session.Manager
	// Users check passwords; PasswordUsers says whether any are configured
	// (inline or in a users file): the login page then shows its password
	// form beside the providers' buttons.
	Users         *password.DB
	PasswordUsers bool
	// Throttle limits password logins, in the scope ThrottleScope.
	Throttle      *throttle.Throttle
	ThrottleScope string
	Pages         *pages.Set
	// OIDC are the providers; nil without any.
	OIDC *oidc.Set
	// Revocation is what a back-channel logout acts on, asked for at
	// each one.
	Revocation func() oidc.Revocation
	// UserIndex lists and deletes a user's sessions; nil when the store
	// has no index (the sessions page then has no list). SessionDeleted is
	// called with each session deleted through it.
	UserIndex      sessionstore.UserIndex
	SessionDeleted func(sessionstore.Key)
	// JWKS is the assertion keys' document; nil without assertions.
	JWKS func() []byte
	// HTTPBasic turns on logins with HTTP Basic; BasicRealm names the
	// challenge's realm ("" for DefaultBasicRealm).
	HTTPBasic  bool
	BasicRealm string
	// RedirectHosts are the other hosts the login and logout pages may
	// send a browser back to with an absolute URL.
	RedirectHosts RedirectHosts
	// Auth is the auth endpoint (<prefix>/auth); nil turns it off.
	Auth *Auth
	// MFA are the second factors and passkeys; nil turns them off.
	MFA *MFA

	Logger  *zap.Logger
	Metrics Metrics

	// Mount is the path prefix the server stripped before the handler
	// (as the browser sees it, "" for none); sure is false when it cannot
	// be known. Unmounted answers a request that needs the mount when it
	// cannot be known; what names what needed it.
	Mount     func(r *http.Request) (mount string, sure bool)
	Unmounted func(w http.ResponseWriter, r *http.Request, what string) error
	// ClientIP is the client's address; OriginalURI the path and query
	// the client asked for, before any rewrite.
	ClientIP    func(r *http.Request) string
	OriginalURI func(r *http.Request) string
}

// Metrics are the counters the endpoints add to. Any may be nil.
type Metrics struct {
	// Login counts one login attempt by result: success, failure,
	// throttled, error.
	Login func(result string)
	// Logout counts n sessions ended by a logout.
	Logout func(n int)
	// OIDCLogin counts one provider login by provider and result.
	OIDCLogin func(provider, result string)
}

// Server serves the endpoints of one handler.
type Server struct {
	c   Config
	cop *http.CrossOriginProtection
}

// New makes the Server of c.
func New(c Config) *Server {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Metrics.Login == nil {
		c.Metrics.Login = func(string) {}
	}
	if c.Metrics.Logout == nil {
		c.Metrics.Logout = func(int) {}
	}
	if c.Metrics.OIDCLogin == nil {
		c.Metrics.OIDCLogin = func(string, string) {}
	}
	if c.Mount == nil {
		c.Mount = func(*http.Request) (string, bool) { return "", true }
	}
	if c.ClientIP == nil {
		c.ClientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	if c.OriginalURI == nil {
		c.OriginalURI = func(r *http.Request) string { return r.URL.RequestURI() }
	}
	if c.Unmounted == nil {
		c.Unmounted = func(w http.ResponseWriter, _ *http.Request, _ string) error {
			w.Header().Set("Cache-Control", "no-store")
			return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "ambiguous path: dot segments, or an encoded '/' or '\\'"})
		}
	}
	if c.SessionDeleted == nil {
		c.SessionDeleted = func(sessionstore.Key) {}
	}
	return &Server{c: c, cop: http.NewCrossOriginProtection()}
}

// Serve serves the endpoint (the path after the prefix: "/login"); the
// caller has made sure the mount is known. Endpoints never reach the
// upstream.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, endpoint string) error {
	w.Header().Set("Cache-Control", "no-store")
	switch endpoint {
	case "/login":
		return s.serveLogin(w, r)
	case "/logout":
		return s.serveLogout(w, r)
	case "/whoami":
		return s.serveWhoami(w, r)
	case "/sessions":
		return s.serveSessions(w, r)
	case "/jwks.json":
		return s.serveJWKS(w, r)
	case "/auth":
		if s.c.Auth != nil {
			return s.serveAuth(w, r)
		}
	}
	if rest, ok := strings.CutPrefix(endpoint, "/oidc/"); ok && s.c.OIDC != nil {
		return s.serveOIDC(w, r, rest)
	}
	if s.c.MFA != nil {
		if rest, ok := strings.CutPrefix(endpoint, "/mfa"); ok && (rest == "" || rest[0] == '/') {
			return s.serveMFA(w, r, rest)
		}
		if rest, ok := strings.CutPrefix(endpoint, "/passkey/"); ok {
			return s.servePasskey(w, r, rest)
		}
	}
	return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}

func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return pages.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
}

// mount is the mount prefix, for code that runs only once it is known.
func (s *Server) mount(r *http.Request) string {
	m, _ := s.c.Mount(r)
	return m
}

// endpointURL is the URL of one of the handler's endpoints ("/login") as
// the browser sees it: under the mount prefix, if one was stripped.
func (s *Server) endpointURL(r *http.Request, endpoint string) string {
	return s.mount(r) + s.c.Prefix + endpoint
}

// home is where a visitor goes when no (safe) redirect target is given:
// the root of the site as the browser sees it, under the mount.
func home(mount string) string { return mount + "/" }

// sameOrigin rejects cross-origin state-changing requests, judged by
// Sec-Fetch-Site and Origin as http.CrossOriginProtection does. A person
// whose browser posted a form from another site gets a page that says
// what happened; API clients get JSON.
func (s *Server) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if err := s.cop.Check(r); err != nil {
		s.c.Logger.Warn("cross-origin request refused", s.zapRemoteIP(r), zap.String("path", r.URL.Path))
		if pages.WantsPage(r) {
			s.renderMessage(w, http.StatusForbidden, pages.Message{
				Heading:  "Form from another site refused",
				Text:     "This form was sent from a page on another site, so it was not accepted and nothing has changed. To sign in or out, use this site's own page.",
				Link:     s.endpointURL(r, "/login"),
				LinkText: "Go to the sign-in page",
			})
		} else {
			pages.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused"})
		}
		return false
	}
	return true
}

func (s *Server) zapRemoteIP(r *http.Request) zap.Field {
	return zap.String("remote_ip", s.c.ClientIP(r))
}
