package endpoints

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/sessionstore"
)

// <prefix>/sessions is the user's own list of their sessions on this site
// (SPEC §11): where they are signed in, with "sign out" for each and
// "sign out everywhere else". It shows only the sessions this handler
// would accept (same site, a source of its own that still vouches for
// them), so a namesake on another site sharing the store is neither shown
// nor touched.
//
//	GET  <prefix>/sessions                the list (JSON with Accept: application/json)
//	POST <prefix>/sessions  handle=<h>    sign out that session (this one too)
//	POST <prefix>/sessions  others=1      sign out every session but this one

func (s *Server) serveSessions(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return methodNotAllowed(w, "GET, HEAD, POST")
	}
	if r.Method == http.MethodPost && !s.sameOrigin(w, r) {
		return nil
	}
	sess, err := s.c.Sessions.Load(w, r)
	if err != nil {
		return ServiceUnavailable(w)
	}
	if sess == nil || sess.Rec.User == "" {
		return s.LoginRequired(w, r)
	}
	if s.owes(sess) {
		return s.SecondFactorRequired(w, r, sess)
	}
	ix := s.c.UserIndex
	if ix == nil {
		if pages.AcceptsJSON(r) {
			return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "sessions are kept only in the browser: there is no list"})
		}
		return s.renderSessions(w, r, pages.Sessions{User: sess.Rec.User, NoList: true})
	}
	current := s.c.Sessions.Key(sess.ID).Handle()
	rows, err := s.ownSessions(r, ix, sess.Rec.User, current)
	if err != nil {
		s.c.Sessions.LogStoreError(r, "listing the user's sessions", err)
		return ServiceUnavailable(w)
	}
	if r.Method != http.MethodPost {
		if pages.AcceptsJSON(r) {
			return pages.WriteJSON(w, http.StatusOK, map[string]any{"user": sess.Rec.User, "sessions": rows})
		}
		page := pages.Sessions{User: sess.Rec.User, Sessions: rows, Others: len(rows) - 1}
		if n, err := strconv.Atoi(r.URL.Query().Get("signed-out")); err == nil && n >= 0 {
			page.Message = "Signed out " + plural(n, "session") + "."
		}
		return s.renderSessions(w, r, page)
	}

	// Which of the listed sessions the form names.
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	r.ParseForm()
	var handles []sessionstore.Handle
	for _, row := range rows {
		if r.PostForm.Get("others") != "" && !row.Current || r.PostForm.Get("handle") == row.Handle {
			hd, _ := sessionstore.ParseHandle(row.Handle)
			handles = append(handles, hd)
		}
	}
	if len(handles) == 0 {
		if pages.AcceptsJSON(r) {
			return pages.WriteJSON(w, http.StatusOK, map[string]int{"revoked": 0})
		}
		http.Redirect(w, r, s.endpointURL(r, "/sessions"), http.StatusSeeOther)
		return nil
	}
	keys, err := ix.DeleteUser(r.Context(), sess.Rec.User, handles...)
	for _, k := range keys {
		s.c.SessionDeleted(k)
	}
	if err != nil {
		s.c.Sessions.LogStoreError(r, "signing out the user's sessions", err)
		return ServiceUnavailable(w)
	}
	s.c.Logger.Info("sessions revoked", zap.String("user", sess.Rec.User), zap.Int("revoked", len(keys)), zap.String("by", "user"), s.zapRemoteIP(r))
	if slices.Contains(handles, current) {
		// This one is gone: the cookie goes too, and the user is out.
		s.c.Sessions.ExpireCookie(w, r)
		if pages.AcceptsJSON(r) {
			return pages.WriteJSON(w, http.StatusOK, map[string]int{"revoked": len(keys)})
		}
		http.Redirect(w, r, s.endpointURL(r, "/login"), http.StatusSeeOther)
		return nil
	}
	if pages.AcceptsJSON(r) {
		return pages.WriteJSON(w, http.StatusOK, map[string]int{"revoked": len(keys)})
	}
	// Post/redirect/get: a reload does not post again.
	http.Redirect(w, r, s.endpointURL(r, "/sessions")+"?signed-out="+strconv.Itoa(len(keys)), http.StatusSeeOther)
	return nil
}

// ownSessions lists user's sessions that this handler accepts for r, this
// one (current) marked.
func (s *Server) ownSessions(r *http.Request, ix sessionstore.UserIndex, user string, current sessionstore.Handle) ([]pages.SessionRow, error) {
	es, err := ix.ListUser(r.Context(), user)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rows := []pages.SessionRow{}
	for _, e := range es {
		if s.c.Sessions.Expired(e.Record, now) || !s.c.Sessions.Accepts(r, e.Record) {
			continue
		}
		rows = append(rows, pages.SessionRow{
			Handle:    e.Handle.String(),
			Current:   e.Handle == current,
			UserAgent: e.Record.UserAgent,
			ClientIP:  e.Record.ClientIP,
			Created:   e.Record.Created,
			LastSeen:  e.Record.LastSeen,
		})
	}
	return rows, nil
}

func (s *Server) renderSessions(w http.ResponseWriter, r *http.Request, page pages.Sessions) error {
	if s.c.MFA != nil && s.c.MFA.Service != nil {
		sf, err := s.secondFactors(r, page.User)
		if err != nil {
			return ServiceUnavailable(w)
		}
		page.MFA = sf
		if r.URL.Query().Get("mfa") == "removed" && sf.TOTP.IsZero() {
			page.Message = "Your authenticator app was removed."
		}
	}
	page.Action = s.endpointURL(r, "/sessions")
	page.Logout = s.endpointURL(r, "/logout")
	page.Home = home(s.mount(r))
	page.Passkeys = s.passkeySection(r.Context(), r, page.User)
	return s.c.Pages.Sessions(w, http.StatusOK, page)
}

// plural is "1 session", "2 sessions".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// secondFactors is the sessions page's "Second factors" section for user.
func (s *Server) secondFactors(r *http.Request, user string) (*pages.SecondFactors, error) {
	creds, err := s.c.MFA.Store.Load(r.Context(), user)
	if err != nil {
		s.c.Logger.Error("second factors unavailable", zap.String("user", user), s.zapRemoteIP(r), zap.Error(err))
		return nil, err
	}
	sessionsPage := s.endpointURL(r, "/sessions")
	sf := &pages.SecondFactors{
		Enrol:    s.endpointURL(r, "/mfa/totp") + "?redirect=" + url.QueryEscape(sessionsPage),
		Remove:   s.endpointURL(r, "/mfa/totp/remove"),
		NewCodes: s.endpointURL(r, "/mfa/recovery"),
	}
	if creds != nil {
		if creds.TOTP != nil {
			sf.TOTP = creds.TOTP.Created
		}
		sf.Recovery = len(creds.Recovery)
		sf.Passkeys = len(creds.Passkeys)
	}
	return sf, nil
}
