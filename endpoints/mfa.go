package endpoints

import (
	"net/http"
	"net/url"
	"time"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/mfa"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

// MFA is what the second-factor endpoints need (SPEC §13); nil in Config
// turns them off: no enrolment, no second step, no passkey login.
type MFA struct {
	// Store keeps the users' credentials; Claims remembers the codes used.
	Store  *mfa.Store
	Claims sessionstore.Claimer
	// Policy says who must prove a second factor at login.
	Policy *mfa.Policy

	// B2: TOTP and recovery codes, the second step, enrolment.
	// Service verifies and enrols TOTP and recovery codes; its Issuer is
	// the handler's title, or "" for the request's host at enrolment.
	Service *mfa.Service
	// the pending cookie's name and keys, and the enrolment form's
	// (SetSecrets makes them)
	pendingName  string
	pendingCodec *cookie.Codec
	enrolCodec   *cookie.Codec

	// C: passkeys. RPID is the WebAuthn relying party ID ("" for the
	// request's host, without its port); Origins are the origins whose
	// pages may use the passkeys (none: the request's own). PasskeyCookie
	// seals the ceremonies' challenges into a short-lived cookie.
	RPID          string
	Origins       []string
	PasskeyCookie *cookie.Codec
}

// enrolLifetime is how long the enrolment form's sealed secret is good
// for: time to scan a QR code and type a code.
const enrolLifetime = 10 * time.Minute

// count counts one second-factor event (success, failure, enrol,
// remove...) of method (totp, recovery, passkey) in the metrics, when
// they are wired.
func (m *MFA) count(event, method string) {}

// SecondFactorRequired answers a request of a user who must prove a
// second factor first and whose session has none: a browser navigating
// goes to the second step (<prefix>/mfa), and from there back to where it
// was going; anything else gets 401. Nothing reaches the upstream.
func (s *Server) SecondFactorRequired(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	if _, sure := s.c.Mount(r); !sure {
		return s.c.Unmounted(w, r, "second factor")
	}
	w.Header().Set("Cache-Control", "no-store")
	if pages.IsNavigation(r) {
		target := s.endpointURL(r, "/mfa") + "?redirect=" + url.QueryEscape(s.c.OriginalURI(r))
		http.Redirect(w, r, target, http.StatusFound)
		return nil
	}
	return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "second factor required"})
}

// serveMFA serves <prefix>/mfa and what is under it (rest: "" or "/totp"...).
func (s *Server) serveMFA(w http.ResponseWriter, r *http.Request, rest string) error {
	return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}
