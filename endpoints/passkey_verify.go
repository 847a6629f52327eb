package endpoints

import (
	"net/http"

	"github.com/edgesession/edgesession/pages"
)

// The second step with a passkey, after a password: <prefix>/passkey/verify.
// It needs the step of the second-factor pages (endpoints/mfa_step.go).

func (s *Server) passkeyVerifyOptions(w http.ResponseWriter, r *http.Request) error {
	return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}

func (s *Server) passkeyVerify(w http.ResponseWriter, r *http.Request) error {
	return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}
