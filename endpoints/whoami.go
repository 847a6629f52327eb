package endpoints

import (
	"net/http"
	"time"

	"github.com/edgesession/edgesession/pages"
)

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

func (s *Server) serveWhoami(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, "GET, HEAD")
	}
	sess, err := s.c.Sessions.Load(w, r)
	if err != nil {
		return ServiceUnavailable(w)
	}
	if sess == nil || sess.Rec.User == "" {
		return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "login required"})
	}
	if s.owes(sess) {
		return s.SecondFactorRequired(w, r, sess)
	}
	data := sess.Rec.Data
	if data == nil {
		data = map[string]string{}
	}
	return pages.WriteJSON(w, http.StatusOK, whoami{
		User:    sess.Rec.User,
		Source:  sess.Rec.Source,
		Data:    data,
		Created: sess.Rec.Created.UTC().Truncate(time.Second),
		Expires: s.c.Sessions.Expiry(sess.Rec).UTC().Truncate(time.Second),
	})
}

// serveJWKS serves the public keys that verify the assertions.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	if s.c.JWKS == nil {
		return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, "GET, HEAD")
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/jwk-set+json")
	hdr.Set("X-Content-Type-Options", "nosniff")
	// Short: a new key signs at once after a rotation. Verifiers should
	// also fetch again when a token names a key they do not have.
	hdr.Set("Cache-Control", "public, max-age=60")
	_, err := w.Write(s.c.JWKS())
	return err
}
