package session

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

// Site is what a session issued for r is bound to: the cookie's own scope.
// That is the cookie's domain when it is set (the cookie is meant for every
// host under it), else the host the request was sent to, without the port:
// a browser sends one host's cookies to all of its ports, and every
// instance behind a load balancer sees the same host. Apps on two ports of
// one host that must not share sessions want a realm each.
func (m *Manager) Site(r *http.Request) string {
	if m.c.Cookie.Domain != "" {
		return "." + strings.ToLower(strings.TrimPrefix(m.c.Cookie.Domain, "."))
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

// Accepts reports whether this handler would have issued rec for r.
func (m *Manager) Accepts(r *http.Request, rec sessionstore.Record) bool {
	if rec.Site != m.Site(r) {
		return false
	}
	if rec.User == "" {
		return rec.Source == "" // data only, no login
	}
	src, ok := m.c.Sources[rec.Source]
	return ok && src.Accepts(rec)
}

// CarriedData is the data a login takes over from the session it
// replaces: all of it from an anonymous session or one of the same user
// and source, none from anyone else's (SPEC §3).
func CarriedData(old *Session, id identity.Identity) map[string]string {
	if old == nil {
		return nil
	}
	if old.Rec.User == "" || (old.Rec.User == id.User && old.Rec.Source == id.Source) {
		return old.Rec.Clone().Data
	}
	return nil
}
