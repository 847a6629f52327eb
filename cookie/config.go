package cookie

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Config is a cookie's name and attributes, as configured (the handler's
// `cookie` block).
type Config struct {
	// Name of the cookie. Default "caddy_session".
	Name string `json:"name,omitempty"`
	// Domain attribute. Default none: the cookie is host-only.
	Domain string `json:"domain,omitempty"`
	// Path attribute. Default "/".
	Path string `json:"path,omitempty"`
	// Secure is "auto" (the default: Secure when the request came over
	// TLS), "always" or "never".
	Secure string `json:"secure,omitempty"`
	// SameSite is "lax" (the default), "strict" or "none". "none" needs
	// Secure, so with it the cookie is always Secure.
	SameSite string `json:"same_site,omitempty"`
	// Persist makes the cookie outlive the browser session: its Max-Age
	// is the session's remaining lifetime. Default false.
	Persist bool `json:"persist,omitempty"`
}

// Validate checks the name and attributes against what browsers accept.
func (c Config) Validate() error {
	if c.Name == "" || strings.ContainsFunc(c.Name, func(r rune) bool { return !IsTokenChar(r) }) {
		return fmt.Errorf("cookie name %q: not a valid cookie name", c.Name)
	}
	switch c.Secure {
	case "", "auto", "always", "never":
	default:
		return fmt.Errorf("cookie secure %q: want auto, always or never", c.Secure)
	}
	switch c.SameSite {
	case "", "lax", "strict":
	case "none":
		if c.Secure == "never" {
			return fmt.Errorf("cookie same_site none needs a Secure cookie; secure never contradicts it")
		}
	default:
		return fmt.Errorf("cookie same_site %q: want lax, strict or none", c.SameSite)
	}
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, ";\r\n") {
		return fmt.Errorf("cookie path %q: must start with /", c.Path)
	}
	if strings.ContainsAny(c.Domain, "; \r\n") {
		return fmt.Errorf("cookie domain %q: not a domain", c.Domain)
	}
	// The rules of the name prefixes, which browsers match without regard
	// to case: a __Secure- cookie must be Secure; a __Host- one also has
	// path / and no domain.
	switch host := HasPrefixFold(c.Name, "__Host-"); {
	case c.SecurePrefixed() && c.Secure == "never":
		return fmt.Errorf("cookie name %q: the name makes browsers require a Secure cookie; secure never contradicts it", c.Name)
	case host && c.Domain != "":
		return fmt.Errorf("cookie name %q: a __Host- cookie cannot have a domain", c.Name)
	case host && c.Path != "/":
		return fmt.Errorf("cookie name %q: a __Host- cookie must have path /", c.Name)
	}
	return nil
}

// SecurePrefixed reports whether the name is one browsers accept only with
// Secure: __Secure-… or __Host-…, in any case.
func (c Config) SecurePrefixed() bool {
	return HasPrefixFold(c.Name, "__Host-") || HasPrefixFold(c.Name, "__Secure-")
}

// AlwaysSecure reports whether the cookie must carry Secure whatever the
// request: browsers refuse a __Host- or __Secure- cookie without it, and
// one with SameSite=None.
func (c Config) AlwaysSecure() bool {
	return c.Secure == "always" || c.SameSite == "none" || c.SecurePrefixed()
}

// HasPrefixFold reports whether s starts with prefix, ASCII case folded.
func HasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// New makes the cookie called c.Name with value for a response to r,
// with the configured attributes: HttpOnly, Secure as configured (auto:
// when r came over HTTPS, see CameOverHTTPS), SameSite Lax unless set.
func (c Config) New(r *http.Request, value string) *http.Cookie {
	hc := &http.Cookie{
		Name:     c.Name,
		Value:    value,
		Path:     c.Path,
		Domain:   c.Domain,
		HttpOnly: true,
		Secure:   c.AlwaysSecure() || (c.Secure != "never" && CameOverHTTPS(r)),
		SameSite: http.SameSiteLaxMode,
	}
	switch c.SameSite {
	case "strict":
		hc.SameSite = http.SameSiteStrictMode
	case "none":
		hc.SameSite = http.SameSiteNoneMode
	}
	return hc
}

// CameOverHTTPS reports whether the client used TLS: to Caddy, or to a
// proxy in Caddy's trusted_proxies that says so in X-Forwarded-Proto (a
// TLS-terminating load balancer).
func CameOverHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return trusted && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
