package endpoints

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/mfa"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/throttle"
	"go.uber.org/zap"
)

// MFA is what the second-factor endpoints need (SPEC §13); nil in Config
// turns them off: no enrolment, no second step, no passkey login.
type MFA struct {
	// Store keeps the users' credentials; Claims remembers the codes used.
	Store  *mfa.Store
	Claims sessionstore.Claimer
	// Policy says who must prove a second factor at login.
	Policy *mfa.Policy

	// A: Count counts one second-factor event for the metrics: event is
	// enrolled, removed, reset, verified, failed, replayed or throttled;
	// method is totp, passkey, recovery or all. Never nil once provisioned.
	Count func(event, method string)

	// B2: TOTP and recovery codes, the second step, enrolment.
	// Service verifies and enrols TOTP and recovery codes; its Issuer is
	// the handler's title, or "" for the request's host at enrolment.
	Service *mfa.Service
	// the pending cookie's name and keys, and the enrolment form's
	// (SetSecrets makes them)
	pendingName  string
	pendingCodec *cookie.Codec
	enrolCodec   *cookie.Codec

	// C: passkeys. RPID is the WebAuthn relying party ID ("" for the
	// request's host, without its port); Origins are the origins whose
	// pages may use the passkeys (none: the request's own). PasskeyCookie
	// seals the ceremonies' challenges into a short-lived cookie.
	RPID          string
	Origins       []string
	PasskeyCookie *cookie.Codec
}

// enrolLifetime is how long the enrolment form's sealed secret is good
// for: time to scan a QR code and type a code.
const enrolLifetime = 10 * time.Minute

// count counts one second-factor event of method in the metrics (see
// Count), when they are wired.
func (m *MFA) count(event, method string) {
	if m.Count != nil {
		m.Count(event, method)
	}
}

// Owes reports whether the session rec, of a user in groups, owes a second
// factor: a local user whom the policy requires to prove one, and whose
// session has not (one from before the policy named them). Such a session
// is no one's until it steps up: the handler forwards nothing of it, and
// the endpoints that act as its user (whoami, the sessions page) send it
// to the second step. m may be nil (second factors off): false.
func (m *MFA) Owes(rec sessionstore.Record, groups mfa.Groups) bool {
	if m == nil || rec.User == "" || rec.Source != identity.Password || identity.HasMFA(rec.Amr) {
		return false
	}
	return m.Policy.Required(rec.User, groups)
}

// owes is Owes for a session the endpoints loaded: its groups are the
// password users' (the only source a policy applies to).
func (s *Server) owes(sess *session.Session) bool {
	if s.c.MFA == nil || sess == nil || sess.Rec.Source != identity.Password {
		return false
	}
	return s.c.MFA.Owes(sess.Rec, s.c.Users.GroupSet(sess.Rec.User))
}

// SecondFactorRequired answers a request of a user who must prove a
// second factor first and whose session has none: a browser navigating
// goes to the second step (<prefix>/mfa), and from there back to where it
// was going; anything else gets 401. Nothing reaches the upstream.
func (s *Server) SecondFactorRequired(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	if _, sure := s.c.Mount(r); !sure {
		return s.c.Unmounted(w, r, "second factor")
	}
	w.Header().Set("Cache-Control", "no-store")
	if pages.IsNavigation(r) {
		target := s.endpointURL(r, "/mfa") + "?redirect=" + url.QueryEscape(s.c.OriginalURI(r))
		http.Redirect(w, r, target, http.StatusFound)
		return nil
	}
	return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "second factor required"})
}

// <prefix>/mfa and what is under it: the second step and the user's own
// TOTP and recovery codes (passkeys are passkey.go's).
//
//	GET  <prefix>/mfa                 the second step: a code (?recovery=1: a recovery code)
//	POST <prefix>/mfa  code=…         prove it (JSON {"code":…} too); kind=recovery for a recovery code
//	GET  <prefix>/mfa/totp            TOTP enrolment (from a session: the password again first)
//	POST <prefix>/mfa/totp            password=… (from a session), then sealed=…&code=… to turn it on
//	POST <prefix>/mfa/totp/remove     password=…: remove the authenticator app
//	POST <prefix>/mfa/recovery        password=…: new recovery codes (the old ones stop working)

// maxMFABody bounds the body of a second-factor form.
const maxMFABody = 16 << 10

// serveMFA serves <prefix>/mfa and what is under it (rest: "" or "/totp"...).
func (s *Server) serveMFA(w http.ResponseWriter, r *http.Request, rest string) error {
	if s.c.MFA.Service == nil {
		return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	}
	switch rest {
	case "", "/":
		return s.serveStep(w, r)
	case "/totp":
		return s.serveEnrolTOTP(w, r)
	case "/totp/remove":
		return s.serveRemoveTOTP(w, r)
	case "/recovery":
		return s.serveNewCodes(w, r)
	}
	return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}

// mfaForm is what a second-factor form or JSON body sends.
type mfaForm struct {
	Code     string `json:"code"`
	Kind     string `json:"kind"` // "recovery" for a recovery code
	Password string `json:"password"`
	Sealed   string `json:"sealed"`
	Redirect string `json:"redirect"`
}

// readMFAForm reads a POST's form or JSON body, and leaves its redirect in
// r.Form for currentStep. false: it has answered (400, 413, 415).
func (s *Server) readMFAForm(w http.ResponseWriter, r *http.Request) (mfaForm, bool) {
	var f mfaForm
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	r.Body = http.MaxBytesReader(w, r.Body, maxMFABody)
	var err error
	switch mediaType {
	case "application/json":
		err = readJSONBody(r.Body, &f, func(error) error { return errors.New("body is not a JSON object of strings") })
		r.Form = url.Values{"redirect": {f.Redirect}}
	case "application/x-www-form-urlencoded":
		if err = r.ParseForm(); err == nil {
			f = mfaForm{Code: r.PostForm.Get("code"), Kind: r.PostForm.Get("kind"), Password: r.PostForm.Get("password"), Sealed: r.PostForm.Get("sealed"), Redirect: redirectParam(r.PostForm)}
		}
	default:
		s.unsupportedBody(w, r, "second-factor")
		return f, false
	}
	if err == nil && (len(f.Code) > 64 || len(f.Password) > maxPassword || len(f.Sealed) > 4096) {
		err = errors.New("a field is too long")
	}
	if err != nil {
		s.badBody(w, r, "second-factor", err)
		return f, false
	}
	return f, true
}

// noStep answers a second-factor request with neither a login waiting nor
// a session: the login page (navigating), a page saying the sign-in
// expired (a form), or 401 JSON.
func (s *Server) noStep(w http.ResponseWriter, r *http.Request) error {
	if sess, err := s.c.Sessions.Load(w, r); err == nil && sess != nil && sess.Rec.User != "" {
		// A provider's (or the upstream's) session, sent here by a rule
		// that says mfa: its second factor is proved where it signed in,
		// never here. The login page would only bring it back (a loop).
		s.c.Logger.Info("second factor asked of a session from another source", zap.String("user", sess.Rec.User), zap.String("source", sess.Rec.Source), s.zapRemoteIP(r))
		if pages.WantsPage(r) {
			return s.renderMessage(w, http.StatusForbidden, pages.Message{
				Heading:  "A second factor is needed",
				Text:     "This page needs a sign-in with a second factor, and yours did not report one. Sign out, then sign in again in a way that proves a second factor (with your provider's, for example).",
				Link:     s.endpointURL(r, "/login") + "?redirect=" + url.QueryEscape(s.redirectTarget(r, redirectParam(r.URL.Query()), home(s.mount(r)))),
				LinkText: "Go to the sign-in page",
			})
		}
		return pages.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "second factor required, and this session's source proves none here"})
	}
	if pages.IsNavigation(r) {
		return s.LoginRequired(w, r)
	}
	s.c.Logger.Info("second factor without a login waiting or a session", s.zapRemoteIP(r))
	if pages.WantsPage(r) {
		return s.renderMessage(w, http.StatusUnauthorized, pages.Message{
			Heading:  "Sign in again",
			Text:     "Your sign-in waited too long for its second step, or was cancelled. Sign in again with your password.",
			Link:     s.endpointURL(r, "/login"),
			LinkText: "Go to the sign-in page",
		})
	}
	return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "login required"})
}

// stepAndCredentials is the request's step and its user's credentials;
// false: answered (no step, the store down).
func (s *Server) stepAndCredentials(w http.ResponseWriter, r *http.Request) (*step, *mfa.Credentials, bool) {
	st, err := s.currentStep(w, r)
	if err != nil {
		ServiceUnavailable(w)
		return nil, nil, false
	}
	if st == nil {
		s.noStep(w, r)
		return nil, nil, false
	}
	creds, err := s.c.MFA.Store.Load(r.Context(), st.User)
	if err != nil {
		s.c.Logger.Error("second factors unavailable", zap.String("user", st.User), s.zapRemoteIP(r), zap.Error(err))
		ServiceUnavailable(w)
		return nil, nil, false
	}
	return st, creds, true
}

// serveStep is the second step: the page asking for a code, and its POST.
func (s *Server) serveStep(w http.ResponseWriter, r *http.Request) error {
	f, ok := s.mfaPageRequest(w, r)
	if !ok {
		return nil
	}
	st, creds, ok := s.stepAndCredentials(w, r)
	if !ok {
		return nil
	}
	if st.Sess != nil && identity.HasMFA(st.Amr) {
		// Proved already: nothing to do here. A script that posts a code
		// learns that it was not checked (a 200 would say it was right).
		if isJSONRequest(r) {
			if r.Method == http.MethodPost {
				return pages.WriteJSON(w, http.StatusConflict, map[string]string{"error": "second factor proved already: code not checked", "redirect": st.Redirect})
			}
			return pages.WriteJSON(w, http.StatusOK, map[string]string{"user": st.User, "redirect": st.Redirect})
		}
		http.Redirect(w, r, st.Redirect, http.StatusSeeOther)
		return nil
	}
	if !creds.Enrolled() {
		// Sent here by a login or a rule that needs a factor the user
		// does not have yet: enrol one.
		next := s.endpointURL(r, "/mfa/totp") + "?redirect=" + url.QueryEscape(st.Redirect)
		if isJSONRequest(r) {
			return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "second factor not enrolled", "next": next})
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	page := pages.MFA{
		User:        st.User,
		Redirect:    st.Redirect,
		HasTOTP:     creds.TOTP != nil,
		HasRecovery: len(creds.Recovery) > 0,
		Passkeys:    len(creds.Passkeys) > 0,
		StepUp:      st.Sess != nil,
	}
	page.Recovery = !page.HasTOTP || r.URL.Query().Get("recovery") == "1" || f.Kind == "recovery"
	if r.Method != http.MethodPost {
		if isJSONRequest(r) {
			methods := []string{}
			if page.HasTOTP {
				methods = append(methods, "totp")
			}
			if page.HasRecovery {
				methods = append(methods, "recovery")
			}
			if page.Passkeys {
				methods = append(methods, "passkey")
			}
			return pages.WriteJSON(w, http.StatusOK, map[string]any{"user": st.User, "methods": methods})
		}
		return s.renderStep(w, r, http.StatusOK, page)
	}

	code := strings.Join(strings.Fields(f.Code), "")
	recovery := f.Kind == "recovery" || len(code) != 6
	method := "totp"
	if recovery {
		method = "recovery"
	}
	attempt, answered := s.beginCodeAttempt(w, r, st.User, page.Redirect)
	if answered {
		return nil
	}
	defer attempt.End()
	var err error
	if code == "" {
		err = mfa.ErrBadCode
	} else if recovery {
		err = s.c.MFA.Service.UseRecoveryCode(r.Context(), st.User, code)
	} else {
		err = s.c.MFA.Service.VerifyTOTP(r.Context(), st.User, code)
	}
	switch {
	case err == nil:
		s.c.MFA.count("verified", method)
	case errors.Is(err, mfa.ErrBadCode), errors.Is(err, mfa.ErrCodeUsed):
		attempt.Failed(r.Context(), time.Now())
		used := errors.Is(err, mfa.ErrCodeUsed)
		if used {
			s.c.MFA.count("replayed", method)
		} else {
			s.c.MFA.count("failed", method)
		}
		s.c.Logger.Warn("second factor failed", zap.String("user", st.User), zap.String("method", method), zap.Bool("used_before", used), s.zapRemoteIP(r))
		if isJSONRequest(r) {
			msg := "wrong code"
			if used {
				msg = "code already used"
			}
			return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": msg})
		}
		page.Recovery = recovery && page.HasRecovery || !page.HasTOTP
		page.Error = "That code is not right. Check it and try again."
		if used {
			page.Error = "That code was used already. Wait for the next one and enter it."
		}
		return s.renderStep(w, r, http.StatusUnauthorized, page)
	default:
		s.c.Logger.Error("second factor unavailable", zap.String("user", st.User), zap.String("method", method), s.zapRemoteIP(r), zap.Error(err))
		return ServiceUnavailable(w)
	}
	attempt.Succeeded(r.Context())
	if recovery {
		left := max(len(creds.Recovery)-1, 0)
		s.c.Logger.Info("recovery code used", zap.String("user", st.User), zap.Int("left", left), s.zapRemoteIP(r))
	}
	return s.completeStep(w, r, st, identity.AmrOTP)
}

func (s *Server) renderStep(w http.ResponseWriter, r *http.Request, status int, page pages.MFA) error {
	page.Title = s.c.Title
	page.Action = s.endpointURL(r, "/mfa")
	base := page.Action + "?redirect=" + url.QueryEscape(page.Redirect)
	page.RecoveryLink = base + "&recovery=1"
	page.CodeLink = base
	page.Cancel = s.endpointURL(r, "/logout")
	return s.c.Pages.MFA(w, status, page)
}

// beginCodeAttempt starts one attempt at a code of user, counted twice in
// the scope ThrottleScope+" mfa": per user and address, as a login is,
// and per user over every address (login_limit's failures, with the
// attempts in flight: a burst of parallel guesses gets no more), so that
// an attacker who has the password cannot multiply their guesses by
// asking from many addresses (a /48 holds 65,536 /64s). Someone with the
// password can so pause the user's codes for a window; passkeys are not
// paused, and every refusal is logged. answered: it was refused (429,
// 503).
func (s *Server) beginCodeAttempt(w http.ResponseWriter, r *http.Request, user, redirect string) (codeAttempt, bool) {
	const heading, text = "Too many wrong codes", "Checking codes is paused after too many wrong ones."
	scope, ip := s.c.ThrottleScope+" mfa", s.c.ClientIP(r)
	own, answered := s.beginAttemptAs(w, r, scope, ip, user, user, redirect, heading, text)
	if answered {
		return codeAttempt{}, true
	}
	// One "address" for all of the user's: the throttle's count per
	// address and user, which holds its attempts in flight too, is then
	// the user's over every address.
	all, answered := s.beginAttemptAs(w, r, scope+" any address", "every address of "+user, user, user, redirect, heading, text)
	if answered {
		own.End()
		return codeAttempt{}, true
	}
	return codeAttempt{own, all}, false
}

// codeAttempt is an attempt at a code, in both of its counts.
type codeAttempt struct{ own, all *throttle.Attempt }

func (a codeAttempt) Failed(ctx context.Context, now time.Time) {
	a.own.Failed(ctx, now)
	a.all.Failed(ctx, now)
}

func (a codeAttempt) Succeeded(ctx context.Context) {
	a.own.Succeeded(ctx)
	a.all.Succeeded(ctx)
}

func (a codeAttempt) End() {
	if a.own != nil {
		a.own.End()
		a.all.End()
	}
}

// beginAttempt starts an attempt in scope, as a login does.
func (s *Server) beginAttempt(w http.ResponseWriter, r *http.Request, scope, user, redirect, heading, text string) (*throttle.Attempt, bool) {
	return s.beginAttemptAs(w, r, scope, s.c.ClientIP(r), user, user, redirect, heading, text)
}

// beginAttemptAs is beginAttempt counted under the throttle's keys
// keyIP and keyUser, for user (as logged).
func (s *Server) beginAttemptAs(w http.ResponseWriter, r *http.Request, scope, keyIP, keyUser, user, redirect, heading, text string) (*throttle.Attempt, bool) {
	ip := s.c.ClientIP(r)
	attempt, wait, err := s.c.Throttle.Begin(r.Context(), scope, keyIP, keyUser, time.Now())
	if err != nil {
		if r.Context().Err() == nil {
			s.c.Logger.Error("session store unavailable: second factor refused", zap.String("user", user), zap.String("remote_ip", ip), zap.Error(err))
			ServiceUnavailable(w)
		}
		return nil, true
	}
	if attempt != nil {
		return attempt, false
	}
	s.c.MFA.count("throttled", "all")
	s.c.Logger.Warn("second factor throttled", zap.String("user", user), zap.String("remote_ip", ip))
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	if pages.WantsPage(r) {
		s.renderMessage(w, http.StatusTooManyRequests, pages.Message{
			Heading:  heading,
			Text:     text + " Try again " + retryIn(secs) + ".",
			Link:     s.endpointURL(r, "/mfa") + "?redirect=" + url.QueryEscape(redirect),
			LinkText: "Back",
		})
		return nil, true
	}
	pages.WriteJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed attempts, try again later"})
	return nil, true
}

// mfaPageRequest admits a request to a second-factor page: GET or HEAD
// (no form), or a same-origin POST and its form; false: answered (405,
// 403, 4xx for the body).
func (s *Server) mfaPageRequest(w http.ResponseWriter, r *http.Request) (mfaForm, bool) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return mfaForm{}, true
	case http.MethodPost:
		if !s.sameOrigin(w, r) {
			return mfaForm{}, false
		}
		return s.readMFAForm(w, r)
	}
	methodNotAllowed(w, "GET, HEAD, POST")
	return mfaForm{}, false
}
