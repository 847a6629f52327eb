package endpoints

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/edgesession/edgesession/internal/text"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"go.uber.org/zap"
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

// badBody answers a request whose body could not be read (what names the
// request, "login"): 413 for one over its bound, 400 for anything else,
// each with a log line.
func (s *Server) badBody(w http.ResponseWriter, r *http.Request, what string, err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		s.c.Logger.Warn(what+" body too large", s.zapRemoteIP(r))
		return pages.WriteJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "request body too large"})
	}
	s.c.Logger.Warn("malformed "+what+" request", s.zapRemoteIP(r), zap.Error(err))
	return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed " + what + " request"})
}

// unsupportedBody answers a request (what names it, "login") whose body
// is neither a form nor JSON: 415, with a log line.
func (s *Server) unsupportedBody(w http.ResponseWriter, r *http.Request, what string) error {
	s.c.Logger.Warn(what+" request of an unsupported content type", zap.String("content_type", text.Shorten(r.Header.Get("Content-Type"), 100)), s.zapRemoteIP(r))
	return pages.WriteJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "want application/x-www-form-urlencoded or application/json"})
}

// readJSONBody reads a request body of JSON into v. An error reading it
// (*http.MaxBytesError for one over its bound) is returned as it is; bytes
// that are not UTF-8 are said so; one that does not decode into v is
// returned through word, which says it for the log.
func readJSONBody(body io.Reader, v any, word func(error) error) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if !utf8.Valid(b) {
		return errors.New("body is not UTF-8")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return word(err)
	}
	return nil
}
