// Package caddymodule is edgesession's Caddy glue: the http.handlers.session
// handler, its Caddyfile directive, its store guest modules, and the login,
// logout and whoami endpoints it serves itself.
//
// A request flows one way through it: request → cookie → store → session →
// trusted headers → upstream → upstream control → store → cookie.
package caddymodule

import (
	"encoding/json"
	"fmt"
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

// Provision sets up the handler: its store, secrets, users and pages.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.metrics = registerMetrics(ctx.GetMetricsRegistry(), h.logger)
	h.setDefaults()
	if err := h.validate(); err != nil {
		return err
	}

	if h.StoreRaw == nil {
		h.StoreRaw = json.RawMessage(`{"backend":"bolt"}`)
	}
	mod, err := ctx.LoadModule(h, "StoreRaw")
	if err != nil {
		return fmt.Errorf("loading session store: %w", err)
	}
	switch m := mod.(type) {
	case *CookieStore:
		h.store = nil
	case StoreProvider:
		h.store = closingStore{instrument(m.SessionStore(), h.metrics)}
	default:
		return fmt.Errorf("session store module %T provides no store", mod)
	}

	secrets, err := h.loadSecrets(ctx)
	if err != nil {
		return err
	}
	h.codec, err = cookie.NewCodec(h.Cookie.Name, h.Realm, secrets, h.lifetime)
	if err != nil {
		return err
	}

	if h.PublicRaw != nil {
		sets, err := ctx.LoadModule(h, "PublicRaw")
		if err != nil {
			return fmt.Errorf("loading public matchers: %w", err)
		}
		if err := h.public.FromInterface(sets); err != nil {
			return err
		}
	}
	if h.rules, err = loadRules(ctx, h.Rules); err != nil {
		return err
	}

	h.users, err = password.Open(h.Users, h.UsersFile, h.logger)
	if err != nil {
		return err
	}
	if err := h.setupOIDC(ctx, secrets); err != nil {
		return err
	}
	h.setupSources()
	h.setupSessions()
	h.warnBareNames()
	h.throttle = newThrottle(h.LoginLimit, mod, h.logger)
	h.scope = throttleScope(h.Realm, h.Users, h.UsersFile)
	h.pages, err = pages.Load(h.LoginTemplate)
	if err != nil {
		return err
	}
	h.prepareHeaders()
	if err := h.setupAssertion(ctx); err != nil {
		return err
	}
	h.setupEndpoints()
	return nil
}

func (h *Handler) setDefaults() {
	if h.PathPrefix == "" {
		h.PathPrefix = DefaultPathPrefix
	}
	h.PathPrefix = strings.TrimSuffix(h.PathPrefix, "/")
	if h.HeaderPrefix == "" {
		h.HeaderPrefix = DefaultHeaderPrefix
	}
	if h.Cookie.Name == "" {
		h.Cookie.Name = DefaultCookieName
		if h.Realm != "" {
			h.Cookie.Name += "_" + h.Realm
		}
	}
	if h.Cookie.Path == "" {
		h.Cookie.Path = "/"
	}
	h.idle = DefaultIdleTimeout
	if h.IdleTimeout != nil {
		h.idle = time.Duration(*h.IdleTimeout)
	}
	h.lifetime = DefaultLifetime
	if h.Lifetime != 0 {
		h.lifetime = time.Duration(h.Lifetime)
	}
	// Write the last-seen time back at most about 20 times per idle
	// timeout: idle expiry may come up to 5% early, and a busy session
	// costs one store write per interval instead of one per request.
	h.touchEvery = h.idle / 20
	if h.LoginLimit == nil {
		h.LoginLimit = &LoginLimit{Failures: DefaultLoginLimit, Window: caddy.Duration(DefaultLoginWindow)}
	}
	split := h.SplitPath
	if split == nil {
		split = authz.DefaultSplitPath
	}
	h.readings.Split = nil
	for _, m := range split {
		h.readings.Split = append(h.readings.Split, strings.ToLower(m))
	}
}

// prepareHeaders works out the header names of the request path once.
func (h *Handler) prepareHeaders() {
	h.strip = upstream.NewTrusted(h.HeaderPrefix, upstream.TrustedNames(h.UserHeaders, h.Headers))
	h.fwd = upstream.NewForwarder(h.HeaderPrefix, h.UserHeaders, h.Headers)
}

func (h *Handler) validate() error {
	if !strings.HasPrefix(h.PathPrefix, "/") || strings.ContainsAny(h.PathPrefix, "?#") || h.PathPrefix == "" {
		return fmt.Errorf("path_prefix %q: must be a path such as /.session", h.PathPrefix)
	}
	if err := validRealm(h.Realm); err != nil {
		return err
	}
	if h.idle < 0 {
		return fmt.Errorf("idle_timeout %v: must not be negative", h.idle)
	}
	if h.lifetime <= 0 {
		return fmt.Errorf("lifetime %v: must be positive", h.lifetime)
	}
	if err := h.checkHeaderNames(); err != nil {
		return err
	}
	if err := session.ValidateAppLogout(h.Cookie.Name, h.LogoutCookies, h.ClearSiteData); err != nil {
		return err
	}
	if err := validateBasic(h.HTTPBasic, len(h.Users) > 0 || h.UsersFile != ""); err != nil {
		return err
	}
	if err := pages.ValidTitle(h.Title); err != nil {
		return err
	}
	for _, m := range h.SplitPath {
		if err := authz.ValidSplitMarker(m); err != nil {
			return err
		}
	}
	if h.LoginLimit.Failures < 1 || h.LoginLimit.Window <= 0 {
		return fmt.Errorf("login_limit %d %v: need at least 1 failure and a positive window", h.LoginLimit.Failures, time.Duration(h.LoginLimit.Window))
	}
	for _, u := range h.Users {
		if err := identity.ValidUsername(u.Name); err != nil {
			return fmt.Errorf("user %q: %w", u.Name, err)
		}
		if err := identity.ValidGroups(u.Groups); err != nil {
			return fmt.Errorf("user %q: %w", u.Name, err)
		}
	}
	return h.Cookie.Validate()
}

// validRealm accepts "" (no realm) or 1 to 64 letters, digits, '.', '_'
// and '-': a name that fits in a cookie name and a log line as it is.
func validRealm(realm string) error {
	if len(realm) > 64 || strings.ContainsFunc(realm, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-')
	}) {
		return fmt.Errorf("realm %q: want 1 to 64 letters, digits, '.', '_' or '-'", realm)
	}
	return nil
}

// serve is the request path; ServeHTTP wraps it so that no header with
// the prefix leaves on any path. The next handler writes to ws.upstream,
// which serve fills.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, ws *writers) error {
	h.strip.StripRequest(r)
	placeholders := placeholdersFor(r)
	basic := h.endpoints.TakeBasic(r)
	if endpoint, ok := strings.CutPrefix(r.URL.Path, h.PathPrefix); ok && (endpoint == "" || endpoint[0] == '/') {
		// Every page and redirect of the endpoints is under the mount.
		if _, sure := findMount(r); !sure {
			return h.refuseUnknownMount(w, r, "endpoint")
		}
		return h.endpoints.Serve(w, r, endpoint)
	}

	var rd authz.Readings // read when public or rules need them
	// On a store error s is nil: fail closed. Public requests go on
	// without a session; the rest are refused until the store is back.
	s, err := h.sessions.Load(w, r)
	byBasic := (s == nil || s.Rec.User == "") && basic.Given()
	if byBasic {
		// Not even a store error stops a Basic client: it needs no store.
		if s, err = h.endpoints.BasicLogin(w, r, basic); s == nil {
			return err // answered
		}
	}
	if s == nil || s.Rec.User == "" {
		public, merr := h.isPublic(r, &rd)
		if merr != nil {
			return caddyhttp.Error(http.StatusBadRequest, merr)
		}
		if !public {
			if err != nil {
				return endpoints.ServiceUnavailable(w)
			}
			return h.endpoints.LoginRequired(w, r)
		}
	}
	h.identify(r, s)
	if s != nil {
		if done, err := h.authorize(w, r, s, &rd); done {
			return err
		}
		h.forward(r, s)
		placeholders.set(s)
		if !h.forwardAssertion(r, s) {
			return h.refuseUnknownMount(w, r, "assertion")
		}
	}
	if !h.ForwardCookie {
		cookie.Remove(r.Header, h.Cookie.Name)
	}
	h.sessions.RemoveMarkers(r.Header)
	// A Basic client's session is in no store to write to: no control.
	h.wrapResponse(ws, w, r, s, h.UpstreamControl && !byBasic)
	rw := &ws.upstream
	err = next.ServeHTTP(rw, r)
	rw.Finish()
	rw.StripTrailers()
	return err
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
