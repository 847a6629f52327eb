package identity

import "github.com/edgesession/edgesession/sessionstore"

// Identity is who a login makes the session's user: the name, the source
// that vouched for it, the proof that source can check again later, and
// the groups the source gave (sources that keep groups of their own, such
// as the password users, give none here).
type Identity struct {
	User        string
	Source      string
	Fingerprint string
	Groups      []string
	// Amr are the ways the user proved who they are (RFC 8176), as the
	// session records them; see AMR.
	Amr []string
}

// The names of the built-in sources, as kept in Record.Source. An OIDC
// provider's sessions carry the provider's own source name.
const (
	Password = "password" // a user of the handler's user / users_file
	Upstream = "upstream" // logged in by the upstream (X-Session-Login)
)

// A Source is one way users get logged in: the password users, the
// upstream's own logins, each OIDC provider. Every session records its
// source (Record.Source); a session is a login only while its source
// still accepts it.
type Source interface {
	// Accepts reports whether a session this source issued (rec.Source
	// names it) is still a login: the user still exists, the password
	// has not changed, the provider is still configured.
	Accepts(rec sessionstore.Record) bool
}

// UpstreamSource vouches for the upstream's own logins while the handler
// lets the upstream log users in (upstream_control on). The upstream
// names local users: its logins are checked with ValidUsername, and a
// session from before a name became invalid (a dot name, a '/') is no
// login.
type UpstreamSource struct{}

// Accepts implements Source.
func (UpstreamSource) Accepts(rec sessionstore.Record) bool { return ValidUsername(rec.User) == nil }
