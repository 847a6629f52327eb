package identity

import (
	"slices"

	"github.com/edgesession/edgesession/sessionstore"
)

// Authentication method references (RFC 8176) that a session may record in
// Record.Amr, as the upstream gets them in X-Session-Amr.
const (
	AmrPassword = "pwd" // a password
	AmrOTP      = "otp" // a one-time code: TOTP, or a recovery code
	AmrHardware = "hwk" // a proof of possession of a hardware key: a passkey
	AmrSoftware = "swk" // a proof of possession of a software key
	AmrMFA      = "mfa" // more than one factor was proved
)

// AMR is how the session rec proved who its user is: rec.Amr, or for a
// record that has none (from before second factors) what its source
// implies: "pwd" for a password login, nothing for any other.
func AMR(rec sessionstore.Record) []string {
	if len(rec.Amr) > 0 || rec.User == "" {
		return rec.Amr
	}
	if rec.Source == Password {
		return []string{AmrPassword}
	}
	return nil
}

// HasMFA reports whether amr records a second factor: "mfa" itself, which
// is recorded whenever a second factor is proved here (and which an OIDC
// provider sends for its own).
func HasMFA(amr []string) bool { return slices.Contains(amr, AmrMFA) }
