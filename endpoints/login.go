package endpoints

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
)

// maxLoginBody bounds a login request body.
const maxLoginBody = 64 << 10

// maxPassword bounds a password: bcrypt reads 72 bytes, and a huge one
// would only make argon2id work harder.
const maxPassword = 1024

// signedOut is the query parameter of the login page that a logout lands
// on; the page then says the user has signed out.
const signedOut = "signed_out"

func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		q := r.URL.Query()
		page := pages.Login{Redirect: s.redirectTarget(r, redirectParam(q), home(s.mount(r)))}
		if q.Get(signedOut) == "1" {
			// Anyone can link here: say it only when it is true.
			if sess, err := s.c.Sessions.Load(w, r); err == nil && (sess == nil || sess.Rec.User == "") {
				page.Notice = "You have signed out."
			}
		}
		if name := q.Get("provider"); name != "" {
			return s.startOIDCLogin(w, r, name, page.Redirect)
		}
		return s.renderLogin(w, r, http.StatusOK, page)
	case http.MethodPost:
		return s.postLogin(w, r)
	}
	return methodNotAllowed(w, "GET, HEAD, POST")
}

// redirectParam is where to go after login or logout: the redirect
// parameter, or rd (as oauth2-proxy and Authelia name it), or next, which
// Django and Flask-Login send.
func redirectParam(v url.Values) string {
	for _, name := range [...]string{"redirect", "rd", "next"} {
		if target := v.Get(name); target != "" {
			return target
		}
	}
	return ""
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Redirect string `json:"redirect"`
	Rd       string `json:"rd"`   // an alias of redirect
	Next     string `json:"next"` // an alias of redirect
}

func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) error {
	if !s.sameOrigin(w, r) {
		return nil
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := mediaType == "application/json"
	if !isJSON && mediaType != "application/x-www-form-urlencoded" {
		return s.unsupportedBody(w, r, "login")
	}

	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	var cred credentials
	var err error
	if isJSON {
		err = readJSONBody(r.Body, &cred, func(err error) error {
			var notObject *json.UnmarshalTypeError
			if errors.As(err, &notObject) && notObject.Field == "" {
				// Go's message names the struct's package, which says
				// nothing to an operator and moves with the code.
				return errors.New("body is not a JSON object")
			}
			return err
		})
	} else if err = r.ParseForm(); err == nil {
		cred = credentials{Username: r.PostForm.Get("username"), Password: r.PostForm.Get("password"), Redirect: redirectParam(r.PostForm)}
	}
	if err != nil {
		return s.badBody(w, r, "login", err)
	}
	if cred.Redirect == "" {
		cred.Redirect = cred.Rd
	}
	if cred.Redirect == "" {
		cred.Redirect = cred.Next
	}
	redirect := s.redirectTarget(r, cred.Redirect, home(s.mount(r)))
	if err := identity.ValidUsername(cred.Username); err != nil || len(cred.Password) > maxPassword {
		s.c.Logger.Warn("malformed login request", s.zapRemoteIP(r), zap.NamedError("reason", err))
		if isJSON {
			return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed login request"})
		}
		return s.renderLogin(w, r, http.StatusBadRequest, pages.Login{Redirect: redirect, Error: "Invalid username or password."})
	}

	ip := s.c.ClientIP(r)
	attempt, wait, err := s.c.Throttle.Begin(r.Context(), s.c.ThrottleScope, ip, cred.Username, time.Now())
	if err != nil {
		if r.Context().Err() != nil {
			return nil // the client hung up; nothing was checked or counted
		}
		s.c.Metrics.Login("error")
		// Only a store keeps counts that can fail (the redis store): the
		// error names it and its servers.
		s.c.Logger.Error("session store unavailable: login refused", zap.String("user", cred.Username), zap.String("remote_ip", ip), zap.Error(err))
		return ServiceUnavailable(w)
	}
	if attempt == nil {
		s.c.Metrics.Login("throttled")
		s.c.Logger.Warn("login throttled", zap.String("user", cred.Username), zap.String("remote_ip", ip))
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		if pages.WantsPage(r) {
			return s.renderMessage(w, http.StatusTooManyRequests, pages.Message{
				Heading:  "Too many failed sign-ins",
				Text:     "Signing in is paused after too many wrong passwords. Try again " + retryIn(secs) + ".",
				Link:     s.endpointURL(r, "/login") + "?redirect=" + url.QueryEscape(redirect),
				LinkText: "Back to the sign-in page",
			})
		}
		return pages.WriteJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed logins, try again later"})
	}
	defer attempt.End()

	fp, ok, err := s.c.Users.Check(cred.Username, cred.Password)
	if err != nil {
		s.c.Logger.Error("password check failed", zap.String("user", cred.Username), zap.String("remote_ip", ip), zap.Error(err))
	}
	if !ok {
		// Counted before anything the client can interrupt.
		attempt.Failed(r.Context(), time.Now())
		s.c.Metrics.Login("failure")
		s.c.Logger.Warn("login failed", zap.String("user", cred.Username), zap.String("remote_ip", ip))
		if isJSON {
			return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid credentials"})
		}
		return s.renderLogin(w, r, http.StatusUnauthorized, pages.Login{Redirect: redirect, Username: cred.Username, Error: "Invalid username or password."})
	}
	attempt.Succeeded(r.Context())

	// The current session, whose data the new one carries over. A store
	// that fails is a 503: logging in would only fail to save.
	old, err := s.c.Sessions.Load(w, r)
	if err != nil {
		s.c.Metrics.Login("error")
		return ServiceUnavailable(w)
	}

	id := identity.Identity{User: cred.Username, Source: identity.Password, Fingerprint: fp}
	if need, err := s.needsSecondFactor(r, cred.Username); err != nil {
		s.c.Metrics.Login("error")
		return ServiceUnavailable(w)
	} else if need {
		// No session yet: the second step logs in (mfa_step.go).
		return s.startStep(w, r, id, redirect)
	}
	if _, err := s.c.Sessions.Login(r.Context(), w, r, old, id, session.CarriedData(old, id)); err != nil {
		s.c.Metrics.Login("error")
		s.c.Sessions.LogSaveError(r, "login", err)
		return ServiceUnavailable(w)
	}
	s.c.Metrics.Login("success")
	s.c.Logger.Info("login", zap.String("user", cred.Username), zap.String("remote_ip", ip))
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
