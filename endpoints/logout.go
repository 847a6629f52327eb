package endpoints

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/pages"
)

func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		// A GET changes nothing (a link or an image could trigger it); it
		// shows a button that POSTs.
		sess, _ := s.c.Sessions.Load(w, r)
		var page pages.Logout
		if target := redirectParam(r.URL.Query()); target != "" {
			page.Redirect = s.redirectTarget(r, target, home(s.mount(r)))
		}
		if sess != nil {
			page.User = sess.Rec.User
		}
		return s.renderLogout(w, r, page)
	case http.MethodPost:
	default:
		return methodNotAllowed(w, "GET, HEAD, POST")
	}
	if !s.sameOrigin(w, r) {
		return nil
	}
	// Without a redirect of its own, a logout lands on the login page,
	// which says that the user has signed out: a person sees that it
	// worked, and can sign in again (as someone else, on a shared
	// computer). The site's home would do that only if it is public, and
	// would otherwise send them to the login page with nothing said.
	redirect := s.endpointURL(r, "/login") + "?" + signedOut + "=1"
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err == nil {
		if target := redirectParam(r.Form); target != "" {
			redirect = s.redirectTarget(r, target, home(s.mount(r)))
		}
	}
	sess, err := s.c.Sessions.Load(w, r)
	if err == nil {
		err = s.c.Sessions.Destroy(r.Context(), w, r, sess)
	}
	if err != nil {
		// The session could not be deleted: say so instead of pretending
		// the user is logged out.
		s.c.Sessions.LogStoreError(r, "logout", err)
		return ServiceUnavailable(w)
	}
	s.clearPending(w, r) // a login waiting for its second step, cancelled
	s.c.Sessions.ClearSiteData(w)
	if sess != nil && sess.Rec.User != "" {
		s.c.Metrics.Logout(1)
		s.c.Logger.Info("logout", zap.String("user", sess.Rec.User), s.zapRemoteIP(r))
	}
	if target := s.oidcLogoutRedirect(w, r, sess); target != "" && !pages.AcceptsJSON(r) {
		redirect = target // the provider's logout, then back
	}
	if pages.AcceptsJSON(r) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	http.Redirect(w, r, redirect, http.StatusSeeOther)
	return nil
}
