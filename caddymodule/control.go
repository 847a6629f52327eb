package caddymodule

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

// applyUpstreamControl changes the session as the upstream asked, saving
// it and setting the cookie in w's headers, before they are written.
func (h *Handler) applyUpstreamControl(w http.ResponseWriter, r *http.Request, s *session.Session) {
	c := h.strip.ParseControl(w.Header(), identity.ValidUsername, h.logger, clientIP(r))
	if !c.Changed {
		return
	}
	// The upstream has answered; a client that hangs up now must not lose
	// what the upstream wrote.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()

	if c.Logout {
		if err := h.sessions.Destroy(ctx, w, r, s); err != nil {
			h.sessions.LogStoreError(r, "upstream logout", err)
			return
		}
		if c.Login == "" {
			// Not with a login: "cookies" would clear the new session's.
			h.sessions.ClearSiteData(w)
		}
		if s != nil && s.Rec.User != "" {
			h.metrics.logouts.Inc()
			h.logger.Info("logout", zap.String("user", s.Rec.User), zap.String("remote_ip", clientIP(r)), zap.String("by", "upstream"))
		}
		s = nil
	}
	if c.Login == "" && len(c.Set) == 0 && (s == nil || len(c.Delete) == 0) {
		return // nothing to write; deleting from no session creates none
	}

	ch := sessionstore.Change{Delete: c.Delete, Set: c.Set}
	if c.Login != "" {
		id := identity.Identity{User: c.Login, Source: identity.Upstream}
		data := sessionstore.Record{Data: session.CarriedData(s, id)}.Apply(ch).Data
		if _, err := h.sessions.Login(ctx, w, r, s, id, data); err != nil {
			h.sessions.LogSaveError(r, "upstream login", err)
			return
		}
		h.metrics.logins.WithLabelValues("success").Inc()
		h.logger.Info("login", zap.String("user", c.Login), zap.String("remote_ip", clientIP(r)), zap.String("by", "upstream"))
		return
	}
	if s == nil {
		s = h.sessions.NewFor(r)
	}
	// What the store will do, done to this request's copy too: a new
	// session is created from it, and the cookie store keeps all of it.
	s.Rec = s.Rec.Apply(ch)
	if err := h.sessions.Save(ctx, w, r, s, ch); err != nil {
		h.sessions.LogSaveError(r, "upstream session write", err)
	}
}
