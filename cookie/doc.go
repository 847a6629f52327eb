// Package cookie owns the cookies of edgesession as bytes on the wire: the
// codec that signs and encrypts a value with gorilla/securecookie (keys
// derived per purpose and realm from the secrets, rotation, a bound on
// age and size, a cache of verified values), a cookie's configured
// attributes (name, domain, path, Secure, SameSite, the __Host- and
// __Secure- rules), and reading, removing and setting cookies in Cookie
// and Set-Cookie headers the way browsers and net/http read them.
//
// It does not know what a cookie carries (a session ID, a record, OIDC
// state) nor any store, session, identity source or handler.
package cookie
