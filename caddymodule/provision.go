package caddymodule

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/edgesession/edgesession/authz"
	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/endpoints"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/identity/password"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/upstream"
)

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
	if err := h.setupMFA(secrets); err != nil {
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

func (h *Handler) validate() (err error) {
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
	if err := checkHeaderNames(h); err != nil {
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
	if h.redirects, err = endpoints.NewRedirectHosts(h.RedirectHosts); err != nil {
		return err
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
