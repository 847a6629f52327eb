// Package identity owns what every identity source shares: the Identity a
// login gives a session, the Source interface through which a handler
// asks a source whether a session it issued is still a login, the rules
// every user and group name obeys, whatever its source, and a user's
// groups as a set (Groups) as they are judged and forwarded.
//
// Its sub-packages are the sources: password (the Caddyfile's users and
// the users file) and oidc (OpenID Connect providers). It knows no
// cookie, page, handler or store other than the session record a source
// is asked about, and no source knows another.
package identity
