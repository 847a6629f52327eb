package identity

import (
	"slices"
	"strings"

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

// MaxAmr is how many amr values a session records at most: RFC 8176's
// list has fifteen, a login proves two or three.
const MaxAmr = 8

// ValidAmr accepts an amr value a session may record and a header may
// carry: 1 to 32 bytes of printable ASCII, no space (X-Session-Amr
// separates values with one).
func ValidAmr(v string) bool {
	if v == "" || len(v) > 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return false
		}
	}
	return true
}

// AmrHeader is amr as X-Session-Amr carries it: the valid values (at most
// MaxAmr), space separated, "" for none. It allocates only to join two or
// more.
func AmrHeader(amr []string) string {
	n := 0
	for _, v := range amr {
		if !ValidAmr(v) || n == MaxAmr {
			return joinValidAmr(amr)
		}
		n++
	}
	switch len(amr) {
	case 0:
		return ""
	case 1:
		return amr[0]
	}
	return strings.Join(amr, " ")
}

func joinValidAmr(amr []string) string {
	var valid []string
	for _, v := range amr {
		if ValidAmr(v) && len(valid) < MaxAmr {
			valid = append(valid, v)
		}
	}
	return strings.Join(valid, " ")
}
