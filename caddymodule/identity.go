package caddymodule

import (
	"net"
	"net/http"
	"strings"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// A session belongs to where its user came from (SPEC §6). Each session
// records its identity source (Record.Source), a proof that source can
// check again later (Record.Fingerprint), and the site it was issued for
// (Record.Site). A handler accepts a session only if it would have issued
// it: same site, and a source of its own that still vouches for the user.
// Sessions of other handlers sharing the store and the secret (the default
// bolt file and generated secret are shared by every site of a Caddy) are
// no login here.

// setupSources makes the identity sources this handler accepts.
func (h *Handler) setupSources() {
	h.sources = map[string]identity.Source{identity.Password: h.users}
	if h.UpstreamControl {
		h.sources[identity.Upstream] = identity.UpstreamSource{}
	}
	if h.oidc != nil {
		for _, p := range h.oidc.list {
			h.sources[p.source] = p
		}
	}
	if h.users.Count() == 0 && len(h.sources) == 1 {
		h.logger.Warn("no users and no identity provider configured: the login page will refuse everyone")
	}
}

// site is what a session issued for r is bound to: the cookie's own scope.
// That is the cookie's domain when it is set (the cookie is meant for every
// host under it), else the host the request was sent to, without the port:
// a browser sends one host's cookies to all of its ports, and every
// instance behind a load balancer sees the same host. Apps on two ports of
// one host that must not share sessions want a realm each.
func (h *Handler) site(r *http.Request) string {
	if h.Cookie.Domain != "" {
		return "." + strings.ToLower(strings.TrimPrefix(h.Cookie.Domain, "."))
	}
	host := r.Host
	// Only a host that may have a port is split: SplitHostPort allocates
	// its error for one that has none.
	if i := strings.LastIndexByte(host, ':'); i >= 0 && i > strings.LastIndexByte(host, ']') {
		if hp, _, err := net.SplitHostPort(host); err == nil {
			host = hp
		}
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// accepts reports whether this handler would have issued rec for r.
func (h *Handler) accepts(r *http.Request, rec sessionstore.Record) bool {
	if rec.Site != h.site(r) {
		return false
	}
	if rec.User == "" {
		return rec.Source == "" // data only, no login
	}
	src, ok := h.sources[rec.Source]
	return ok && src.Accepts(rec)
}

// carriedData is the data a login takes over from the session it
// replaces: all of it from an anonymous session or one of the same user
// and source, none from anyone else's (SPEC §3).
func carriedData(old *session, id identity.Identity) map[string]string {
	if old == nil {
		return nil
	}
	if old.rec.User == "" || (old.rec.User == id.User && old.rec.Source == id.Source) {
		return old.rec.Clone().Data
	}
	return nil
}
