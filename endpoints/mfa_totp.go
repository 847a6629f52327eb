package endpoints

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/mfa"
	"github.com/edgesession/edgesession/pages"
)

// The user's own TOTP authenticator and recovery codes: enrolment (the QR
// code, the text secret, one code to confirm), removal and new recovery
// codes. From a session each asks for the password again (a session left
// open on a shared computer must not be enough to change how the account
// is protected); a login waiting for its second step has just proved it.
//
// Whoever has a factor already changes their factors only from a session
// that proved one: otherwise the password alone (a login waiting, or a
// session from before the factor) could swap the factor for the
// attacker's own.

// enrolment is the enrolment form's sealed state: the secret being
// enrolled, bound to its user, between the page that shows it and the
// code that confirms it. It never reaches the browser in plain.
type enrolment struct {
	User   string `json:"u"`
	Secret string `json:"s"`
	Issued int64  `json:"i"`
}

// mayChangeFactors reports whether st may change its user's factors, and
// if not, sends it to prove the factor it has first.
func (s *Server) mayChangeFactors(w http.ResponseWriter, r *http.Request, st *step, creds *mfa.Credentials) bool {
	if !creds.Enrolled() || st.Sess != nil && identity.HasMFA(st.Amr) {
		return true
	}
	s.c.Logger.Info("second factors changed only after proving one: sent to the second step", zap.String("user", st.User), s.zapRemoteIP(r))
	back := st.Redirect
	if st.Sess != nil {
		back = s.endpointURL(r, "/sessions")
	}
	next := s.endpointURL(r, "/mfa") + "?redirect=" + url.QueryEscape(back)
	if isJSONRequest(r) {
		pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "second factor required", "next": next})
		return false
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return false
}

// passwordAgain checks the password of st's user again, throttled as a
// login; false: answered (a page asking again, 401, 429, 503).
func (s *Server) passwordAgain(w http.ResponseWriter, r *http.Request, st *step, password string, again func(msg string) error) bool {
	attempt, answered := s.beginAttempt(w, r, s.c.ThrottleScope, st.User, st.Redirect, "Too many wrong passwords", "Checking passwords is paused after too many wrong ones.")
	if answered {
		return false
	}
	defer attempt.End()
	fp, ok, err := s.c.Users.Check(st.User, password)
	if err != nil {
		s.c.Logger.Error("password check failed", zap.String("user", st.User), s.zapRemoteIP(r), zap.Error(err))
	}
	if !ok || fp != st.Fingerprint {
		attempt.Failed(r.Context(), time.Now())
		s.c.Metrics.Login("failure")
		s.c.Logger.Warn("password proved again: wrong", zap.String("user", st.User), s.zapRemoteIP(r))
		if isJSONRequest(r) {
			pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid credentials"})
		} else {
			again("That password is not right.")
		}
		return false
	}
	attempt.Succeeded(r.Context())
	return true
}

// serveEnrolTOTP is <prefix>/mfa/totp: the password again (from a
// session), then the QR code and the first code.
func (s *Server) serveEnrolTOTP(w http.ResponseWriter, r *http.Request) error {
	f, ok := s.mfaPageRequest(w, r)
	if !ok {
		return nil
	}
	st, creds, ok := s.stepAndCredentials(w, r)
	if !ok || !s.mayChangeFactors(w, r, st, creds) {
		return nil
	}
	page := pages.MFATOTP{User: st.User, Redirect: st.Redirect, Required: st.Sess == nil}
	if st.Sess == nil {
		page.Back, page.SignOut = s.endpointURL(r, "/logout"), true
	} else {
		page.Back = s.endpointURL(r, "/sessions")
	}

	switch {
	case r.Method != http.MethodPost && st.Sess != nil, r.Method == http.MethodPost && f.Sealed == "" && st.Sess != nil && f.Password == "":
		page.AskPassword = true
		return s.renderEnrolTOTP(w, r, http.StatusOK, page)
	case f.Sealed == "" && st.Sess != nil:
		if !s.passwordAgain(w, r, st, f.Password, func(msg string) error {
			page.AskPassword, page.Error = true, msg
			return s.renderEnrolTOTP(w, r, http.StatusUnauthorized, page)
		}) {
			return nil
		}
		fallthrough
	case f.Sealed == "":
		return s.showNewSecret(w, r, st, page, http.StatusOK)
	}

	// The first code, with the sealed secret.
	var e enrolment
	raw, err := s.c.MFA.enrolCodec.Verify(f.Sealed)
	if err == nil {
		err = json.Unmarshal(raw, &e)
	}
	if err != nil || e.User != st.User || time.Since(time.Unix(e.Issued, 0)) > enrolLifetime {
		s.c.Logger.Warn("totp enrolment refused: the sealed secret is expired, forged or another user's", zap.String("user", st.User), s.zapRemoteIP(r))
		if st.Sess != nil {
			page.AskPassword = true
			page.Error = "This setup took too long or was not valid. Enter your password to start again."
			return s.renderEnrolTOTP(w, r, http.StatusBadRequest, page)
		}
		page.Error = "This setup took too long or was not valid. Scan this new QR code instead."
		return s.showNewSecret(w, r, st, page, http.StatusBadRequest)
	}
	attempt, answered := s.beginCodeAttempt(w, r, st.User, st.Redirect)
	if answered {
		return nil
	}
	defer attempt.End()
	code := strings.Join(strings.Fields(f.Code), "")
	err = s.c.MFA.Service.EnrolTOTP(r.Context(), st.User, e.Secret, code)
	switch {
	case err == nil:
	case errors.Is(err, mfa.ErrBadCode), errors.Is(err, mfa.ErrCodeUsed), errors.Is(err, mfa.ErrBadSecret):
		attempt.Failed(r.Context(), time.Now())
		s.c.MFA.count("failed", "totp")
		s.c.Logger.Warn("totp enrolment: wrong code", zap.String("user", st.User), s.zapRemoteIP(r))
		page.Error = "That code is not right. Check the app shows this site's account, and enter the code it shows now."
		return s.showSecret(w, r, page, f.Sealed, e.Secret, http.StatusUnauthorized)
	default:
		s.c.Logger.Error("totp enrolment failed", zap.String("user", st.User), s.zapRemoteIP(r), zap.Error(err))
		return ServiceUnavailable(w)
	}
	attempt.Succeeded(r.Context())
	s.c.MFA.count("enrolled", "totp")
	s.c.Logger.Info("totp enrolled", zap.String("user", st.User), s.zapRemoteIP(r))
	codes, err := s.c.MFA.Service.NewRecoveryCodes(r.Context(), st.User)
	if err != nil {
		s.c.Logger.Error("recovery codes not made", zap.String("user", st.User), s.zapRemoteIP(r), zap.Error(err))
	}
	// The code just proved the new factor: the login (or the session)
	// has it now.
	if err := s.finishStep(w, r, st, identity.AmrOTP); err != nil {
		return s.stepNotFinished(w, r, st, err)
	}
	s.endWeakerSessions(r, st.User, nil) // this one has the factor now
	return s.c.Pages.MFACodes(w, http.StatusOK, pages.MFACodes{Title: s.c.Title, User: st.User, Codes: codes, Continue: st.Redirect, Enrolled: true})
}

// showNewSecret makes a new secret for st's user and shows it.
func (s *Server) showNewSecret(w http.ResponseWriter, r *http.Request, st *step, page pages.MFATOTP, status int) error {
	svc := *s.c.MFA.Service
	if svc.Issuer == "" {
		svc.Issuer = s.c.Sessions.Site(r)
	}
	key, err := svc.NewTOTP(st.User)
	if err != nil {
		s.c.Logger.Error("totp secret not made", zap.String("user", st.User), zap.Error(err))
		return ServiceUnavailable(w)
	}
	raw, _ := json.Marshal(enrolment{User: st.User, Secret: key.Secret(), Issued: time.Now().Unix()})
	sealed, err := s.c.MFA.enrolCodec.Encode(raw)
	if err != nil {
		return err
	}
	page.QRURL = key.URL()
	return s.showSecret(w, r, page, sealed, key.Secret(), status)
}

// showSecret shows the QR code stage of the enrolment page.
func (s *Server) showSecret(w http.ResponseWriter, r *http.Request, page pages.MFATOTP, sealed, secret string, status int) error {
	if page.QRURL == "" {
		svc := *s.c.MFA.Service
		if svc.Issuer == "" {
			svc.Issuer = s.c.Sessions.Site(r)
		}
		page.QRURL = totpURL(svc.Issuer, page.User, secret)
	}
	path, size, err := qrPath(page.QRURL)
	if err != nil {
		return err
	}
	page.Sealed, page.QRPath, page.QRSize = sealed, path, size
	page.Secret = groupsOf4(secret)
	page.QRURL = ""
	return s.renderEnrolTOTP(w, r, status, page)
}

func (s *Server) renderEnrolTOTP(w http.ResponseWriter, r *http.Request, status int, page pages.MFATOTP) error {
	page.Title = s.c.Title
	page.Action = s.endpointURL(r, "/mfa/totp")
	return s.c.Pages.MFATOTP(w, status, page)
}

// totpURL is the otpauth URL of secret, as NewTOTP's key gives it.
func totpURL(issuer, user, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", "6")
	v.Set("period", "30")
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + user, RawQuery: v.Encode()}
	return u.String()
}

// qrPath is the QR code of text as one SVG path (a square per dark
// module, quiet zone included) and its size in modules: inline in the
// page, so its CSP needs no img-src.
func qrPath(text string) (string, int, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", 0, err
	}
	bits := q.Bitmap()
	var b strings.Builder
	for y, row := range bits {
		for x, dark := range row {
			if dark {
				b.WriteString("M")
				b.WriteString(strconv.Itoa(x))
				b.WriteString(" ")
				b.WriteString(strconv.Itoa(y))
				b.WriteString("h1v1h-1z")
			}
		}
	}
	return b.String(), len(bits), nil
}

// groupsOf4 writes a secret as people copy it: "ABCD EFGH …".
func groupsOf4(secret string) string {
	var b strings.Builder
	for i, c := range secret {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// serveRemoveTOTP is POST <prefix>/mfa/totp/remove: the password again,
// then the authenticator app is removed.
func (s *Server) serveRemoveTOTP(w http.ResponseWriter, r *http.Request) error {
	return s.serveChange(w, r, "remove", func(st *step) error {
		if err := s.c.MFA.Service.RemoveTOTP(r.Context(), st.User); err != nil {
			return err
		}
		s.c.MFA.count("removed", "totp")
		s.c.Logger.Info("totp removed", zap.String("user", st.User), zap.String("by", "user"), s.zapRemoteIP(r))
		if isJSONRequest(r) {
			return pages.WriteJSON(w, http.StatusOK, map[string]bool{"removed": true})
		}
		http.Redirect(w, r, s.endpointURL(r, "/sessions")+"?mfa=removed", http.StatusSeeOther)
		return nil
	})
}

// serveNewCodes is POST <prefix>/mfa/recovery: the password again, then
// new recovery codes (the old ones stop working), shown once.
func (s *Server) serveNewCodes(w http.ResponseWriter, r *http.Request) error {
	return s.serveChange(w, r, "recovery", func(st *step) error {
		codes, err := s.c.MFA.Service.NewRecoveryCodes(r.Context(), st.User)
		if err != nil {
			return err
		}
		s.c.MFA.count("enrolled", "recovery")
		s.c.Logger.Info("new recovery codes", zap.String("user", st.User), s.zapRemoteIP(r))
		if isJSONRequest(r) {
			return pages.WriteJSON(w, http.StatusOK, map[string][]string{"codes": codes})
		}
		return s.c.Pages.MFACodes(w, http.StatusOK, pages.MFACodes{Title: s.c.Title, User: st.User, Codes: codes, Continue: s.endpointURL(r, "/sessions")})
	})
}

// serveChange is a POST from the sessions page that changes the user's
// factors: same origin, a session (not a login waiting) that proved its
// factor if it has one, and the password again; then do.
func (s *Server) serveChange(w http.ResponseWriter, r *http.Request, what string, do func(st *step) error) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, "POST")
	}
	if !s.sameOrigin(w, r) {
		return nil
	}
	f, ok := s.readMFAForm(w, r)
	if !ok {
		return nil
	}
	st, creds, ok := s.stepAndCredentials(w, r)
	if !ok {
		return nil
	}
	if st.Sess == nil {
		// A login waiting changes nothing but what enrolment needs.
		return s.noStep(w, r)
	}
	if !creds.Enrolled() {
		if isJSONRequest(r) {
			return pages.WriteJSON(w, http.StatusConflict, map[string]string{"error": "no second factor enrolled"})
		}
		http.Redirect(w, r, s.endpointURL(r, "/sessions"), http.StatusSeeOther)
		return nil
	}
	if !s.mayChangeFactors(w, r, st, creds) {
		return nil
	}
	st.Redirect = s.endpointURL(r, "/sessions")
	if !s.passwordAgain(w, r, st, f.Password, func(msg string) error {
		return s.renderMessage(w, http.StatusUnauthorized, pages.Message{
			Heading:  "Wrong password",
			Text:     msg + " Nothing was changed.",
			Link:     s.endpointURL(r, "/sessions"),
			LinkText: "Back to your sessions",
		})
	}) {
		return nil
	}
	if err := do(st); err != nil {
		s.c.Logger.Error("second factors not changed", zap.String("user", st.User), zap.String("change", what), s.zapRemoteIP(r), zap.Error(err))
		return ServiceUnavailable(w)
	}
	return nil
}
