package caddymodule

import (
	"net/http"
	"net/url"

	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
)

// forbidden answers a logged-in user whom the rules do not let in: a page
// for a browser navigating, JSON for anything else. Nothing reaches the
// upstream.
func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, s *session.Session) error {
	w.Header().Set("Cache-Control", "no-store")
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && pages.AcceptsHTML(r) {
		if _, sure := findMount(r); !sure {
			return h.refuseUnknownMount(w, r, "forbidden page") // its forms would post to another app
		}
		return h.pages.Forbidden(w, http.StatusForbidden, pages.Forbidden{
			User:     s.Rec.User,
			Action:   h.endpointURL(r, "/logout"),
			Redirect: h.endpointURL(r, "/login") + "?redirect=" + url.QueryEscape(originalRequestURI(r)),
		})
	}
	return pages.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden"})
}
