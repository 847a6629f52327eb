// Package endpoints owns the pages and APIs a handler serves itself under
// its path prefix: the login page and its form and JSON logins, logout,
// whoami, the user's own sessions page, the OpenID Connect routes (a
// provider's login start, callback and back-channel logout), the
// assertion keys (jwks.json), logins without a form (HTTP Basic, one
// per request), and the auth endpoint (auth.go), which tells a proxy in
// front whether an original request it reports may pass. Where the login
// and logout pages may send a browser back is redirect.go's (local
// paths) and redirect_hosts.go's (absolute URLs of allowed hosts). It also gives the handler's own answers on the request
// path: login required (a redirect to the login page, 401 JSON or a Basic
// challenge), forbidden (a page or 403 JSON), and the store being down.
//
// A Server is built once per handler (at Provision) from the parts it
// uses: the session manager, the password users, the throttle, the page
// set, the OIDC providers, the store's index by user, the assertion keys,
// the logger and hooks for metrics. What only the server it runs in can
// tell about a request (where the handler is mounted, the client's
// address, the URI the client asked for, whether it came from a trusted
// proxy) is given as funcs; so is the judge of the request path (Auth),
// so that the auth endpoint judges an original request with the very
// code that judges a proxied one.
//
// It must not know Caddy, the store's internals (it lists and deletes a
// user's sessions only through sessionstore.UserIndex), nor the request
// path to the upstream: which requests are public, the rules, the
// headers the upstream sees and the upstream's control headers are the
// handler's.
package endpoints
