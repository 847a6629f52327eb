package pages

import (
	_ "embed"
	"time"
)

// PasskeyJS is the browser side of the passkey ceremonies, served at
// <prefix>/passkey/passkey.js: pages load it with a <script src> tagged
// with their CSP nonce. It finds its elements by data attributes
// (data-passkey-login, data-passkey-register, data-passkey-verify), as the
// CSP allows no inline handler.
//
//go:embed passkey.js
var PasskeyJS string

// PasskeyLogin is the login page's "Sign in with a passkey" button.
type PasskeyLogin struct {
	URL    string // <prefix>/passkey/login
	Script string // <prefix>/passkey/passkey.js
}

// PasskeySection is the sessions page's list of the user's passkeys, with
// a form to add one and one to remove each.
type PasskeySection struct {
	Register string // <prefix>/passkey/register
	Remove   string // <prefix>/passkey/remove
	Script   string // <prefix>/passkey/passkey.js
	Passkeys []PasskeyRow
	// Message reports what the last change did.
	Message string
	// Unavailable is set when the store could not be read.
	Unavailable bool
}

// PasskeyRow is one passkey in the sessions page.
type PasskeyRow struct {
	ID       string // the credential ID, base64url
	Name     string
	Created  time.Time
	LastUsed time.Time // zero: never
}

// When prints a time for the page, in UTC.
func (PasskeyRow) When(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }
