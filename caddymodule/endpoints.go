package caddymodule

import (
	"net/http"
	"strings"
	"time"
)

// serveEndpoint serves the handler's own endpoints under PathPrefix. They
// never reach the upstream.
func (h *Handler) serveEndpoint(w http.ResponseWriter, r *http.Request, endpoint string) error {
	w.Header().Set("Cache-Control", "no-store")
	switch endpoint {
	case "/login":
		return h.serveLogin(w, r)
	case "/logout":
		return h.serveLogout(w, r)
	case "/whoami":
		return h.serveWhoami(w, r)
	}
	if rest, ok := strings.CutPrefix(endpoint, "/oidc/"); ok && h.oidc != nil {
		return h.serveOIDC(w, r, rest)
	}
	return writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}

func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
}

// sameOrigin rejects cross-origin state-changing requests, judged by
// Sec-Fetch-Site and Origin as http.CrossOriginProtection does.
func (h *Handler) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if err := h.cop.Check(r); err != nil {
		h.logger.Warn("cross-origin request refused", zapRemoteIP(r), zapPath(r))
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused"})
		return false
	}
	return true
}

// whoami is the JSON answer of <prefix>/whoami.
type whoami struct {
	User    string            `json:"user"`
	Data    map[string]string `json:"data"`
	Created time.Time         `json:"created"`
	Expires time.Time         `json:"expires"`
}

func (h *Handler) serveWhoami(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, "GET, HEAD")
	}
	s, err := h.load(w, r)
	if err != nil {
		return h.serviceUnavailable(w)
	}
	if s == nil || s.rec.User == "" {
		return writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "login required"})
	}
	data := s.rec.Data
	if data == nil {
		data = map[string]string{}
	}
	return writeJSON(w, http.StatusOK, whoami{
		User:    s.rec.User,
		Data:    data,
		Created: s.rec.Created.UTC().Truncate(time.Second),
		Expires: h.expiry(s.rec).UTC().Truncate(time.Second),
	})
}
