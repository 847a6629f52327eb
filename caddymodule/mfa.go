package caddymodule

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/endpoints"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/mfa"
	"github.com/edgesession/edgesession/sessionstore"
)

// MFA turns on second factors and passkeys for the local users (SPEC §13):
// TOTP authenticators, passkeys and recovery codes enrolled from the
// sessions page, kept in the session store (never in the cookie), and a
// second step at login for those who have one or must.
type MFA struct {
	// Required says who must prove a second factor at every login; a
	// user who must and has none enrolled is sent to enrol. Absent: no
	// one must (those who enrolled one still prove it).
	Required *MFARequired `json:"required,omitempty"`

	// Issuer is the name an authenticator app shows next to a TOTP
	// code. Default: Title, else the request's host.
	Issuer string `json:"issuer,omitempty"`

	// RPID is the WebAuthn relying party ID passkeys are bound to: a
	// host name, the site's or a domain it is under (a passkey made for
	// example.com also works on app.example.com). Default: the request's
	// host.
	RPID string `json:"rp_id,omitempty"`

	// Origins are the origins (scheme://host[:port], no path) WebAuthn
	// accepts ceremonies from. Default: the request's own origin.
	Origins []string `json:"origins,omitempty"`

	// OIDCAmr says whether an OpenID provider's "mfa" (in its ID token's
	// amr) counts as a second factor here, for `mfa required` and a
	// rule's mfa. Either way the provider's amr is what the upstream
	// gets. Default on.
	OIDCAmr *bool `json:"oidc_amr,omitempty"`
}

// MFARequired is who must prove a second factor: everyone, or only the
// users and groups named.
type MFARequired struct {
	Users  []string `json:"users,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// oidcAmr reports whether a provider's "mfa" counts (OIDCAmr, default on).
func (m *MFA) oidcAmr() bool { return m == nil || m.OIDCAmr == nil || *m.OIDCAmr }

// validate checks m as the Caddyfile parser and Provision both do.
func (m *MFA) validate() error {
	if r := m.Required; r != nil {
		seen := map[string]bool{}
		for _, u := range r.Users {
			if err := identity.ValidUserRef(u); err != nil {
				return fmt.Errorf("required user %q: %w", u, err)
			}
			if seen["u"+u] {
				return fmt.Errorf("required user %q given twice", u)
			}
			seen["u"+u] = true
		}
		for _, g := range r.Groups {
			if !forwardable(g) {
				return fmt.Errorf("required group %q: want 1 to 256 bytes of UTF-8, no comma or control character, no space at either end", g)
			}
			if seen["g"+g] {
				return fmt.Errorf("required group %q given twice", g)
			}
			seen["g"+g] = true
		}
	}
	if m.Issuer != "" {
		if err := validIssuer(m.Issuer); err != nil {
			return err
		}
	}
	if m.RPID != "" && !validHostName(m.RPID) {
		return fmt.Errorf("rp_id %q: want a host name in lower case, such as example.com, without scheme, port or path", m.RPID)
	}
	for _, o := range m.Origins {
		host, err := validOrigin(o)
		if err != nil {
			return fmt.Errorf("origins %q: %w", o, err)
		}
		if m.RPID != "" && host != m.RPID && !strings.HasSuffix(host, "."+m.RPID) {
			return fmt.Errorf("origins %q: its host is not rp_id %s nor under it, so no browser would use a passkey of rp_id there", o, m.RPID)
		}
	}
	return nil
}

// validIssuer accepts what an authenticator app can show and an otpauth
// URL can carry: 1 to 100 bytes of printable UTF-8 without ':' (which
// separates the issuer from the account in the URL's label).
func validIssuer(v string) error {
	if len(v) > 100 || !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) || strings.TrimSpace(v) != v {
		return fmt.Errorf("issuer %q: want 1 to 100 bytes of printable text, no space at either end", v)
	}
	if strings.ContainsRune(v, ':') {
		return fmt.Errorf("issuer %q: no ':' (authenticator apps read it as the end of the issuer)", v)
	}
	return nil
}

// validHostName accepts a DNS host name in lower case: labels of letters,
// digits and '-' (not at either end), 1 to 63 bytes each, at most 253 in
// all. Not an IP address: WebAuthn binds passkeys to domains.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 || net.ParseIP(h) != nil {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	// The last label of a domain is never all digits (that is an IPv4
	// address written short).
	last := h[strings.LastIndexByte(h, '.')+1:]
	return strings.Trim(last, "0123456789") != ""
}

// validOrigin accepts an absolute http(s) origin, as a browser sends it in
// WebAuthn's clientDataJSON: scheme://host[:port], nothing more. It
// returns the host.
func validOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return "", err
	case u.Scheme != "https" && u.Scheme != "http":
		return "", errors.New("want an http or https origin, such as https://example.com")
	case u.Opaque != "" || u.User != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.HasSuffix(o, "#"):
		return "", errors.New("want scheme://host[:port] only: no user, path (not even /), query or fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return "", fmt.Errorf("port %q: want 1 to 65535", p)
		}
	}
	host := u.Hostname()
	if host != "localhost" && !validHostName(host) && net.ParseIP(host) == nil {
		return "", fmt.Errorf("host %q: want a host name in lower case", host)
	}
	if o != u.Scheme+"://"+u.Host {
		return "", errors.New("want it written as a browser sends it: scheme://host[:port] in lower case")
	}
	return host, nil
}

// policy is the provisioned form of m.Required.
func (m *MFA) policy() *mfa.Policy {
	if m.Required == nil {
		return &mfa.Policy{}
	}
	p := &mfa.Policy{Users: m.Required.Users, Groups: m.Required.Groups}
	p.Everyone = len(p.Users) == 0 && len(p.Groups) == 0
	return p
}

// setupMFA makes the second-factor parts (h.mfa) of the handler's
// configuration. Credentials live where sessions live: the cookie store,
// which keeps nothing on the server, cannot keep them.
func (h *Handler) setupMFA(secrets [][]byte) error {
	if h.MFA == nil {
		for i, ru := range h.Rules {
			if ru.MFA {
				return fmt.Errorf("rule #%d says mfa, but second factors are off: turn them on with `mfa` in the session block", i+1)
			}
		}
		return nil
	}
	if err := h.MFA.validate(); err != nil {
		return fmt.Errorf("mfa: %w", err)
	}
	vault, ok := underlyingStore(h.store).(sessionstore.Vault)
	if h.store == nil || !ok {
		return errors.New("mfa: second factors are kept in the session store, and the cookie store keeps nothing on the server: use bolt, memory or redis")
	}
	if _, mem := underlyingStore(h.store).(*sessionstore.Memory); mem {
		h.logger.Warn("mfa: the memory store forgets enrolled second factors and passkeys when Caddy stops; use bolt or redis to keep them")
	}
	h.mfa = &endpoints.MFA{
		Store:  &mfa.Store{Vault: vault},
		Claims: claimsOf(h.store),
		Policy: h.MFA.policy(),
		// A:
		Count: h.metrics.mfaEvent,
	}
	_ = secrets
	h.logger.Debug("mfa on", zap.Bool("required", h.MFA.Required != nil))
	return nil
}
