// Package mfa owns second factors (SPEC §13): the credentials a local user
// enrols (a TOTP authenticator, passkeys, one-time recovery codes), where
// they are kept (a sessionstore.Vault, shared by every instance, never in
// a cookie), how a code or a passkey is verified (once: a code seen is
// claimed in the store until it can no longer be valid), and the policy
// that says who must prove one.
//
// It knows no HTTP page, cookie or handler: package endpoints serves the
// pages and calls it; caddymodule configures it.
package mfa
