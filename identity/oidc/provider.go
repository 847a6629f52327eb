package oidc

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// Provider is an OpenID Connect provider that users may sign in with
// (Google, Microsoft Entra ID, Keycloak, GitLab, Okta, Authentik, Dex…).
// Each one gets a button on the login page. The login is the
// authorization code flow with PKCE (S256), state and nonce; the ID token
// is verified against the provider's keys.
//
// Register this redirect URI with the provider:
// <scheme>://<host><path_prefix>/oidc/<name>/callback, for example
// https://app.example.com/.session/oidc/google/callback, for every host
// that users reach the site by (or set RedirectURL).
type Provider struct {
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

// Defaults of Provider.
var defaultScopes = []string{gooidc.ScopeOpenID, "email", "profile"}

const (
	defaultUsernameClaim = "preferred_username"
	defaultGroupsClaim   = "groups"
)

// Provider.Names values.
const (
	NamesQualified = "qualified"
	NamesLocal     = "local"
)

// SourcePrefix starts the Record.Source of a provider's sessions.
const SourcePrefix = "oidc:"

// Validate checks the provider's settings and fills in the defaults.
func (p *Provider) Validate() error {
	if err := identity.ValidSourceName(p.Name); err != nil {
		return err
	}
	if err := ValidIssuer(p.Issuer); err != nil {
		return fmt.Errorf("oidc %s: %w", p.Name, err)
	}
	if p.ClientID == "" {
		return fmt.Errorf("oidc %s: client_id is required", p.Name)
	}
	if len(p.Scopes) == 0 {
		p.Scopes = defaultScopes
	}
	if !slices.Contains(p.Scopes, gooidc.ScopeOpenID) {
		p.Scopes = append([]string{gooidc.ScopeOpenID}, p.Scopes...)
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
		p.Names = NamesQualified
	case NamesQualified, NamesLocal:
	default:
		return fmt.Errorf("oidc %s: names %q: want qualified (the provider's users are %s:<name>) or local (the provider vouches for local names)", p.Name, p.Names, p.Name)
	}
	if p.GroupsClaim == "" {
		p.GroupsClaim = defaultGroupsClaim
	}
	for _, c := range p.Claims {
		if !sessionstore.ValidDataKey(claimDataKey(c)) {
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

// ValidIssuer checks an issuer URL: absolute http(s), no query or fragment.
func ValidIssuer(issuer string) error {
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
