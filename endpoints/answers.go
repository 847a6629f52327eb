package endpoints

import (
	"net/http"
	"net/url"

	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
)

// The handler's own answers on the request path, to requests that do not
// reach the upstream.

// LoginRequired answers a request that needs a user and has none: a
// browser navigating is sent to the login page (under the path the
// browser sees), a client that can answer an HTTP Basic challenge gets
// one, anything else gets 401 JSON.
func (s *Server) LoginRequired(w http.ResponseWriter, r *http.Request) error {
	if _, sure := s.c.Mount(r); !sure {
		return s.c.Unmounted(w, r, "login")
	}
	w.Header().Set("Cache-Control", "no-store")
	if pages.IsNavigation(r) {
		target := s.endpointURL(r, "/login") + "?redirect=" + url.QueryEscape(s.c.OriginalURI(r))
		http.Redirect(w, r, target, http.StatusFound)
		return nil
	}
	if s.offersBasic(r) {
		s.basicChallenge(w)
	}
	return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "login required"})
}

// Forbidden answers a logged-in user whom the rules do not let in: a page
// for a browser navigating, JSON for anything else. Nothing reaches the
// upstream.
func (s *Server) Forbidden(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	w.Header().Set("Cache-Control", "no-store")
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && pages.AcceptsHTML(r) {
		if _, sure := s.c.Mount(r); !sure {
			return s.c.Unmounted(w, r, "forbidden page") // its forms would post to another app
		}
		return s.c.Pages.Forbidden(w, http.StatusForbidden, pages.Forbidden{
			User:     sess.Rec.User,
			Action:   s.endpointURL(r, "/logout"),
			Redirect: s.endpointURL(r, "/login") + "?redirect=" + url.QueryEscape(s.c.OriginalURI(r)),
		})
	}
	return pages.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden"})
}

// ServiceUnavailable answers a request that needs the session store while
// it fails: 503, try again in a few seconds.
func ServiceUnavailable(w http.ResponseWriter) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "5")
	return pages.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "session store unavailable"})
}
