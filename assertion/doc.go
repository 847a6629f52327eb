// Package assertion owns the signed identity assertion that edgesession
// sends the upstream: a short-lived JWT (ES256, signed with go-jose) that
// says who the user is, so that an upstream that can also be reached by
// other paths can tell the session's word from a forged header.
//
// It owns:
//   - the Keyring: the signing keys, generated once and kept in Caddy's
//     storage (certmagic.Storage), one set per realm (StorageKey), rotated
//     when due, with retired keys published until every token they signed
//     has expired; keyrings of every handler and every instance sharing the
//     storage follow the same keys;
//   - the JWKS document that publishes the public keys;
//   - the Minter: the claims (iss, aud, sub, groups, sid, iat, exp, jti),
//     the signing, and the cache that signs a token once per session and
//     reuses it until shortly before it expires;
//   - the bounds of a token's lifetime and of the rotation.
//
// It must not know sessions, cookies or stores (a token is asked for by a
// Key and a Subject of plain values), nor the readings of a request, the
// mount prefix's discovery, the header the token travels in, or the
// Handler: the caddymodule package decides whether and where to forward a
// token and parses the configuration, and package endpoints serves the
// JWKS.
package assertion
