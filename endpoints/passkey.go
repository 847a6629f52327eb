package endpoints

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/go-webauthn/webauthn/webauthn"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/mfa"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

// Passkeys (WebAuthn) under <prefix>/passkey/ (SPEC §13):
//
//	GET  passkey/passkey.js   the browser side of the ceremonies
//	GET  passkey/login        options of a login with any passkey of this site
//	POST passkey/login        {"credential":…, "redirect":…}: signed in, amr hwk mfa
//	POST passkey/register     {"password":…}: options of a new passkey (a session's user)
//	POST passkey/register     {"credential":…, "name":…}: the passkey stored
//	POST passkey/remove       id=<credential ID>&password=…: the passkey removed
//
// Every ceremony's challenge is kept, sealed, in a cookie of its own
// (<cookie name>~passkey, 5 minutes, the endpoints' path) bound to the kind
// of ceremony and, but for a login, to the user; finishing one claims the
// challenge in the store, so that no response is accepted twice, on any
// instance.

// PasskeyCeremonyLifetime is how long a passkey ceremony may take, from
// its options to its response.
const PasskeyCeremonyLifetime = 5 * time.Minute

// maxPasskeyName bounds the name a person gives a passkey.
const maxPasskeyName = 64

// Kinds of ceremony, as the challenge cookie names them.
const (
	ceremonyLogin    = "login"    // a passkey alone
	ceremonyRegister = "register" // a new passkey of a session's user
	ceremonyVerify   = "verify"   // the second step after a password
)

// ceremony is what the challenge cookie holds.
type ceremony struct {
	Kind    string               `json:"k"`
	User    string               `json:"u,omitempty"`
	Session webauthn.SessionData `json:"s"`
}

// passkeyRequest is the JSON a page posts to the passkey endpoints.
type passkeyRequest struct {
	Credential json.RawMessage `json:"credential"`
	Redirect   string          `json:"redirect"`
	Password   string          `json:"password"`
	Name       string          `json:"name"`
	ID         string          `json:"id"`
}

// servePasskey serves <prefix>/passkey/... (rest: "login"...).
func (s *Server) servePasskey(w http.ResponseWriter, r *http.Request, rest string) error {
	switch rest {
	case "passkey.js":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return methodNotAllowed(w, "GET, HEAD")
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, err := io.WriteString(w, pages.PasskeyJS)
		return err
	case "login":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return s.passkeyLoginOptions(w, r)
		case http.MethodPost:
			return s.passkeyLogin(w, r)
		}
		return methodNotAllowed(w, "GET, HEAD, POST")
	case "register":
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, "POST")
		}
		return s.passkeyRegister(w, r)
	case "verify":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return s.passkeyVerifyOptions(w, r)
		case http.MethodPost:
			return s.passkeyVerify(w, r)
		}
		return methodNotAllowed(w, "GET, HEAD, POST")
	case "remove":
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, "POST")
		}
		return s.passkeyRemove(w, r)
	}
	return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}

// relyingParty is the passkeys' relying party as r sees it: the configured
// RP ID and origins, else r's host and r's own origin.
func (s *Server) relyingParty(r *http.Request) (*mfa.Passkeys, error) {
	rpID, origins := s.c.MFA.RPID, s.c.MFA.Origins
	if rpID == "" {
		rpID = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			rpID = h
		}
		rpID = strings.ToLower(strings.Trim(rpID, "[]"))
	}
	if rpID == "" {
		return nil, errors.New("the request names no host")
	}
	if len(origins) == 0 {
		scheme := "http"
		if cookie.CameOverHTTPS(r) {
			scheme = "https"
		}
		origins = []string{scheme + "://" + strings.ToLower(r.Host)}
	}
	name := s.c.Title
	if name == "" {
		name = rpID
	}
	return mfa.NewPasskeys(s.c.MFA.Store, name, rpID, origins)
}

// ceremonyCookieName and ceremonyCookie: the challenge's cookie, host-only,
// for the endpoints' path (a __Host- name must have path /).
// A __Host- name becomes __Secure-, as the pending cookie's (which see).
func (s *Server) ceremonyCookieName() string {
	name := s.c.Cookie.Name
	if cookie.HasPrefixFold(name, "__Host-") {
		name = "__Secure-" + name[len("__Host-"):]
	}
	return name + "~passkey"
}

func (s *Server) ceremonyCookie(r *http.Request, value string) *http.Cookie {
	c := s.c.Cookie.New(r, value)
	c.Name, c.Domain = s.ceremonyCookieName(), ""
	c.Path = s.endpointURL(r, "/passkey/")
	c.Secure = c.Secure || cookie.HasPrefixFold(c.Name, "__Secure-")
	// Every ceremony runs on this site's own pages.
	c.SameSite = http.SameSiteStrictMode
	c.MaxAge = int(PasskeyCeremonyLifetime / time.Second)
	return c
}

// startCeremony keeps c in the challenge cookie.
func (s *Server) startCeremony(w http.ResponseWriter, r *http.Request, c ceremony) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	v, err := s.c.MFA.PasskeyCookie.Encode(b)
	if err != nil {
		return err
	}
	http.SetCookie(w, s.ceremonyCookie(r, v))
	return nil
}

// errNoCeremony: no challenge cookie of that kind and user, or its
// challenge was already used.
var errNoCeremony = errors.New("no passkey ceremony of this kind was started here, or it expired or was used: start again")

// takeCeremony ends the ceremony of kind (for user, "" for a login) that
// the request's challenge cookie holds: the cookie is expired and the
// challenge claimed, so that it is never accepted again. A store that
// fails is an error of its own.
func (s *Server) takeCeremony(w http.ResponseWriter, r *http.Request, kind, user string) (*webauthn.SessionData, error) {
	var found *ceremony
	for v := range cookie.Each(r, s.ceremonyCookieName()) {
		b, err := s.c.MFA.PasskeyCookie.Verify(v)
		if err != nil {
			continue
		}
		c := new(ceremony)
		if json.Unmarshal(b, c) == nil && c.Kind == kind && c.User == user && c.Session.Challenge != "" {
			found = c
			break
		}
	}
	if found == nil {
		return nil, errNoCeremony
	}
	expired := s.ceremonyCookie(r, "")
	expired.MaxAge = -1
	http.SetCookie(w, expired)
	claimed, err := s.c.MFA.Claims.Claim(r.Context(), sessionstore.ClaimKey("mfa passkey challenge", found.Session.Challenge), time.Now().Add(PasskeyCeremonyLifetime+time.Minute))
	if err != nil {
		return nil, err
	}
	if !claimed {
		return nil, errNoCeremony
	}
	return &found.Session, nil
}

// readPasskeyRequest reads the JSON body of a passkey POST; it answers a
// bad one itself (ok false).
func (s *Server) readPasskeyRequest(w http.ResponseWriter, r *http.Request) (req passkeyRequest, ok bool) {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	var err error
	switch mediaType {
	case "application/json":
		err = readJSONBody(r.Body, &req, func(error) error { return errors.New("body is not the JSON object wanted") })
	case "application/x-www-form-urlencoded":
		if err = r.ParseForm(); err == nil {
			req = passkeyRequest{ID: r.PostForm.Get("id"), Password: r.PostForm.Get("password"), Name: r.PostForm.Get("name")}
		}
	default:
		s.unsupportedBody(w, r, "passkey")
		return req, false
	}
	if err != nil {
		s.badBody(w, r, "passkey", err)
		return req, false
	}
	return req, true
}

// ceremonyError answers an error of takeCeremony.
func (s *Server) ceremonyError(w http.ResponseWriter, r *http.Request, what, user string, err error) error {
	if errors.Is(err, errNoCeremony) {
		s.c.Logger.Warn(what+" refused: no ceremony", zap.String("user", user), s.zapRemoteIP(r))
		return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
	s.c.Sessions.LogStoreError(r, what, err)
	return ServiceUnavailable(w)
}

// passkeyOptions answers the options of a ceremony that began (or why it
// could not).
func (s *Server) passkeyOptions(w http.ResponseWriter, r *http.Request, what, user string, options any, sd *webauthn.SessionData, kind string, err error) error {
	if err != nil {
		if errors.Is(err, mfa.ErrNoPasskey) {
			return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no passkey"})
		}
		if r.Context().Err() == nil {
			s.c.Logger.Error(what+": cannot start", zap.String("user", user), s.zapRemoteIP(r), zap.Error(err))
		}
		return ServiceUnavailable(w)
	}
	if err := s.startCeremony(w, r, ceremony{Kind: kind, User: user, Session: *sd}); err != nil {
		s.c.Logger.Error(what+": cannot keep the challenge", zap.String("user", user), s.zapRemoteIP(r), zap.Error(err))
		return ServiceUnavailable(w)
	}
	return pages.WriteJSON(w, http.StatusOK, options)
}

// relyingPartyError answers a relying party that cannot be made for r (a
// host that is no valid RP ID, such as an IP address).
func (s *Server) relyingPartyError(w http.ResponseWriter, r *http.Request, err error) error {
	s.c.Logger.Warn("passkeys unavailable for this host", zap.String("host", r.Host), s.zapRemoteIP(r), zap.Error(err))
	return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "passkeys are not available at this address: reach the site by its name"})
}

func (s *Server) passkeyLoginOptions(w http.ResponseWriter, r *http.Request) error {
	rp, err := s.relyingParty(r)
	if err != nil {
		return s.relyingPartyError(w, r, err)
	}
	options, sd, err := rp.BeginLogin(r.Context(), "")
	return s.passkeyOptions(w, r, "passkey login", "", options, sd, ceremonyLogin, err)
}

// passkeyLogin signs in with a passkey alone: its user verification (PIN,
// biometrics) and possession of the key are two factors.
func (s *Server) passkeyLogin(w http.ResponseWriter, r *http.Request) error {
	if !s.sameOrigin(w, r) {
		return nil
	}
	req, ok := s.readPasskeyRequest(w, r)
	if !ok {
		return nil
	}
	redirect := s.redirectTarget(r, req.Redirect, home(s.mount(r)))
	sd, err := s.takeCeremony(w, r, ceremonyLogin, "")
	if err != nil {
		s.c.Metrics.Login("failure")
		return s.ceremonyError(w, r, "passkey login", "", err)
	}
	rp, err := s.relyingParty(r)
	if err != nil {
		return s.relyingPartyError(w, r, err)
	}
	user, err := rp.FinishLogin(r.Context(), "", *sd, req.Credential)
	if err != nil {
		return s.passkeyRefused(w, r, "passkey login", user, err)
	}
	fp, ok := s.c.Users.Fingerprint(user)
	if !ok {
		s.c.Metrics.Login("failure")
		s.c.Logger.Warn("passkey login refused: the user is no longer configured", zap.String("user", user), s.zapRemoteIP(r))
		return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "passkey refused"})
	}
	old, err := s.c.Sessions.Load(w, r)
	if err != nil {
		s.c.Metrics.Login("error")
		return ServiceUnavailable(w)
	}
	id := identity.Identity{User: user, Source: identity.Password, Fingerprint: fp, Amr: []string{identity.AmrHardware, identity.AmrMFA}}
	if _, err := s.c.Sessions.Login(r.Context(), w, r, old, id, session.CarriedData(old, id)); err != nil {
		s.c.Metrics.Login("error")
		s.c.Sessions.LogSaveError(r, "passkey login", err)
		return ServiceUnavailable(w)
	}
	s.clearPending(w, r)
	s.c.Metrics.Login("success")
	s.c.MFA.count("verified", "passkey")
	s.c.Logger.Info("login", zap.String("user", user), zap.String("method", "passkey"), s.zapRemoteIP(r))
	return pages.WriteJSON(w, http.StatusOK, map[string]string{"user": user, "redirect": redirect})
}

// passkeyRefused answers a response that FinishLogin did not accept.
func (s *Server) passkeyRefused(w http.ResponseWriter, r *http.Request, what, user string, err error) error {
	switch {
	case errors.Is(err, mfa.ErrSignCounter):
		s.c.Metrics.Login("failure")
		s.c.MFA.count("failed", "passkey")
		s.c.Logger.Warn(mfa.ErrSignCounter.Error(), zap.String("user", user), s.zapRemoteIP(r))
	case errors.Is(err, mfa.ErrPasskeyRefused), errors.Is(err, mfa.ErrNoPasskey):
		s.c.Metrics.Login("failure")
		s.c.MFA.count("failed", "passkey")
		s.c.Logger.Warn(what+" refused", zap.String("user", user), s.zapRemoteIP(r), zap.Error(err))
	default:
		if r.Context().Err() == nil {
			s.c.Sessions.LogStoreError(r, what, err)
		}
		return ServiceUnavailable(w)
	}
	return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "passkey refused"})
}

// localUser is the request's session if it is a local user's (a
// password or passkey login) still configured, and may change the user's
// factors: whoever has one already must have proved one in this session
// (mayChangeFactors), or the password alone (a session from before the
// factor) could swap the passkeys for the attacker's. Otherwise it
// answers (401, 403, 503) and returns ok false.
func (s *Server) localUser(w http.ResponseWriter, r *http.Request) (*session.Session, bool) {
	sess, err := s.c.Sessions.Load(w, r)
	if err != nil {
		ServiceUnavailable(w)
		return nil, false
	}
	if sess == nil || sess.Rec.User == "" {
		pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "not signed in"})
		return nil, false
	}
	user := sess.Rec.User
	if _, ok := s.c.Users.Fingerprint(user); sess.Rec.Source != identity.Password || !ok {
		pages.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "passkeys are for the site's own users"})
		return nil, false
	}
	creds, err := s.c.MFA.Store.Load(r.Context(), user)
	if err != nil {
		s.c.Sessions.LogStoreError(r, "reading the user's second factors", err)
		ServiceUnavailable(w)
		return nil, false
	}
	st := &step{User: user, Fingerprint: sess.Rec.Fingerprint, Amr: identity.AMR(sess.Rec), Redirect: s.endpointURL(r, "/sessions"), Sess: sess}
	if !s.mayChangeFactors(w, r, st, creds) {
		return nil, false
	}
	return sess, true
}

// checkPassword proves user's password again, throttled as logins are;
// it answers a wrong one itself (ok false).
func (s *Server) checkPassword(w http.ResponseWriter, r *http.Request, user, password string) bool {
	if password == "" || len(password) > maxPassword {
		pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "password required"})
		return false
	}
	ip := s.c.ClientIP(r)
	attempt, _, err := s.c.Throttle.Begin(r.Context(), s.c.ThrottleScope, ip, user, time.Now())
	if err != nil {
		ServiceUnavailable(w)
		return false
	}
	if attempt == nil {
		s.c.Logger.Warn("password check throttled", zap.String("user", user), zap.String("remote_ip", ip))
		pages.WriteJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed logins, try again later"})
		return false
	}
	defer attempt.End()
	if _, ok, _ := s.c.Users.Check(user, password); !ok {
		attempt.Failed(r.Context(), time.Now())
		s.c.Logger.Warn("password check failed", zap.String("user", user), zap.String("remote_ip", ip))
		pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "wrong password"})
		return false
	}
	attempt.Succeeded(r.Context())
	return true
}

// passkeyRegister adds a passkey for the session's user in two posts: the
// password proved again, for the options; then the new credential.
func (s *Server) passkeyRegister(w http.ResponseWriter, r *http.Request) error {
	if !s.sameOrigin(w, r) {
		return nil
	}
	sess, ok := s.localUser(w, r)
	if !ok {
		return nil
	}
	user := sess.Rec.User
	req, ok := s.readPasskeyRequest(w, r)
	if !ok {
		return nil
	}
	rp, err := s.relyingParty(r)
	if err != nil {
		return s.relyingPartyError(w, r, err)
	}
	if len(req.Credential) == 0 {
		if !s.checkPassword(w, r, user, req.Password) {
			return nil
		}
		options, sd, err := rp.BeginRegistration(r.Context(), user)
		return s.passkeyOptions(w, r, "passkey registration", user, options, sd, ceremonyRegister, err)
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		name = "Passkey"
	}
	if len(name) > maxPasskeyName || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "a passkey's name is printable text of at most 64 bytes"})
	}
	sd, err := s.takeCeremony(w, r, ceremonyRegister, user)
	if err != nil {
		return s.ceremonyError(w, r, "passkey registration", user, err)
	}
	pk, err := rp.FinishRegistration(r.Context(), user, name, *sd, req.Credential)
	switch {
	case errors.Is(err, mfa.ErrPasskeyRefused), errors.Is(err, mfa.ErrHandleChanged):
		s.c.Logger.Warn("passkey registration refused", zap.String("user", user), s.zapRemoteIP(r), zap.Error(err))
		return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "passkey refused"})
	case err != nil:
		s.c.Sessions.LogStoreError(r, "storing a passkey", err)
		return ServiceUnavailable(w)
	}
	s.c.MFA.count("enrolled", "passkey")
	s.c.Logger.Info("passkey added", zap.String("user", user), zap.String("name", pk.Name), s.zapRemoteIP(r))
	s.endWeakerSessions(r, user, sess) // but this one, which proved the password again
	return pages.WriteJSON(w, http.StatusOK, map[string]string{"user": user, "name": pk.Name, "id": base64.RawURLEncoding.EncodeToString(pk.Credential.ID)})
}

// passkeyRemove removes one of the session's user's passkeys, the
// password proved again.
func (s *Server) passkeyRemove(w http.ResponseWriter, r *http.Request) error {
	if !s.sameOrigin(w, r) {
		return nil
	}
	sess, ok := s.localUser(w, r)
	if !ok {
		return nil
	}
	user := sess.Rec.User
	req, ok := s.readPasskeyRequest(w, r)
	if !ok {
		return nil
	}
	id, err := base64.RawURLEncoding.DecodeString(req.ID)
	if err != nil || len(id) == 0 || len(id) > 1023 {
		return pages.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "id: want a credential ID (base64url)"})
	}
	if !s.checkPassword(w, r, user, req.Password) {
		return nil
	}
	switch err := s.c.MFA.Store.RemovePasskey(r.Context(), user, id); {
	case errors.Is(err, mfa.ErrNoPasskey):
		return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no such passkey"})
	case err != nil:
		s.c.Sessions.LogStoreError(r, "removing a passkey", err)
		return ServiceUnavailable(w)
	}
	s.c.MFA.count("removed", "passkey")
	s.c.Logger.Info("passkey removed", zap.String("user", user), zap.String("id", req.ID), s.zapRemoteIP(r))
	if pages.AcceptsJSON(r) {
		return pages.WriteJSON(w, http.StatusOK, map[string]int{"removed": 1})
	}
	http.Redirect(w, r, s.endpointURL(r, "/sessions")+"?passkey=removed", http.StatusSeeOther)
	return nil
}

// passkeySection is the sessions page's list of the user's passkeys; nil
// without passkeys configured or for a user who is not a local one.
func (s *Server) passkeySection(ctx context.Context, r *http.Request, user string) *pages.PasskeySection {
	if s.c.MFA == nil {
		return nil
	}
	if _, ok := s.c.Users.Fingerprint(user); !ok {
		return nil
	}
	sec := &pages.PasskeySection{
		Register: s.endpointURL(r, "/passkey/register"),
		Remove:   s.endpointURL(r, "/passkey/remove"),
		Script:   s.endpointURL(r, "/passkey/passkey.js"),
	}
	switch r.URL.Query().Get("passkey") {
	case "added":
		sec.Message = "Passkey added."
	case "removed":
		sec.Message = "Passkey removed."
	}
	c, err := s.c.MFA.Store.Load(ctx, user)
	if err != nil {
		s.c.Sessions.LogStoreError(r, "listing the user's passkeys", err)
		sec.Unavailable = true
		return sec
	}
	if c != nil {
		for _, pk := range c.Passkeys {
			sec.Passkeys = append(sec.Passkeys, pages.PasskeyRow{
				ID:       base64.RawURLEncoding.EncodeToString(pk.Credential.ID),
				Name:     pk.Name,
				Created:  pk.Created,
				LastUsed: pk.LastUsed,
			})
		}
	}
	return sec
}
