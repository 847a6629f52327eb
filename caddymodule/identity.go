package caddymodule

import (
	"github.com/edgesession/edgesession/identity"
)

// The identity sources a handler accepts sessions of (see package
// session: a session is accepted only while its source vouches for it).

// setupSources makes the identity sources this handler accepts.
func (h *Handler) setupSources() {
	h.sources = map[string]identity.Source{identity.Password: h.users}
	if h.UpstreamControl {
		h.sources[identity.Upstream] = identity.UpstreamSource{}
	}
	for _, p := range h.oidc.List() {
		h.sources[p.Source()] = p
	}
	if h.users.Count() == 0 && len(h.sources) == 1 {
		h.logger.Warn("no users and no identity provider configured: the login page will refuse everyone")
	}
}
