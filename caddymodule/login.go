package caddymodule

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/session"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/pages"
)

// maxLoginBody bounds a login request body.
const maxLoginBody = 64 << 10

// maxPassword bounds a password: bcrypt reads 72 bytes, and a huge one
// would only make argon2id work harder.
const maxPassword = 1024

// signedOut is the query parameter of the login page that a logout lands
// on; the page then says the user has signed out.
const signedOut = "signed_out"

func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		q := r.URL.Query()
		page := pages.Login{Redirect: safeRedirectOr(redirectParam(q), home(mountPrefix(r)))}
		if q.Get(signedOut) == "1" {
			// Anyone can link here: say it only when it is true.
			if s, err := h.sessions.Load(w, r); err == nil && (s == nil || s.Rec.User == "") {
				page.Notice = "You have signed out."
			}
		}
		if name := q.Get("provider"); name != "" {
			return h.startOIDCLogin(w, r, name, page.Redirect)
		}
		return h.renderLogin(w, r, http.StatusOK, page)
	case http.MethodPost:
		return h.postLogin(w, r)
	}
	return methodNotAllowed(w, "GET, HEAD, POST")
}

// redirectParam is where to go after login or logout: the redirect
// parameter, or next, which Django and Flask-Login send.
func redirectParam(v url.Values) string {
	if target := v.Get("redirect"); target != "" {
		return target
	}
	return v.Get("next")
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Redirect string `json:"redirect"`
	Next     string `json:"next"` // an alias of redirect
}

func (h *Handler) postLogin(w http.ResponseWriter, r *http.Request) error {
	if !h.sameOrigin(w, r) {
		return nil
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := mediaType == "application/json"
	if !isJSON && mediaType != "application/x-www-form-urlencoded" {
		return pages.WriteJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "want application/x-www-form-urlencoded or application/json"})
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
		cred = credentials{Username: r.PostForm.Get("username"), Password: r.PostForm.Get("password"), Redirect: redirectParam(r.PostForm)}
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.logger.Warn("login body too large", zapRemoteIP(r))
			return pages.WriteJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "request body too large"})
		}
		h.logger.Warn("malformed login request", zapRemoteIP(r), zap.Error(err))
		return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed login request"})
	}
	if cred.Redirect == "" {
		cred.Redirect = cred.Next
	}
	redirect := safeRedirectOr(cred.Redirect, home(mountPrefix(r)))
	if err := identity.ValidUsername(cred.Username); err != nil || len(cred.Password) > maxPassword {
		h.logger.Warn("malformed login request", zapRemoteIP(r), zap.NamedError("reason", err))
		if isJSON {
			return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed login request"})
		}
		return h.renderLogin(w, r, http.StatusBadRequest, pages.Login{Redirect: redirect, Error: "Invalid username or password."})
	}

	ip := clientIP(r)
	attempt, wait, err := h.throttle.Begin(r.Context(), h.scope, ip, cred.Username, time.Now())
	if err != nil {
		if r.Context().Err() != nil {
			return nil // the client hung up; nothing was checked or counted
		}
		h.metrics.logins.WithLabelValues("error").Inc()
		// Only a store keeps counts that can fail (the redis store): the
		// error names it and its servers.
		h.logger.Error("session store unavailable: login refused", zap.String("user", cred.Username), zap.String("remote_ip", ip), zap.Error(err))
		return h.serviceUnavailable(w)
	}
	if attempt == nil {
		h.metrics.logins.WithLabelValues("throttled").Inc()
		h.logger.Warn("login throttled", zap.String("user", cred.Username), zap.String("remote_ip", ip))
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		if pages.WantsPage(r) {
			return h.renderMessage(w, http.StatusTooManyRequests, pages.Message{
				Heading:  "Too many failed sign-ins",
				Text:     "Signing in is paused after too many wrong passwords. Try again " + retryIn(secs) + ".",
				Link:     h.endpointURL(r, "/login") + "?redirect=" + url.QueryEscape(redirect),
				LinkText: "Back to the sign-in page",
			})
		}
		return pages.WriteJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed logins, try again later"})
	}
	defer attempt.End()

	fp, ok, err := h.users.Check(cred.Username, cred.Password)
	if err != nil {
		h.logger.Error("password check failed", zap.String("user", cred.Username), zap.String("remote_ip", ip), zap.Error(err))
	}
	if !ok {
		// Counted before anything the client can interrupt.
		attempt.Failed(r.Context(), time.Now())
		h.metrics.logins.WithLabelValues("failure").Inc()
		h.logger.Warn("login failed", zap.String("user", cred.Username), zap.String("remote_ip", ip))
		if isJSON {
			return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid credentials"})
		}
		return h.renderLogin(w, r, http.StatusUnauthorized, pages.Login{Redirect: redirect, Username: cred.Username, Error: "Invalid username or password."})
	}
	attempt.Succeeded(r.Context())

	// The current session, whose data the new one carries over. A store
	// that fails is a 503: logging in would only fail to save.
	old, err := h.sessions.Load(w, r)
	if err != nil {
		h.metrics.logins.WithLabelValues("error").Inc()
		return h.serviceUnavailable(w)
	}

	id := identity.Identity{User: cred.Username, Source: identity.Password, Fingerprint: fp}
	if _, err := h.sessions.Login(r.Context(), w, r, old, id, session.CarriedData(old, id)); err != nil {
		h.metrics.logins.WithLabelValues("error").Inc()
		h.logSaveError(r, "login", err)
		return h.serviceUnavailable(w)
	}
	h.metrics.logins.WithLabelValues("success").Inc()
	h.logger.Info("login", zap.String("user", cred.Username), zap.String("remote_ip", ip))
	if isJSON {
		return pages.WriteJSON(w, http.StatusOK, map[string]string{"user": cred.Username})
	}
	http.Redirect(w, r, redirect, http.StatusSeeOther)
	return nil
}

// retryIn says when to try again, in whole minutes rounded up: a person
// reads "in 15 minutes" better than a count of seconds.
func retryIn(secs int) string {
	minutes := max((secs+59)/60, 1)
	if minutes == 1 {
		return "in 1 minute"
	}
	return "in " + strconv.Itoa(minutes) + " minutes"
}

func zapRemoteIP(r *http.Request) zap.Field { return zap.String("remote_ip", clientIP(r)) }
func zapPath(r *http.Request) zap.Field     { return zap.String("path", r.URL.Path) }
