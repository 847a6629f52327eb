// Package session owns finding, keeping and ending a request's session,
// and the cookies that say so: it finds the session a request's cookies
// name (in the store, or in cookie mode in the cookie itself), checks its
// expiry and that this handler would have issued it (the site it is bound
// to, and an identity source that still accepts it), writes the last-seen
// time back, starts sessions, logs users in, saves changes, and destroys
// sessions; it sets and expires the session cookie, the app's logout
// cookies and the signed-in marker, and sends Clear-Site-Data.
//
// A Manager is built once per handler (at Provision) with all it needs:
// the store, the cookie codec and attributes, the realm, the timeouts,
// the identity sources, the logger and hooks for metrics. Values of the
// request that the handler works out (the client IP) are given to it.
//
// It must not know pages, identity sources' internals (it asks an
// identity.Source only whether it still accepts a session), rules, or
// the headers the upstream sees and sends.
package session
