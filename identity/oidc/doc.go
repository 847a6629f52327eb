// Package oidc signs users in with OpenID Connect providers, and logs
// them out again.
//
// It owns the providers' configuration (Provider) and its checks;
// discovery; starting a login (the state cookie, PKCE, nonce, the
// redirect to the provider) and finishing it at the callback (the state
// check, the code exchange, the ID token's verification, userinfo, the
// claims as an identity.Identity and session data, the allow-lists); the
// names a provider's users and groups get ("<provider>:<name>" unless the
// provider vouches for local names); whether a session is still a login
// (Client implements identity.Source); the logout hint cookie and the
// RP-initiated logout URL; and back-channel logout tokens (their checks,
// limits, key-fetch budget and refusal log) and the sessions they end.
//
// It must not know the pages (a login that did not work is a *Problem
// for the handler to answer), the session manager (the handler makes the
// session from the Login it gets), stores beyond sessionstore's
// interfaces, the password users or other identity sources, metrics, nor
// Caddy (placeholders in client secrets are resolved by a func the
// handler gives).
package oidc
