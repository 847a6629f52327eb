// Package password owns the local users and their passwords: the users
// given inline and those of the users file (read again when it changes),
// their password hashes (bcrypt and argon2id, as `caddy hash-password`
// prints them), the check of a password against them with failures that
// take as long whoever the user is, the fingerprint a session records of
// its user's hash, and the users' groups.
//
// It is the identity source of the sessions logged in with a password
// (identity.Password): DB.Accepts says whether such a session still is a
// login. It knows nothing of HTTP, cookies, pages, throttling or
// the other identity sources, and of Caddy only its hash comparers
// (caddyauth), which are what make a hash mean what Caddy says it means; how a password reaches it (a login form,
// an Authorization header) is the caller's business.
package password
