package caddymodule

import (
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// The identity sources a handler accepts sessions of (see package
// session: a session is accepted only while its source vouches for it).

// passwordSource vouches for sessions of users whose password hash has
// the fingerprint recorded at login: a user removed from the Caddyfile or
// users_file, or whose password changed, loses every session at once.
type passwordSource struct{ users *userDB }

func (p passwordSource) Accepts(rec sessionstore.Record) bool {
	fp, ok := p.users.fingerprint(rec.User)
	return ok && rec.Fingerprint != "" && fp == rec.Fingerprint
}

// setupSources makes the identity sources this handler accepts.
func (h *Handler) setupSources() {
	h.sources = map[string]identity.Source{identity.Password: passwordSource{h.users}}
	if h.UpstreamControl {
		h.sources[identity.Upstream] = identity.UpstreamSource{}
	}
	for _, p := range h.oidc.List() {
		h.sources[p.Source()] = p
	}
	if len(h.users.users.Load().accounts) == 0 && len(h.sources) == 1 {
		h.logger.Warn("no users and no identity provider configured: the login page will refuse everyone")
	}
}
