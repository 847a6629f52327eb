package pages

import "time"

// The data each page's template is given. Nonce is set by the Set when it
// renders the page: whatever the caller puts there is replaced.

// Login is what the login template is given. Its fields are documented
// for login_template files: keep their names.
type Login struct {
	Action   string // the form's action: <mount><prefix>/login
	Redirect string // where to go after login, already validated
	Username string // as typed, after a failure
	Error    string // the one generic failure message, or ""
	Notice   string // news that is not an error ("You have signed out."), or ""
	Title    string // the site's name (the title subdirective), or ""
	Nonce    string // for the page's inline <style>, allowed by the CSP
	// Providers are the OIDC providers' buttons, in the order configured.
	Providers []Provider
	// PasswordForm is false when only providers can sign users in.
	PasswordForm bool
	// Passkey is the "Sign in with a passkey" button; nil without
	// passkeys.
	Passkey *PasskeyLogin
}

// Provider is one OIDC provider's button on the login page.
type Provider struct {
	Name  string
	Label string
	URL   string // starts the login: a link, not a form (CSP form-action)
}

// Logout is what the logout confirmation template is given.
type Logout struct {
	Action   string
	Redirect string // where to go after logout, validated; "" for the signed-out page
	User     string
	Title    string
	Nonce    string
}

// Message is a page that tells a person why their form was not accepted,
// in the style of the login page, with a link to go on.
type Message struct {
	Heading  string
	Text     string
	Link     string // a local URL the handler made
	LinkText string
	Title    string // the site's name, or ""
	Nonce    string
}

// Forbidden is what the 403 page's template is given.
type Forbidden struct {
	User     string
	Action   string // <prefix>/logout
	Redirect string // the login page, then back to the refused page
	Nonce    string
}

// Sessions is what the user's list of their sessions is given.
type Sessions struct {
	Action   string
	Nonce    string
	User     string
	Sessions []SessionRow
	// Others is how many listed sessions are not this one.
	Others int
	// Message reports what the last POST did.
	Message string
	// NoList is set when the store keeps no list (the cookie store).
	NoList bool
	Logout string
	// Home is the app's home page, under the mount prefix: the way back.
	Home string
	// Passkeys is the list of the user's passkeys; nil without them.
	Passkeys *PasskeySection
}

// SessionRow is one session in the sessions page and in its JSON.
type SessionRow struct {
	Handle    string    `json:"handle"`
	Current   bool      `json:"current"`
	UserAgent string    `json:"user_agent"`
	ClientIP  string    `json:"client_ip"`
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"last_seen"`
}

// When prints a time for the page; a server does not know the reader's
// time zone, so it says UTC.
func (SessionRow) When(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }

// OIDC is what the page of a provider login is given: a sign-in problem,
// or the page that goes on after a login.
type OIDC struct {
	Title    string
	Message  string
	Retry    string // the login page, to start again
	Continue string // where to go on to at once, after a login
	Nonce    string
}
