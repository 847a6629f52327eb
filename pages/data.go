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
	// MFA is the "Second factors" section; nil when they are off.
	MFA *SecondFactors
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

// MFA is what the second step's page is given (<prefix>/mfa): a code
// from an authenticator app, or a recovery code.
type MFA struct {
	Title    string
	Nonce    string
	User     string
	Action   string // <prefix>/mfa
	Redirect string // where to go once proved, validated
	Error    string
	// Recovery asks for a recovery code instead of an app's code;
	// RecoveryLink and CodeLink switch between the two.
	Recovery     bool
	RecoveryLink string
	CodeLink     string
	// HasTOTP: the user has an authenticator app enrolled; HasRecovery:
	// unused recovery codes.
	HasTOTP     bool
	HasRecovery bool
	// Passkeys: the user has passkeys, and the page offers them (the
	// "mfa_passkey" block).
	Passkeys bool
	// Cancel signs out (a form posting to <prefix>/logout).
	Cancel string
	// StepUp: a session proves a second factor for a page that needs
	// one (no password was just typed).
	StepUp bool
}

// MFATOTP is what the TOTP enrolment page is given (<prefix>/mfa/totp):
// first the password again (from a session), then the QR code, the text
// secret and the field for the first code.
type MFATOTP struct {
	Title    string
	Nonce    string
	User     string
	Action   string // <prefix>/mfa/totp
	Redirect string
	Error    string
	// AskPassword is the first stage: the password again.
	AskPassword bool
	// Sealed is the secret, sealed for the form (never in plain);
	// Secret the text secret in groups of four; QRPath the QR code as an
	// SVG path of QRSize modules square.
	Sealed string
	Secret string
	QRPath string
	QRSize int
	// QRURL is the otpauth URL, for the handler (never rendered).
	QRURL string `json:"-"`
	// Required: the user must enrol one before going on (a login).
	Required bool
	// Back is where "Cancel" goes: the sessions page, or the logout form.
	Back string
	// SignOut: Back is the logout form (a login waiting), not a link.
	SignOut bool
}

// MFACodes shows new recovery codes, once.
type MFACodes struct {
	Title    string
	Nonce    string
	User     string
	Codes    []string
	Continue string // "I saved them": where to go on to
	// Enrolled: they come with a new authenticator app.
	Enrolled bool
}

// SecondFactors is the sessions page's "Second factors" section, shown
// only when second factors are configured.
type SecondFactors struct {
	// TOTP is when the authenticator app was enrolled, zero for none.
	TOTP     time.Time
	Recovery int // unused recovery codes
	// Passkeys is how many passkeys the user has (the
	// "sessions_passkeys" block lists them).
	Passkeys int
	// Enrol is the TOTP enrolment page; Remove and NewCodes the forms'
	// actions (each asks for the password again).
	Enrol    string
	Remove   string
	NewCodes string
}

// When prints a time for the page, in UTC.
func (SecondFactors) When(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }
