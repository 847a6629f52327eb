package caddymodule

import (
	"net/http"
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

func (h *Handler) serveSessions(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return methodNotAllowed(w, "GET, HEAD, POST")
	}
	if r.Method == http.MethodPost && !h.sameOrigin(w, r) {
		return nil
	}
	s, err := h.sessions.Load(w, r)
	if err != nil {
		return h.serviceUnavailable(w)
	}
	if s == nil || s.Rec.User == "" {
		return h.loginRequired(w, r)
	}
	ix := userIndexOf(h.store)
	if ix == nil {
		if pages.AcceptsJSON(r) {
			return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "sessions are kept only in the browser: there is no list"})
		}
		return h.renderSessions(w, r, pages.Sessions{User: s.Rec.User, NoList: true})
	}
	current := h.sessions.Key(s.ID).Handle()
	rows, err := h.ownSessions(r, ix, s.Rec.User, current)
	if err != nil {
		h.sessions.LogStoreError(r, "listing the user's sessions", err)
		return h.serviceUnavailable(w)
	}
	if r.Method != http.MethodPost {
		if pages.AcceptsJSON(r) {
			return pages.WriteJSON(w, http.StatusOK, map[string]any{"user": s.Rec.User, "sessions": rows})
		}
		page := pages.Sessions{User: s.Rec.User, Sessions: rows, Others: len(rows) - 1}
		if n, err := strconv.Atoi(r.URL.Query().Get("signed-out")); err == nil && n >= 0 {
			page.Message = "Signed out " + plural(n, "session") + "."
		}
		return h.renderSessions(w, r, page)
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
		http.Redirect(w, r, h.endpointURL(r, "/sessions"), http.StatusSeeOther)
		return nil
	}
	keys, err := ix.DeleteUser(r.Context(), s.Rec.User, handles...)
	for _, k := range keys {
		hijackedConns.CloseAll(k)
	}
	if err != nil {
		h.sessions.LogStoreError(r, "signing out the user's sessions", err)
		return h.serviceUnavailable(w)
	}
	h.logger.Info("sessions revoked", zap.String("user", s.Rec.User), zap.Int("revoked", len(keys)), zap.String("by", "user"), zapRemoteIP(r))
	if slices.Contains(handles, current) {
		// This one is gone: the cookie goes too, and the user is out.
		h.sessions.ExpireCookie(w, r)
		if pages.AcceptsJSON(r) {
			return pages.WriteJSON(w, http.StatusOK, map[string]int{"revoked": len(keys)})
		}
		http.Redirect(w, r, h.endpointURL(r, "/login"), http.StatusSeeOther)
		return nil
	}
	if pages.AcceptsJSON(r) {
		return pages.WriteJSON(w, http.StatusOK, map[string]int{"revoked": len(keys)})
	}
	// Post/redirect/get: a reload does not post again.
	http.Redirect(w, r, h.endpointURL(r, "/sessions")+"?signed-out="+strconv.Itoa(len(keys)), http.StatusSeeOther)
	return nil
}

// ownSessions lists user's sessions that this handler accepts for r, this
// one (current) marked.
func (h *Handler) ownSessions(r *http.Request, ix sessionstore.UserIndex, user string, current sessionstore.Handle) ([]pages.SessionRow, error) {
	es, err := ix.ListUser(r.Context(), user)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rows := []pages.SessionRow{}
	for _, e := range es {
		if h.sessions.Expired(e.Record, now) || !h.sessions.Accepts(r, e.Record) {
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

func (h *Handler) renderSessions(w http.ResponseWriter, r *http.Request, page pages.Sessions) error {
	page.Action = h.endpointURL(r, "/sessions")
	page.Logout = h.endpointURL(r, "/logout")
	page.Home = home(mountPrefix(r))
	return h.pages.Sessions(w, http.StatusOK, page)
}

// userIndexOf finds the index by user behind the handler's store, under
// the wrappers that time its operations and close sockets (which do not
// pass optional interfaces on), or nil if the store has none.
func userIndexOf(s sessionstore.Store) sessionstore.UserIndex {
	ui, _ := underlyingStore(s).(sessionstore.UserIndex)
	return ui
}
