package endpoints

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

// The second step of a login, and step-up (SPEC §13). A password login of
// a user who has a second factor, or must have one, creates no session:
// it sets a short-lived sealed "pending" cookie that says who proved their
// password and where they were going, and sends them to <prefix>/mfa. A
// session that exists but lacks a second factor where one is needed steps
// up from the session itself. Either way, proving the factor logs the user
// in afresh (a new session ID, the amr extended) and clears the pending
// cookie.

// pendingLifetime is how long a password login waits for its second
// factor: long enough to find a phone, short enough that a browser left
// at the code prompt does not hold a proved password for long.
const pendingLifetime = 5 * time.Minute

// pendingCookieSuffix is added to the session cookie's name for the
// pending cookie's.
const pendingCookieSuffix = "~mfa"

// step is who is proving a second factor now.
type step struct {
	User, Fingerprint string
	Amr               []string         // proved so far, e.g. ["pwd"]
	Redirect          string           // where to go once proved (already checked by redirectTarget)
	Sess              *session.Session // the session stepping up; nil for a login waiting (pending cookie)
	// nonce and issued name the pending cookie of a login waiting, which
	// completes one login only (finishStep claims it).
	nonce  string
	issued time.Time
}

// pending is the pending cookie's content.
type pending struct {
	User        string   `json:"u"`
	Fingerprint string   `json:"f"`
	Amr         []string `json:"a"`
	Redirect    string   `json:"r"`
	Site        string   `json:"s"` // the session site: a cookie of another host is refused
	Issued      int64    `json:"i"` // unix seconds
	Nonce       string   `json:"n"` // names this login waiting: it completes once
}

// SetSecrets makes the keys of the pending cookie (named after the
// session cookie, cookieName) and of the enrolment form's sealed secret
// from the handler's secrets, in its realm. Provision calls it once.
func (m *MFA) SetSecrets(cookieName, realm string, secrets [][]byte) error {
	var err error
	m.pendingName = pendingCookieName(cookieName)
	if m.pendingCodec, err = cookie.NewPurposeCodec("edgesession mfa pending", m.pendingName, realm, secrets, pendingLifetime); err != nil {
		return err
	}
	m.enrolCodec, err = cookie.NewPurposeCodec("edgesession mfa enrolment", "mfa-enrolment", realm, secrets, enrolLifetime)
	return err
}

// pendingCookieName is the pending cookie's name. A __Host- cookie must
// have Path=/, and the pending cookie is kept to the prefix (it never goes
// to the upstream): it becomes __Secure-, which keeps what matters of the
// prefix (Secure, set over HTTPS only).
func pendingCookieName(sessionCookie string) string {
	if cookie.HasPrefixFold(sessionCookie, "__Host-") {
		return "__Secure-" + sessionCookie[len("__Host-"):] + pendingCookieSuffix
	}
	return sessionCookie + pendingCookieSuffix
}

// pendingCookie is the pending cookie with value for a response to r:
// host-only, under <mount><prefix>, HttpOnly, SameSite=Lax, Secure as the
// session cookie is.
func (s *Server) pendingCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	secure := s.c.Cookie.New(r, "").Secure
	return &http.Cookie{
		Name:     s.c.MFA.pendingName,
		Value:    value,
		Path:     s.endpointURL(r, ""),
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   secure || cookie.HasPrefixFold(s.c.MFA.pendingName, "__Secure-"),
		SameSite: http.SameSiteLaxMode,
	}
}

// clearPending tells the browser to drop the pending cookie, if it sent one.
func (s *Server) clearPending(w http.ResponseWriter, r *http.Request) {
	if s.c.MFA == nil {
		return
	}
	if _, err := r.Cookie(s.c.MFA.pendingName); err != nil {
		return
	}
	cookie.ReplaceSet(w.Header(), s.c.MFA.pendingName, s.pendingCookie(r, "", -1).String())
}

// readPending returns the request's pending login, or nil if it has none
// that is valid: sealed by us, not older than pendingLifetime, of this
// site, of a user whose password is still the one proved.
func (s *Server) readPending(r *http.Request) *pending {
	c, err := r.Cookie(s.c.MFA.pendingName)
	if err != nil || c.Value == "" {
		return nil
	}
	raw, err := s.c.MFA.pendingCodec.Verify(c.Value)
	if err != nil {
		s.c.Logger.Debug("pending second-factor cookie refused", s.zapRemoteIP(r), zap.Error(err))
		return nil
	}
	var p pending
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil
	}
	issued := time.Unix(p.Issued, 0)
	if now := time.Now(); issued.After(now.Add(time.Minute)) || now.Sub(issued) > pendingLifetime {
		return nil
	}
	if p.Site != s.c.Sessions.Site(r) || identity.ValidUsername(p.User) != nil {
		return nil
	}
	if fp, ok := s.c.Users.Fingerprint(p.User); !ok || p.Fingerprint == "" || fp != p.Fingerprint {
		// The user was removed or their password changed meanwhile.
		s.c.Logger.Info("pending second-factor login refused: the password changed", zap.String("user", p.User), s.zapRemoteIP(r))
		return nil
	}
	return &p
}

// currentStep is the request's step: the pending cookie's login, or the
// session (which must have a user). nil, nil: none (the caller answers 401
// / sends to the login page). A pending login wins over a session: it is
// the newer act (a password just proved), and completing it replaces the
// session as any login does.
func (s *Server) currentStep(w http.ResponseWriter, r *http.Request) (*step, error) {
	if p := s.readPending(r); p != nil {
		return &step{User: p.User, Fingerprint: p.Fingerprint, Amr: p.Amr, Redirect: p.Redirect, nonce: p.Nonce, issued: time.Unix(p.Issued, 0)}, nil
	}
	sess, err := s.c.Sessions.Load(w, r)
	if err != nil {
		return nil, err
	}
	if sess == nil || sess.Rec.User == "" || sess.Rec.Source != identity.Password {
		// Only local users have second factors here; a provider's
		// sessions prove theirs at the provider.
		return nil, nil
	}
	q := r.Form // the form's redirect field, once parsed (with the query's)
	if q == nil {
		q = r.URL.Query()
	}
	redirect := s.redirectTarget(r, redirectParam(q), home(s.mount(r)))
	return &step{
		User:        sess.Rec.User,
		Fingerprint: sess.Rec.Fingerprint,
		Amr:         identity.AMR(sess.Rec),
		Redirect:    redirect,
		Sess:        sess,
	}, nil
}

// completeStep logs st's user in with amr = st.Amr + factor + "mfa" (new
// session ID, data of st.Sess carried), clears the pending cookie, logs
// "second factor" info with user, factor, remote_ip, and answers: JSON
// {"user":..., "redirect":...} for JSON requests, 303 to st.Redirect
// otherwise.
func (s *Server) completeStep(w http.ResponseWriter, r *http.Request, st *step, factor string) error {
	if err := s.finishStep(w, r, st, factor); err != nil {
		return s.stepNotFinished(w, r, st, err)
	}
	if isJSONRequest(r) {
		return pages.WriteJSON(w, http.StatusOK, map[string]string{"user": st.User, "redirect": st.Redirect})
	}
	http.Redirect(w, r, st.Redirect, http.StatusSeeOther)
	return nil
}

// errStepDone is finishStep's error for a login waiting that has been
// completed already (its pending cookie replayed).
var errStepDone = errors.New("this login waiting for a second factor was completed already")

// finishStep is completeStep without the answer: errStepDone for a
// pending cookie used before, or the store's error (logged).
func (s *Server) finishStep(w http.ResponseWriter, r *http.Request, st *step, factor string) error {
	old := st.Sess
	if old == nil {
		// One pending cookie, one login: a copy of it (with another
		// code) must not make a second session.
		if st.nonce != "" {
			claimed, err := s.c.MFA.Claims.Claim(r.Context(), sessionstore.ClaimKey("mfa pending", st.nonce), st.issued.Add(pendingLifetime+time.Minute))
			if err != nil {
				s.c.Sessions.LogStoreError(r, "claiming a login waiting for a second factor", err)
				return err
			}
			if !claimed {
				s.c.Logger.Warn("second factor refused: the login it completes was completed already (its cookie replayed)", zap.String("user", st.User), s.zapRemoteIP(r))
				return errStepDone
			}
		}
		// A login waiting replaces whatever session the browser has, as
		// the password login would have.
		var err error
		if old, err = s.c.Sessions.Load(w, r); err != nil {
			return err
		}
	}
	amr := slices.Clone(st.Amr)
	for _, m := range []string{factor, identity.AmrMFA} {
		if !slices.Contains(amr, m) {
			amr = append(amr, m)
		}
	}
	id := identity.Identity{User: st.User, Source: identity.Password, Fingerprint: st.Fingerprint, Amr: amr}
	if _, err := s.c.Sessions.Login(r.Context(), w, r, old, id, session.CarriedData(old, id)); err != nil {
		s.c.Metrics.Login("error")
		s.c.Sessions.LogSaveError(r, "second factor", err)
		return err
	}
	s.clearPending(w, r)
	if st.Sess == nil {
		s.c.Metrics.Login("success") // the login the password began
	}
	s.c.Logger.Info("second factor", zap.String("user", st.User), zap.String("factor", factor), s.zapRemoteIP(r))
	return nil
}

// stepNotFinished answers what finishStep returned: 401 for a pending
// cookie used before (sign in again), 503 for a store that failed.
func (s *Server) stepNotFinished(w http.ResponseWriter, r *http.Request, st *step, err error) error {
	if !errors.Is(err, errStepDone) {
		return ServiceUnavailable(w)
	}
	s.clearPending(w, r)
	if pages.WantsPage(r) {
		return s.renderMessage(w, http.StatusUnauthorized, pages.Message{
			Heading:  "Sign in again",
			Text:     "This sign-in was completed already, in this browser or another. Sign in again with your password.",
			Link:     s.endpointURL(r, "/login") + "?redirect=" + url.QueryEscape(st.Redirect),
			LinkText: "Go to the sign-in page",
		})
	}
	return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "login already completed: sign in again"})
}

// startStep is for a password login that needs a second factor: sets the
// pending cookie, redirects (303) to <prefix>/mfa?redirect=... (or JSON
// 401 {"error":"second factor required","next":url}).
func (s *Server) startStep(w http.ResponseWriter, r *http.Request, id identity.Identity, redirect string) error {
	amr := id.Amr
	if len(amr) == 0 {
		amr = []string{identity.AmrPassword}
	}
	nonce := rand.Text()
	raw, err := json.Marshal(pending{
		User: id.User, Fingerprint: id.Fingerprint, Amr: amr, Redirect: redirect,
		Site: s.c.Sessions.Site(r), Issued: time.Now().Unix(), Nonce: nonce,
	})
	if err != nil {
		return err
	}
	value, err := s.c.MFA.pendingCodec.Encode(raw)
	if err != nil {
		// Only a redirect too long for a cookie: go home afterwards.
		p := pending{User: id.User, Fingerprint: id.Fingerprint, Amr: amr, Redirect: home(s.mount(r)), Site: s.c.Sessions.Site(r), Issued: time.Now().Unix(), Nonce: nonce}
		raw, _ = json.Marshal(p)
		if value, err = s.c.MFA.pendingCodec.Encode(raw); err != nil {
			return err
		}
	}
	cookie.ReplaceSet(w.Header(), s.c.MFA.pendingName, s.pendingCookie(r, value, int(pendingLifetime/time.Second)).String())
	s.c.Logger.Info("password proved, second factor next", zap.String("user", id.User), s.zapRemoteIP(r))
	next := s.endpointURL(r, "/mfa") + "?redirect=" + url.QueryEscape(redirect)
	if isJSONRequest(r) {
		return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "second factor required", "next": next})
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// isJSONRequest reports whether r is an API client's: a JSON body, or
// Accept asking for JSON first.
func isJSONRequest(r *http.Request) bool {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mediaType == "application/json" || pages.AcceptsJSON(r)
}

// needsSecondFactor reports whether a password login of user must prove
// a second factor: they have one enrolled, or the policy says they must.
// An error is the store's (logged; the caller answers 503).
func (s *Server) needsSecondFactor(r *http.Request, user string) (bool, error) {
	if s.c.MFA == nil || s.c.MFA.Service == nil {
		return false, nil
	}
	if s.c.MFA.Policy.Required(user, s.c.Users.GroupSet(user)) {
		return true, nil
	}
	creds, err := s.c.MFA.Store.Load(r.Context(), user)
	if err != nil {
		s.c.Logger.Error("second factors unavailable: login refused", zap.String("user", user), s.zapRemoteIP(r), zap.Error(err))
		return false, err
	}
	return creds.Enrolled(), nil
}
