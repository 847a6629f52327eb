package caddymodule

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/endpoints"
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

	// C: RPID is the WebAuthn relying party ID of passkeys: the site's
	// host name or a parent domain of it (default: the host each request
	// names). Origins are the origins (https://host[:port]) whose pages
	// may use them (default: the request's own).
	RPID    string   `json:"rp_id,omitempty"`
	Origins []string `json:"origins,omitempty"`
}

// MFARequired is who must prove a second factor: everyone, or only the
// users and groups named.
type MFARequired struct {
	Users  []string `json:"users,omitempty"`
	Groups []string `json:"groups,omitempty"`
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
		return nil
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
	}
	sealer, err := mfa.NewSealer(secrets, h.Realm)
	if err != nil {
		return fmt.Errorf("mfa: %w", err)
	}
	// Issuer "" is the request's host, at enrolment.
	h.mfa.Service = &mfa.Service{Store: h.mfa.Store, Claims: h.mfa.Claims, Sealer: sealer, Issuer: h.Title}
	if err := h.mfa.SetSecrets(h.Cookie.Name, h.Realm, secrets); err != nil {
		return fmt.Errorf("mfa: %w", err)
	}
	// C: passkeys.
	h.mfa.RPID, h.mfa.Origins = h.MFA.RPID, h.MFA.Origins
	if h.mfa.PasskeyCookie, err = cookie.NewPurposeCodec("edgesession passkey", "passkey-ceremony", h.Realm, secrets, endpoints.PasskeyCeremonyLifetime); err != nil {
		return err
	}
	h.logger.Debug("mfa on", zap.Bool("required", h.MFA.Required != nil))
	return nil
}
