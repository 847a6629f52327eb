package caddymodule

import (
	"net/http"

	"go.uber.org/zap"
)

// logoutPage is what the logout confirmation template is given.
type logoutPage struct {
	Action   string
	Redirect string
	User     string
	Nonce    string
}

func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		// A GET changes nothing (a link or an image could trigger it); it
		// shows a button that POSTs.
		s, _ := h.load(w, r)
		page := logoutPage{Redirect: safeRedirect(r.URL.Query().Get("redirect"))}
		if s != nil {
			page.User = s.rec.User
		}
		return h.renderLogout(w, page)
	case http.MethodPost:
	default:
		return methodNotAllowed(w, "GET, HEAD, POST")
	}
	if !h.sameOrigin(w, r) {
		return nil
	}
	redirect := "/"
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err == nil {
		redirect = safeRedirect(r.Form.Get("redirect"))
	}
	s, err := h.load(w, r)
	if err == nil {
		err = h.destroy(r.Context(), w, r, s)
	}
	if err != nil {
		// The session could not be deleted: say so instead of pretending
		// the user is logged out.
		h.logStoreError(r, "logout", err)
		return h.serviceUnavailable(w)
	}
	h.clearSiteData(w)
	if s != nil && s.rec.User != "" {
		h.metrics.logouts.Inc()
		h.logger.Info("logout", zap.String("user", s.rec.User), zapRemoteIP(r))
	}
	if acceptsJSON(r) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	http.Redirect(w, r, redirect, http.StatusSeeOther)
	return nil
}
