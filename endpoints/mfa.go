package endpoints

import (
	"net/http"
	"net/url"

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

	// A: Count counts one second-factor event for the metrics: event is
	// enrolled, removed, reset, verified, failed, replayed or throttled;
	// method is totp, passkey, recovery or all. Never nil once provisioned.
	Count func(event, method string)
}

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
