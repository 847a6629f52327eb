package caddymodule

import (
	"github.com/edgesession/edgesession/endpoints"
	"github.com/edgesession/edgesession/identity/oidc"
	"github.com/edgesession/edgesession/sessionstore"
)

// setupEndpoints makes the server of the handler's own endpoints under
// PathPrefix (package endpoints) from its configuration and parts.
// Provision calls it last, once they are all set up.
func (h *Handler) setupEndpoints() {
	m, store := h.metrics, h.store
	c := endpoints.Config{
		Prefix:         h.PathPrefix,
		Title:          h.Title,
		Cookie:         h.Cookie,
		Sessions:       h.sessions,
		Users:          h.users,
		PasswordUsers:  len(h.Users) > 0 || h.UsersFile != "",
		Throttle:       h.throttle,
		ThrottleScope:  h.scope,
		Pages:          h.pages,
		OIDC:           h.oidc,
		Revocation:     func() oidc.Revocation { return revocation(store) },
		SessionDeleted: func(k sessionstore.Key) { hijackedConns.CloseAll(k) },
		Logger:         h.logger,
		Metrics: endpoints.Metrics{
			Login:     func(result string) { m.logins.WithLabelValues(result).Inc() },
			Logout:    func(n int) { m.logouts.Add(float64(n)) },
			OIDCLogin: func(provider, result string) { oidcLogins.WithLabelValues(provider, result).Inc() },
		},
		Mount:       findMount,
		Unmounted:   h.refuseUnknownMount,
		ClientIP:    clientIP,
		OriginalURI: originalRequestURI,

		RedirectHosts: h.redirects,
		Auth:          h.authEndpoint(),
		MFA:           h.mfa,
	}
	// The index by user is behind the wrappers that time the store's
	// operations and close sockets (which do not pass optional interfaces
	// on).
	c.UserIndex, _ = underlyingStore(store).(sessionstore.UserIndex)
	if h.HTTPBasic != nil {
		c.HTTPBasic, c.BasicRealm = true, h.HTTPBasic.Realm
	}
	if h.assert != nil {
		c.JWKS = h.assert.ring.JWKS
	}
	h.endpoints = endpoints.New(c)
}
