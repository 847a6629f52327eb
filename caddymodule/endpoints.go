package caddymodule

import (
	"net/http"
	"strings"
	"time"

	"github.com/edgesession/edgesession/pages"
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
	case "/sessions":
		return h.serveSessions(w, r)
	case "/jwks.json":
		return h.serveJWKS(w, r)
	}
	if rest, ok := strings.CutPrefix(endpoint, "/oidc/"); ok && h.oidc != nil {
		return h.serveOIDC(w, r, rest)
	}
	return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}

func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return pages.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
}

// endpointURL is the URL of one of the handler's endpoints ("/login") as
// the browser sees it: under the mount prefix, if Caddy stripped one.
func (h *Handler) endpointURL(r *http.Request, endpoint string) string {
	return mountPrefix(r) + h.PathPrefix + endpoint
}

// sameOrigin rejects cross-origin state-changing requests, judged by
// Sec-Fetch-Site and Origin as http.CrossOriginProtection does. A person
// whose browser posted a form from another site gets a page that says
// what happened; API clients get JSON.
func (h *Handler) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if err := h.cop.Check(r); err != nil {
		h.logger.Warn("cross-origin request refused", zapRemoteIP(r), zapPath(r))
		if pages.WantsPage(r) {
			h.renderMessage(w, http.StatusForbidden, pages.Message{
				Heading:  "Form from another site refused",
				Text:     "This form was sent from a page on another site, so it was not accepted and nothing has changed. To sign in or out, use this site's own page.",
				Link:     h.endpointURL(r, "/login"),
				LinkText: "Go to the sign-in page",
			})
		} else {
			pages.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused"})
		}
		return false
	}
	return true
}

// whoami is the JSON answer of <prefix>/whoami.
type whoami struct {
	User string `json:"user"`
	// Source is the identity source that signed the user in, as
	// X-Session-Source says it: password, upstream or oidc:<name>.
	Source  string            `json:"source"`
	Data    map[string]string `json:"data"`
	Created time.Time         `json:"created"`
	Expires time.Time         `json:"expires"`
}

func (h *Handler) serveWhoami(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, "GET, HEAD")
	}
	s, err := h.sessions.Load(w, r)
	if err != nil {
		return h.serviceUnavailable(w)
	}
	if s == nil || s.Rec.User == "" {
		return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "login required"})
	}
	data := s.Rec.Data
	if data == nil {
		data = map[string]string{}
	}
	return pages.WriteJSON(w, http.StatusOK, whoami{
		User:    s.Rec.User,
		Source:  s.Rec.Source,
		Data:    data,
		Created: s.Rec.Created.UTC().Truncate(time.Second),
		Expires: h.sessions.Expiry(s.Rec).UTC().Truncate(time.Second),
	})
}
