package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/upstream"
)

// OIDCProvider is an OpenID Connect provider that users may sign in with
// (Google, Microsoft Entra ID, Keycloak, GitLab, Okta, Authentik, Dex…).
// Each one gets a button on the login page. The login is the
// authorization code flow with PKCE (S256), state and nonce; the ID token
// is verified against the provider's keys.
//
// Register this redirect URI with the provider:
// <scheme>://<host><path_prefix>/oidc/<name>/callback, for example
// https://app.example.com/.session/oidc/google/callback, for every host
// that users reach the site by (or set RedirectURL).
type OIDCProvider struct {
	// Name names the provider in the callback path, on the login page
	// (<path_prefix>/login?provider=<name> starts a login with it), in
	// logs and metrics, and in the sessions it issues. Letters, digits,
	// '.', '_' and '-'; at most 64.
	Name string `json:"name"`

	// Issuer is the provider's issuer URL, exactly as the provider's
	// discovery document (<issuer>/.well-known/openid-configuration)
	// states it. Discovery runs in the background: a provider that is
	// down when Caddy starts is retried, and until it answers, a login
	// with it gets a 503 page.
	Issuer string `json:"issuer"`

	// ClientID is the client ID the provider gave this site.
	ClientID string `json:"client_id"`

	// ClientSecret is the client secret; {env.*} and {file.*}
	// placeholders are replaced. It may be empty for a public client
	// (PKCE is always used).
	ClientSecret string `json:"client_secret,omitempty"`

	// Scopes to ask for. Default: openid email profile. openid is always
	// asked for.
	Scopes []string `json:"scopes,omitempty"`

	// UsernameClaim is the claim that becomes the user's name. Default
	// preferred_username. When it is missing or unusable, the user's
	// email is taken if the provider verified it, else the subject
	// ("sub"), which every provider sends.
	UsernameClaim string `json:"username_claim,omitempty"`
	// usernameFallback is set when UsernameClaim was not given: a user
	// the provider sends no preferred_username for is named by the
	// verified email (see userNameFromClaims).
	usernameFallback bool

	// Names says whose names this provider's users get (SPEC §9: a name
	// belongs to one identity source).
	//
	// "qualified" (the default): the provider's own. Its user alice is
	// "<name>:alice" (X-Session-User: corp:alice), never the local
	// password user alice nor another provider's alice; rules, the
	// session matcher, the sessions page and the admin API name her so.
	// No local name has a ':' (the users file could not hold it), and a
	// provider's name has none, so no two sources share a name.
	//
	// "local": the provider vouches for local names, as the company IdP
	// that owns them does. Its user alice IS the local user alice (same
	// X-Session-User, same sessions page, same rules); a provider whose
	// users can pick their own preferred_username must not have it.
	//
	// Either way the upstream also gets the source: X-Session-Source:
	// oidc:<name>. Changing Names ends the provider's sessions: their
	// users sign in again under the new name.
	Names string `json:"names,omitempty"`

	// GroupsClaim is the claim with the user's groups (a list of
	// strings). Default "groups".
	GroupsClaim string `json:"groups_claim,omitempty"`

	// Claims are copied into the session data, under the claim's name in
	// lower case with '_' and '.' as '-' (preferred_username becomes
	// preferred-username), so that the upstream gets them as
	// X-Session-Data-* headers. A list (such as groups) is joined with
	// commas. email and name are always copied.
	Claims []string `json:"claims,omitempty"`

	// AllowDomains, AllowEmails and AllowGroups restrict who may sign in:
	// with any of them set, a user must have a verified email
	// (email_verified true, or the string "true") in one of the domains or
	// among the emails, or be in one of the groups. Emails and domains are
	// compared exactly but for the case of ASCII letters: no other
	// character passes for an ASCII one (the Kelvin sign is not a k, a
	// Cyrillic а not an a). Domains are written in ASCII, an
	// internationalised one in its xn-- form. Without any, every user of
	// the provider may sign in.
	AllowDomains []string `json:"allow_domains,omitempty"`
	AllowEmails  []string `json:"allow_emails,omitempty"`
	AllowGroups  []string `json:"allow_groups,omitempty"`

	// Label is the text of the provider's button. Default "Sign in with
	// <name>".
	Label string `json:"label,omitempty"`

	// RedirectURL is the full callback URL registered with the provider,
	// for a site whose scheme or host Caddy cannot tell (behind a proxy
	// that is not in trusted_proxies). Default: built from each request,
	// <scheme>://<host><path_prefix>/oidc/<name>/callback.
	RedirectURL string `json:"redirect_url,omitempty"`

	// ProviderLogout makes a logout end the user's session at the
	// provider too (RP-initiated logout, when the provider has an
	// end_session_endpoint): after the session here is gone, the browser
	// goes to the provider with id_token_hint, and comes back to
	// PostLogoutRedirectURL. Default false: a logout here leaves the user
	// signed in to the provider (and to its other applications).
	ProviderLogout bool `json:"provider_logout,omitempty"`

	// PostLogoutRedirectURL is where the provider sends the browser after
	// its logout; register it with the provider. Default: the site's
	// root, <scheme>://<host>/.
	PostLogoutRedirectURL string `json:"post_logout_redirect_url,omitempty"`
}

// Defaults of OIDCProvider.
var defaultOIDCScopes = []string{oidc.ScopeOpenID, "email", "profile"}

const (
	defaultUsernameClaim = "preferred_username"
	defaultGroupsClaim   = "groups"
)

// OIDCProvider.Names values.
const (
	namesQualified = "qualified"
	namesLocal     = "local"
)

// oidcSourcePrefix starts the Record.Source of a provider's sessions.
const oidcSourcePrefix = "oidc:"

// oidcProviders are a handler's providers, in the order configured.
type oidcProviders struct {
	list   []*oidcProvider
	byName map[string]*oidcProvider
	// stateCodec seals the in-progress login cookies, hintCodec the
	// logout hint cookies: keys of their own, so that no cookie decodes
	// as another kind.
	stateCodec *cookie.Codec
	hintCodec  *cookie.Codec
	metrics    *prometheus.CounterVec
}

func (ps *oidcProviders) get(name string) *oidcProvider {
	if ps == nil {
		return nil
	}
	return ps.byName[name]
}

// oidcProvider is one provider at run time.
type oidcProvider struct {
	OIDCProvider
	secret      string // ClientSecret, placeholders replaced
	source      string // oidc:<name>
	fingerprint string
	client      *http.Client
	logger      *zap.Logger
	// Back-channel logouts: the limits per client address, the budget of
	// key fetches, and the log of refusals (oidc_backchannel_limits.go).
	logoutAddrs    *addressLimits
	keys           *keyFetches
	logoutRefusals *refusalLog

	disc    atomic.Pointer[oidcDiscovery] // nil until discovery succeeded
	trying  sync.Mutex                    // held during a discovery
	lastErr error                         // of the last discovery; guarded by trying
	lastTry time.Time                     // guarded by trying
}

// oidcStateLifetime is how long a login may stay at the provider.
const oidcStateLifetime = 10 * time.Minute

// validate checks the provider's settings and fills in the defaults.
func (p *OIDCProvider) validate() error {
	if err := identity.ValidSourceName(p.Name); err != nil {
		return err
	}
	if err := validIssuer(p.Issuer); err != nil {
		return fmt.Errorf("oidc %s: %w", p.Name, err)
	}
	if p.ClientID == "" {
		return fmt.Errorf("oidc %s: client_id is required", p.Name)
	}
	if len(p.Scopes) == 0 {
		p.Scopes = defaultOIDCScopes
	}
	if !containsString(p.Scopes, oidc.ScopeOpenID) {
		p.Scopes = append([]string{oidc.ScopeOpenID}, p.Scopes...)
	}
	for _, s := range p.Scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r >= 0x7f }) {
			return fmt.Errorf("oidc %s: scope %q: not a valid scope", p.Name, s)
		}
	}
	if p.UsernameClaim == "" {
		p.UsernameClaim = defaultUsernameClaim
		p.usernameFallback = true
	}
	switch p.Names {
	case "":
		p.Names = namesQualified
	case namesQualified, namesLocal:
	default:
		return fmt.Errorf("oidc %s: names %q: want qualified (the provider's users are %s:<name>) or local (the provider vouches for local names)", p.Name, p.Names, p.Name)
	}
	if p.GroupsClaim == "" {
		p.GroupsClaim = defaultGroupsClaim
	}
	for _, c := range p.Claims {
		if !upstream.ValidDataKey(claimDataKey(c)) {
			return fmt.Errorf("oidc %s: claim %q: its session data key %q is not a valid key (letters, digits, '-', '_', '.'; at most 64)", p.Name, c, claimDataKey(c))
		}
	}
	for _, d := range p.AllowDomains {
		if !validEmailDomain(d) {
			return fmt.Errorf("oidc %s: allow_domains %q: want a domain such as example.com (an internationalised one in its ASCII form, xn--…)", p.Name, d)
		}
	}
	for _, e := range p.AllowEmails {
		if at := strings.LastIndexByte(e, '@'); at <= 0 || at == len(e)-1 || strings.ContainsAny(e, " \t,") {
			return fmt.Errorf("oidc %s: allow_emails %q: want an email address", p.Name, e)
		}
	}
	if err := identity.ValidGroups(p.AllowGroups); err != nil {
		return fmt.Errorf("oidc %s: allow_groups: %w", p.Name, err)
	}
	if p.RedirectURL != "" {
		if err := validRedirectURL(p.RedirectURL); err != nil {
			return fmt.Errorf("oidc %s: %w", p.Name, err)
		}
	}
	if p.PostLogoutRedirectURL != "" {
		if u, err := parseAbsoluteURL(p.PostLogoutRedirectURL); err != nil || u.Fragment != "" {
			return fmt.Errorf("oidc %s: post_logout_redirect_url %q: want an absolute http(s) URL", p.Name, p.PostLogoutRedirectURL)
		}
	}
	if p.Label == "" {
		p.Label = "Sign in with " + p.Name
	}
	return nil
}

func validIssuer(issuer string) error {
	u, err := parseAbsoluteURL(issuer)
	if err != nil {
		return fmt.Errorf("issuer %q: %w", issuer, err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q: an issuer has no query or fragment", issuer)
	}
	return nil
}

func validRedirectURL(s string) error {
	u, err := parseAbsoluteURL(s)
	if err != nil || u.Fragment != "" {
		return fmt.Errorf("redirect_url %q: want an absolute http(s) URL ending in /oidc/<name>/callback", s)
	}
	return nil
}

func containsString(list []string, s string) bool { return slices.Contains(list, s) }

// parseAbsoluteURL accepts an absolute http or https URL with a host.
func parseAbsoluteURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("want an absolute http(s) URL")
	}
	return u, nil
}

// resolvePlaceholders replaces {env.*} and {file.*} in s, as for secrets,
// without their minimum length.
func resolvePlaceholders(s string) (string, error) {
	v, err := caddy.NewEmptyReplacer().ReplaceFunc(s, func(key string, _ any) (any, error) {
		if name, ok := strings.CutPrefix(key, "env."); ok {
			v := os.Getenv(name)
			if v == "" {
				return nil, fmt.Errorf("environment variable %s is unset or empty", name)
			}
			return v, nil
		}
		if path, ok := strings.CutPrefix(key, "file."); ok {
			if fi, err := os.Stat(path); err != nil {
				return nil, err
			} else if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("%s is not a regular file", path)
			}
			b, err := readFileAtMost(path, maxSecretFile)
			return string(b), err
		}
		return nil, fmt.Errorf("only {env.*} and {file.*} placeholders are replaced here (write a literal brace as \\{)")
	})
	return strings.TrimSpace(v), err
}

// setupOIDC provisions the providers: their secrets, the state cookie
// codec, and discovery in the background. Nothing here waits for a
// provider: one that is down when Caddy starts is retried until it
// answers or the config is unloaded.
func (h *Handler) setupOIDC(ctx caddy.Context, secrets [][]byte) error {
	if len(h.OIDC) == 0 {
		return nil
	}
	ps := &oidcProviders{byName: map[string]*oidcProvider{}, metrics: registerOIDCMetrics(ctx.GetMetricsRegistry(), h.logger)}
	var err error
	ps.stateCodec, err = cookie.NewPurposeCodec("edgesession oidc state", "oidc-state", h.Realm, secrets, oidcStateLifetime)
	if err != nil {
		return err
	}
	ps.hintCodec, err = cookie.NewPurposeCodec("edgesession oidc logout", "oidc-logout", h.Realm, secrets, h.lifetime)
	if err != nil {
		return err
	}
	for _, cfg := range h.OIDC {
		if cfg == nil {
			return fmt.Errorf("oidc: empty provider")
		}
		if err := cfg.validate(); err != nil {
			return err
		}
		if ps.byName[cfg.Name] != nil {
			return fmt.Errorf("oidc %s: given twice", cfg.Name)
		}
		p := &oidcProvider{
			OIDCProvider: *cfg,
			source:       oidcSourcePrefix + cfg.Name,
			client:       &http.Client{Timeout: oidcHTTPTimeout},
			logger:       h.logger.With(zap.String("provider", cfg.Name)),
			logoutAddrs:  newAddressLimits(),
			keys:         newKeyFetches(),
		}
		p.logoutRefusals = newRefusalLog(p.logger, refusalLogEvery)
		if cfg.ClientSecret != "" {
			v, err := resolvePlaceholders(cfg.ClientSecret)
			if err != nil {
				return fmt.Errorf("oidc %s: client_secret: %w", cfg.Name, err)
			}
			p.secret = v
		}
		p.fingerprint = p.configFingerprint()
		ps.list = append(ps.list, p)
		ps.byName[p.Name] = p
		go p.discoverInBackground(ctx)
	}
	h.oidc = ps
	return nil
}

// configFingerprint ties a session to what it was issued under: the
// provider (issuer and client) and the rules that admitted its user. A
// provider re-pointed to another issuer or client, or whose allow-lists
// or username claim changed, no longer accepts the sessions it issued
// before: their users sign in again, under the rules as they are now.
func (p *oidcProvider) configFingerprint() string {
	b, _ := json.Marshal([]any{p.Issuer, p.ClientID, p.UsernameClaim, p.usernameFallback, p.GroupsClaim, p.Names, p.AllowDomains, p.AllowEmails, p.AllowGroups})
	sum := sha256.Sum256(b)
	// oidc2: names no longer fall back past an unusable claim, and
	// groups are qualified like names; the sessions of oidc1 were issued
	// under the old rules and end.
	return "oidc2:" + hex.EncodeToString(sum[:16])
}

// accepts implements identity.Source: a session of this provider is a
// login while the provider is configured as it was at login. (What
// follows the provider's fingerprint identifies the user at the provider:
// see loginFingerprint.)
func (p *oidcProvider) Accepts(rec sessionstore.Record) bool {
	return p.owns(rec.User) && (rec.Fingerprint == p.fingerprint || strings.HasPrefix(rec.Fingerprint, p.fingerprint+":"))
}

// userName is the name this provider's user called name (a valid local
// name: see identify) gets: qualified by the provider's name unless the
// provider vouches for local names.
func (p *oidcProvider) userName(name string) string {
	if p.Names == namesLocal {
		return name
	}
	return p.Name + ":" + name
}

// groupNames are the groups this provider's user is in, as rules, the
// matcher and X-Session-Groups see them: "<provider>:<group>" unless the
// provider vouches for local names. A provider's groups are its own (at
// GitLab a user creates groups at will): they are not local groups.
func (p *oidcProvider) groupNames(groups []string) []string {
	if p.Names == namesLocal || len(groups) == 0 {
		return groups
	}
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = p.Name + ":" + g
	}
	return out
}

// owns reports whether user is a name this provider gives as it is
// configured now: a session issued under the other Names (or before
// names were qualified) is no login, so that a provider's "admin" of
// yesterday does not stay the local admin today.
func (p *oidcProvider) owns(user string) bool {
	if p.Names == namesLocal {
		return !strings.Contains(user, ":")
	}
	n := len(p.Name)
	return len(user) > n+1 && user[n] == ':' && user[:n] == p.Name
}

// registerOIDCMetrics registers the per-provider login counter, created
// once per process like the handler's other collectors.
func registerOIDCMetrics(reg prometheus.Registerer, logger *zap.Logger) *prometheus.CounterVec {
	if reg != nil {
		if err := reg.Register(oidcLogins); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				logger.Warn("cannot register oidc metrics", zap.Error(err))
			}
		}
	}
	return oidcLogins
}

var oidcLogins = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy", Subsystem: "session", Name: "oidc_logins_total",
	Help: "Logins through an OIDC provider by provider and result: success, refused (allow-lists), failure (the provider's answer did not verify, or the user cancelled), error (provider or store unreachable).",
}, []string{"provider", "result"})

// Interface guards
var _ identity.Source = (*oidcProvider)(nil)
