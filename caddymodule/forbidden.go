package caddymodule

import (
	"crypto/rand"
	"net/http"
	"net/url"

	"github.com/edgesession/edgesession/session"
)

// forbiddenPage is what the 403 page's template is given.
type forbiddenPage struct {
	User     string
	Action   string // <prefix>/logout
	Redirect string // the login page, then back to the refused page
	Nonce    string
}

// forbidden answers a logged-in user whom the rules do not let in: a page
// for a browser navigating, JSON for anything else. Nothing reaches the
// upstream.
func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, s *session.Session) error {
	w.Header().Set("Cache-Control", "no-store")
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && acceptsHTML(r) {
		if _, sure := findMount(r); !sure {
			return h.refuseUnknownMount(w, r, "forbidden page") // its forms would post to another app
		}
		page := forbiddenPage{
			User:     s.Rec.User,
			Action:   h.endpointURL(r, "/logout"),
			Redirect: h.endpointURL(r, "/login") + "?redirect=" + url.QueryEscape(originalRequestURI(r)),
			Nonce:    rand.Text(),
		}
		return h.render(w, http.StatusForbidden, "forbidden.html", page.Nonce, page)
	}
	return writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden"})
}
