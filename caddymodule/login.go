package caddymodule

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// maxLoginBody bounds a login request body.
const maxLoginBody = 64 << 10

// maxPassword bounds a password: bcrypt reads 72 bytes, and a huge one
// would only make argon2id work harder.
const maxPassword = 1024

// loginPage is what the login template is given.
type loginPage struct {
	Action   string // the form's action: <prefix>/login
	Redirect string // where to go after login, already validated
	Username string // as typed, after a failure
	Error    string // the one generic failure message, or ""
	Nonce    string // for the page's inline <style>, allowed by the CSP
	// Providers are the OIDC providers' buttons, in the order configured.
	Providers []oidcButton
	// PasswordForm is false when only providers can sign users in.
	PasswordForm bool
}

func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		redirect := safeRedirect(r.URL.Query().Get("redirect"))
		if name := r.URL.Query().Get("provider"); name != "" {
			return h.startOIDCLogin(w, r, name, redirect)
		}
		return h.renderLogin(w, http.StatusOK, loginPage{Redirect: redirect})
	case http.MethodPost:
		return h.postLogin(w, r)
	}
	return methodNotAllowed(w, "GET, HEAD, POST")
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Redirect string `json:"redirect"`
}

func (h *Handler) postLogin(w http.ResponseWriter, r *http.Request) error {
	if !h.sameOrigin(w, r) {
		return nil
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := mediaType == "application/json"
	if !isJSON && mediaType != "application/x-www-form-urlencoded" {
		return writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "want application/x-www-form-urlencoded or application/json"})
	}

	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	var cred credentials
	var err error
	if isJSON {
		var body []byte
		if body, err = io.ReadAll(r.Body); err == nil {
			if !utf8.Valid(body) {
				err = errors.New("body is not UTF-8")
			} else {
				err = json.Unmarshal(body, &cred)
			}
		}
	} else if err = r.ParseForm(); err == nil {
		cred = credentials{Username: r.PostForm.Get("username"), Password: r.PostForm.Get("password"), Redirect: r.PostForm.Get("redirect")}
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.logger.Warn("login body too large", zapRemoteIP(r))
			return writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "request body too large"})
		}
		h.logger.Warn("malformed login request", zapRemoteIP(r), zap.Error(err))
		return writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed login request"})
	}
	redirect := safeRedirect(cred.Redirect)
	if err := validUsername(cred.Username); err != nil || len(cred.Password) > maxPassword {
		h.logger.Warn("malformed login request", zapRemoteIP(r), zap.NamedError("reason", err))
		if isJSON {
			return writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed login request"})
		}
		return h.renderLogin(w, http.StatusBadRequest, loginPage{Redirect: redirect, Error: "Invalid username or password."})
	}

	ip := clientIP(r)
	attempt, wait, err := h.throttle.begin(r.Context(), h.scope, ip, cred.Username, time.Now())
	if err != nil {
		if r.Context().Err() != nil {
			return nil // the client hung up; nothing was checked or counted
		}
		h.metrics.logins.WithLabelValues("error").Inc()
		h.logger.Error("login throttle unavailable", zap.String("user", cred.Username), zap.String("remote_ip", ip), zap.Error(err))
		return h.serviceUnavailable(w)
	}
	if attempt == nil {
		h.metrics.logins.WithLabelValues("throttled").Inc()
		h.logger.Warn("login throttled", zap.String("user", cred.Username), zap.String("remote_ip", ip))
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		return writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed logins, try again later"})
	}
	defer attempt.end()

	fp, ok, err := h.users.check(cred.Username, cred.Password)
	if err != nil {
		h.logger.Error("password check failed", zap.String("user", cred.Username), zap.String("remote_ip", ip), zap.Error(err))
	}
	if !ok {
		// Counted before anything the client can interrupt.
		attempt.failed(r.Context(), time.Now())
		h.metrics.logins.WithLabelValues("failure").Inc()
		h.logger.Warn("login failed", zap.String("user", cred.Username), zap.String("remote_ip", ip))
		if isJSON {
			return writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid credentials"})
		}
		return h.renderLogin(w, http.StatusUnauthorized, loginPage{Redirect: redirect, Username: cred.Username, Error: "Invalid username or password."})
	}
	attempt.succeeded(r.Context())

	// The current session, whose data the new one carries over. A store
	// that fails is a 503: logging in would only fail to save.
	old, err := h.load(w, r)
	if err != nil {
		h.metrics.logins.WithLabelValues("error").Inc()
		return h.serviceUnavailable(w)
	}

	id := identity{user: cred.Username, source: sourcePassword, fingerprint: fp}
	if _, err := h.login(r.Context(), w, r, old, id, carriedData(old, id)); err != nil {
		h.metrics.logins.WithLabelValues("error").Inc()
		h.logSaveError(r, "login", err)
		return h.serviceUnavailable(w)
	}
	h.metrics.logins.WithLabelValues("success").Inc()
	h.logger.Info("login", zap.String("user", cred.Username), zap.String("remote_ip", ip))
	if isJSON {
		return writeJSON(w, http.StatusOK, map[string]string{"user": cred.Username})
	}
	http.Redirect(w, r, redirect, http.StatusSeeOther)
	return nil
}

func zapRemoteIP(r *http.Request) zap.Field { return zap.String("remote_ip", clientIP(r)) }
func zapPath(r *http.Request) zap.Field     { return zap.String("path", r.URL.Path) }
