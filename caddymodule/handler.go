// Package caddymodule is edgesession's Caddy glue: the http.handlers.session
// handler, its Caddyfile directive, its store guest modules, its matcher,
// admin API and `caddy session` command. The pages and APIs it serves
// itself under its path prefix (login, logout, whoami...) are package
// endpoints'.
//
// A request flows one way through it: request → cookie → store → session →
// trusted headers → upstream → upstream control → store → cookie.
package caddymodule

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/authz"
	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/endpoints"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/identity/oidc"
	"github.com/edgesession/edgesession/identity/password"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/throttle"
	"github.com/edgesession/edgesession/upstream"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults, as documented in the README and SPEC §1.
const (
	DefaultPathPrefix   = "/.session"
	DefaultHeaderPrefix = "X-Session-"
	DefaultCookieName   = "caddy_session"
	DefaultIdleTimeout  = 30 * time.Minute
	DefaultLifetime     = 12 * time.Hour
	DefaultLoginLimit   = 5
	DefaultLoginWindow  = 15 * time.Minute
)

// Handler gives the requests it handles a session: it keeps the session
// cookie, keeps session data in a store, serves login, logout and whoami
// under PathPrefix, requires a logged-in user for everything that is not
// Public, and forwards the user and the session data to the next handler
// as trusted request headers that no client can forge.
type Handler struct {
	// Where sessions are kept: a module in http.handlers.session.stores,
	// named by its "backend" key ("bolt", "memory", "redis" or "cookie").
	// Default: bolt, in Caddy's data directory.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=http.handlers.session.stores inline_key=backend"`

	// Secrets sign and encrypt the session cookie. The first one signs new
	// cookies; all of them are accepted, so a secret can be rotated by
	// putting the new one first. Each must be at least 32 bytes; {env.*}
	// and {file.*} placeholders are replaced. Default: a secret generated
	// on first start and kept in Caddy's storage.
	Secrets []string `json:"secrets,omitempty"`

	// Users who may log in, with password hashes as printed by
	// `caddy hash-password` (bcrypt or argon2id), and their groups.
	Users []User `json:"users,omitempty"`

	// UsersFile is an htpasswd-style file of "name:hash" lines (same
	// hashes), or "name:hash:group,group" lines for users with groups.
	// Blank lines and lines starting with # are skipped. It is read again
	// when it changes. A user named both here and in Users takes the hash
	// and groups from Users.
	UsersFile string `json:"users_file,omitempty"`

	// Realm puts this handler's sessions in a namespace of their own:
	// cookies are signed and encrypted with keys of the realm, and stored
	// under keys of the realm, so no other realm can read or accept them
	// even with the same secret, store and users. Letters, digits, '.',
	// '_' and '-'; at most 64. Without a realm, a session is still only
	// accepted by a handler that would have issued it (same site, same
	// user and password; see SPEC §6). With a realm and no cookie name,
	// the cookie is called caddy_session_<realm>. The realm's assertions
	// are signed with keys of its own (see Assertion): give each app on a
	// host a realm of its own.
	Realm string `json:"realm,omitempty"`

	// PathPrefix is where the handler serves its own endpoints:
	// <prefix>/login, <prefix>/logout and <prefix>/whoami. Default
	// "/.session".
	PathPrefix string `json:"path_prefix,omitempty"`

	// PublicRaw are request matcher sets for requests that do not need a
	// logged-in user. A request is public only if they match it in every
	// reading an upstream may make of it (its path with ";params" cut, in
	// lower case, folded from Unicode, split into a PHP script and its
	// PATH_INFO; its method upper-cased or overridden): see SplitPath.
	// Public requests still get trusted headers stripped, and the session
	// forwarded if there is one.
	PublicRaw caddyhttp.RawMatcherSets `json:"public,omitempty" caddy:"namespace=http.matchers"`

	// Rules say who may reach what: the first rule whose matchers match a
	// request lets in the users and groups it names and refuses every
	// other logged-in user with 403. Requests no rule matches are open to
	// every logged-in user; public requests to anyone. See Rule.
	Rules []Rule `json:"rules,omitempty"`

	// SplitPath are the script split markers of the upstream, as
	// php_fastcgi's split_path: a path with one followed by more path,
	// such as /index.php/admin/users, is judged by `public` and the rules
	// both as the script (/index.php) and as the route a front controller
	// takes from its PATH_INFO (/admin/users). Compared without regard to
	// ASCII case. Default [".php"].
	SplitPath []string `json:"split_path,omitempty"`

	// Assertion, if set, sends the upstream a short-lived signed token of
	// who the user is. See Assertion.
	Assertion *Assertion `json:"assertion,omitempty"`

	// IdleTimeout ends a session that has not been used for this long.
	// Default 30m; 0 disables it.
	IdleTimeout *caddy.Duration `json:"idle_timeout,omitempty"`

	// Lifetime ends every session this long after login, however active.
	// Default 12h.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`

	// Cookie sets the session cookie's name and attributes.
	Cookie Cookie `json:"cookie,omitzero"`

	// HeaderPrefix starts the names of the trusted headers: the user goes
	// as <prefix>User, session data key k as <prefix>Data-<K>. Every
	// request header with this prefix is removed before the upstream.
	// Default "X-Session-".
	HeaderPrefix string `json:"header_prefix,omitempty"`

	// UserHeaders are extra request headers that carry the user's name
	// (e.g. Remote-User). Like the prefix, they are always removed from
	// the client's request first.
	UserHeaders []string `json:"user_headers,omitempty"`

	// ForwardCookie keeps the session cookie in the request to the
	// upstream. Default false: it is removed, other cookies are kept.
	ForwardCookie bool `json:"forward_cookie,omitempty"`

	// UpstreamControl lets the upstream change the session with response
	// headers (<prefix>Set-<Key>, <prefix>Delete, <prefix>Login,
	// <prefix>Logout). Default false; the headers are removed either way.
	UpstreamControl bool `json:"upstream_control,omitempty"`

	// Headers forwards the user or a session data key under header names
	// the app already trusts: each key is a header name, each value
	// "user" or "data.<key>", e.g. {"X-Forwarded-Email": "data.email",
	// "User-Name": "user"}. Like the prefix and the user headers, each
	// name is always removed from the client's request first. A name may
	// not start with HeaderPrefix.
	Headers map[string]string `json:"headers,omitempty"`

	// LogoutCookies are the app's own cookies (its session, e.g. tt-rss's
	// ttrss_sid or Django's sessionid) that are expired whenever a session
	// ends here: at logout, when the upstream logs the user out, when a
	// login replaces what may be another user's session, when a session
	// is found expired or revoked, and when a browser that signed in here
	// comes back without a session (its cookie expired in the browser,
	// was dropped by a restart, or no longer decodes): a marker cookie,
	// <cookie name>~signedin (with the __Host- or __Secure- prefix on
	// HTTPS), is set at login for that, and set to 0 when a session ends,
	// so that each end is acted on once. The app's session then does not
	// outlive ours. They are also kept from the upstream in that request.
	// An anonymous visitor's cookies (one that never signed in here, or
	// signed out) are left alone.
	LogoutCookies []AppCookie `json:"logout_cookies,omitempty"`

	// ClearSiteData is sent as a Clear-Site-Data header on logout (the
	// logout endpoint and the upstream's logout): "cookies", "storage",
	// "cache" or "*". "cookies" clears every cookie of the whole site
	// (the registrable domain, all its subdomains), ours too. Browsers
	// honour it only over HTTPS and on localhost.
	ClearSiteData []string `json:"clear_site_data,omitempty"`

	// HTTPBasic lets clients that cannot fill in a form (CalDAV, WebDAV,
	// git, scripts) send the same users' passwords with HTTP Basic on
	// every request. Such a request is throttled like a login, creates no
	// session and is forwarded as a logged-in one; its Authorization
	// header never reaches the upstream. Off when absent.
	HTTPBasic *HTTPBasic `json:"http_basic,omitempty"`

	// LoginTemplate is a Go html/template file that replaces the built-in
	// login page.
	LoginTemplate string `json:"login_template,omitempty"`

	// Title is the site's name as people know it ("Acme Wiki"). The
	// login page says "Sign in to <title>", and every page the handler
	// serves carries it in its title. Default: none, the pages say only
	// "Sign in", "Sign out".
	Title string `json:"title,omitempty"`

	// LoginLimit throttles password guessing. Default 5 failures in 15m.
	LoginLimit *LoginLimit `json:"login_limit,omitempty"`

	// OIDC are the OpenID Connect providers users may sign in with, one
	// button each on the login page.
	OIDC []*OIDCProvider `json:"oidc,omitempty"`

	// AuthEndpoint serves <prefix>/auth, the auth endpoint for a proxy in
	// front (nginx auth_request, Traefik ForwardAuth, Caddy's
	// forward_auth): it judges the original request that the proxy
	// reports in X-Forwarded-Method, X-Forwarded-Uri (or X-Original-URI),
	// X-Forwarded-Host and X-Forwarded-Proto, read only from a proxy in
	// the server's trusted_proxies, and answers 200 with the trusted
	// headers, 401 or a redirect to the login page, or 403. Default off.
	AuthEndpoint bool `json:"auth_endpoint,omitempty"`

	// RedirectHosts are other hosts to which the login and logout pages
	// may send a browser back with an absolute redirect, rd or next URL:
	// a host name, or "*." and a domain for every host under it (never the
	// domain itself), with a port only if the URLs name one. https only,
	// unless the page itself was served over http. Anything else goes to
	// the site's home.
	RedirectHosts []string `json:"redirect_hosts,omitempty"`

	// MFA turns on second factors (TOTP, passkeys, recovery codes) for
	// the local users, and says who must prove one. See MFA.
	MFA *MFA `json:"mfa,omitempty"`

	store      sessionstore.Store // nil when sessions live in the cookie
	sources    map[string]identity.Source
	sessions   *session.Manager
	oidc       *oidc.Set // nil without providers
	scope      string    // the throttle's scope
	codec      *cookie.Codec
	public     caddyhttp.MatcherSets
	rules      authz.Rules
	readings   authz.Config
	assert     *asserter
	users      *password.DB
	throttle   *throttle.Throttle
	pages      *pages.Set
	endpoints  *endpoints.Server
	mfa        *endpoints.MFA // nil without MFA
	redirects  endpoints.RedirectHosts
	strip      upstream.Trusted
	fwd        upstream.Forwarder
	idle       time.Duration
	lifetime   time.Duration
	touchEvery time.Duration
	logger     *zap.Logger
	metrics    *metrics
}

// User is one user who may log in.
type User = password.User

// LoginLimit is how many failed logins are allowed in a window.
type LoginLimit struct {
	// Failures for one username from one client IP before further
	// attempts are refused with 429; one client IP may fail four times
	// as many times over all usernames.
	Failures int `json:"failures"`
	// Window is how long failures are counted and a lockout lasts.
	Window caddy.Duration `json:"window"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session",
		New: func() caddy.Module { return new(Handler) },
	}
}

// serve is the request path, the flow of SPEC §2-§5; ServeHTTP wraps it
// so that no header with the prefix leaves on any path. Each step is one
// call into the package that owns it:
//
//  1. strip     upstream: no trusted header comes from the client
//  2. endpoints endpoints: <prefix>/login, /logout, ... never go upstream
//  3. load      session: the cookie's session (touched), or a Basic login
//  4. judge     authz: `public` in every reading, then the rules
//  5. forward   upstream, assertion: who the user is, as trusted headers
//  6. next      the upstream answers through upstream.Writer, which
//  7. control   applies its control headers to the session and saves it
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, ws *writers) error {
	// 1. Strip.
	h.strip.StripRequest(r)
	placeholders := placeholdersFor(r)
	basic := h.endpoints.TakeBasic(r)

	// 2. The handler's own endpoints: every page and redirect of theirs
	// is under the mount, so the mount must be known.
	if endpoint, ok := strings.CutPrefix(r.URL.Path, h.PathPrefix); ok && (endpoint == "" || endpoint[0] == '/') {
		if _, sure := findMount(r); !sure {
			return h.refuseUnknownMount(w, r, "endpoint")
		}
		return h.endpoints.Serve(w, r, endpoint)
	}

	// 3. Load. On a store error s is nil: fail closed (public requests go
	// on without a session, the rest are refused until the store is back).
	// Not even a store error stops a Basic client: it needs no store
	// (only the throttle, which fails closed with the Redis store: 503).
	s, err := h.sessions.Load(w, r)
	byBasic := (s == nil || s.Rec.User == "") && basic.Given()
	if byBasic {
		if s, err = h.endpoints.BasicLogin(w, r, basic); s == nil {
			return err // answered
		}
	}

	// 4. Judge: without a user, only what is public in every reading;
	// with one, what the rules allow.
	var rd authz.Readings // read once, when public or the rules need it
	fwd := s              // the session forwarded
	switch v, jerr := h.judge(r, s, err, &rd); v {
	case endpoints.Refused:
		return caddyhttp.Error(http.StatusBadRequest, jerr)
	case endpoints.StoreDown:
		return endpoints.ServiceUnavailable(w)
	case endpoints.LoginRequired:
		return h.endpoints.LoginRequired(w, r)
	case endpoints.Forbidden:
		return h.endpoints.Forbidden(w, r, s)
	case endpoints.SecondFactor:
		return h.endpoints.SecondFactorRequired(w, r, s)
	case endpoints.Anonymous:
		// Public, for a session that is no one's yet: nothing of it
		// goes upstream: no user, no data, no assertion.
		fwd = nil
	}
	if fwd != nil {
		// 5. Forward.
		h.forward(r, fwd)
		placeholders.set(fwd)
		if !h.forwardAssertion(r, fwd) {
			return h.refuseUnknownMount(w, r, "assertion")
		}
	}
	if !h.ForwardCookie {
		cookie.Remove(r.Header, h.Cookie.Name)
	}
	h.sessions.RemoveMarkers(r.Header)

	// 6 and 7. Next, through the writer that applies upstream control (a
	// Basic client's session is in no store to write to: no control).
	h.wrapResponse(ws, w, r, s, h.UpstreamControl && !byBasic)
	rw := &ws.upstream
	err = next.ServeHTTP(rw, r)
	rw.Finish()
	rw.StripTrailers()
	return err
}

// judge is step 4 of the request path, for a request the handler
// proxies and for one the auth endpoint is asked about alike: without a
// user (s nil or anonymous), only what `public` matches in every reading
// (storeErr: the store failed to find a session) may pass; with one,
// what the rules allow. A session whose user must prove a second factor
// (`mfa required`) and has not is no user yet: SecondFactor for what is
// not public, Anonymous (nothing of it forwarded) for what is. It
// identifies the session to the request (its groups, the matcher's
// variable).
func (h *Handler) judge(r *http.Request, s *session.Session, storeErr error, rd *authz.Readings) (endpoints.Verdict, error) {
	if s == nil || s.Rec.User == "" {
		public, err := h.isPublic(r, rd)
		switch {
		case err != nil:
			return endpoints.Refused, err
		case !public && storeErr != nil:
			return endpoints.StoreDown, nil
		case !public:
			return endpoints.LoginRequired, nil
		}
	}
	h.identify(r, s)
	if s != nil && h.mfaPending(s) {
		h.identify(r, nil)
		public, err := h.isPublic(r, rd)
		switch {
		case err != nil:
			return endpoints.Refused, err
		case !public:
			h.logger.Debug("second factor required by the policy", zap.String("user", s.Rec.User), zapPath(r), zapRemoteIP(r))
			return endpoints.SecondFactor, nil
		}
		return endpoints.Anonymous, nil
	}
	if s != nil {
		return h.authorize(r, s, rd)
	}
	return endpoints.Pass, nil
}

// hasMFA reports whether rec's session proved a second factor, as `mfa
// required` and a rule's mfa ask: its amr says "mfa" (an OpenID
// provider's counts unless oidc_amr is off, in which case it is never
// recorded: see identity/oidc).
func (h *Handler) hasMFA(rec sessionstore.Record) bool {
	return identity.HasMFA(amrOf(rec))
}

// passwordOnly is the amr of a password session that recorded none. Not
// to be modified.
var passwordOnly = []string{identity.AmrPassword}

// amrOf is identity.AMR(rec), without allocating on every request.
func amrOf(rec sessionstore.Record) []string {
	if len(rec.Amr) == 0 && rec.User != "" && rec.Source == identity.Password {
		return passwordOnly
	}
	return identity.AMR(rec)
}

// mfaPending reports whether s is of a local user whom `mfa required`
// names and who has not proved a second factor: a session from before
// the policy named them (or from an HTTP Basic login), which must step up
// before it is anyone's. The groups are s.Groups (identify).
func (h *Handler) mfaPending(s *session.Session) bool {
	return h.mfa.Owes(s.Rec, s.Groups)
}

// isPublic reports whether r may go on without a user: whether the
// public matchers match it in every reading the upstream may make of it
// (see package authz). A request whose readings cannot be enumerated is
// never public.
func (h *Handler) isPublic(r *http.Request, rd *authz.Readings) (bool, error) {
	if len(h.public) == 0 {
		return false, nil
	}
	rd.Read(r, &h.readings)
	return authz.EveryReadingMatches(h.public, r, rd)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
