package caddymodule

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/pages"
)

func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		// A GET changes nothing (a link or an image could trigger it); it
		// shows a button that POSTs.
		s, _ := h.sessions.Load(w, r)
		var page pages.Logout
		if target := redirectParam(r.URL.Query()); target != "" {
			page.Redirect = safeRedirectOr(target, home(mountPrefix(r)))
		}
		if s != nil {
			page.User = s.Rec.User
		}
		return h.renderLogout(w, r, page)
	case http.MethodPost:
	default:
		return methodNotAllowed(w, "GET, HEAD, POST")
	}
	if !h.sameOrigin(w, r) {
		return nil
	}
	// Without a redirect of its own, a logout lands on the login page,
	// which says that the user has signed out: a person sees that it
	// worked, and can sign in again (as someone else, on a shared
	// computer). The site's home would do that only if it is public, and
	// would otherwise send them to the login page with nothing said.
	redirect := h.endpointURL(r, "/login") + "?" + signedOut + "=1"
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err == nil {
		if target := redirectParam(r.Form); target != "" {
			redirect = safeRedirectOr(target, home(mountPrefix(r)))
		}
	}
	s, err := h.sessions.Load(w, r)
	if err == nil {
		err = h.sessions.Destroy(r.Context(), w, r, s)
	}
	if err != nil {
		// The session could not be deleted: say so instead of pretending
		// the user is logged out.
		h.sessions.LogStoreError(r, "logout", err)
		return h.serviceUnavailable(w)
	}
	h.sessions.ClearSiteData(w)
	if s != nil && s.Rec.User != "" {
		h.metrics.logouts.Inc()
		h.logger.Info("logout", zap.String("user", s.Rec.User), zapRemoteIP(r))
	}
	if target := h.oidcLogoutRedirect(w, r, s); target != "" && !pages.AcceptsJSON(r) {
		redirect = target // the provider's logout, then back
	}
	if pages.AcceptsJSON(r) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	http.Redirect(w, r, redirect, http.StatusSeeOther)
	return nil
}
