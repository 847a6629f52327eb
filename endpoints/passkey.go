package endpoints

import (
	"net/http"

	"github.com/edgesession/edgesession/pages"
)

// servePasskey serves <prefix>/passkey/... (rest: "/login"...).
func (s *Server) servePasskey(w http.ResponseWriter, r *http.Request, rest string) error {
	return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}
