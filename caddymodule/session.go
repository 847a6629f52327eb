package caddymodule

import (
	"github.com/edgesession/edgesession/session"
)

// setupSessions makes the handler's session manager from its
// configuration, store, codec and identity sources. Provision calls it
// once they are all set up.
func (h *Handler) setupSessions() {
	m := h.metrics
	h.sessions = session.New(session.Config{
		Store:           h.store,
		Codec:           h.codec,
		Cookie:          h.Cookie,
		Realm:           h.Realm,
		Idle:            h.idle,
		Lifetime:        h.lifetime,
		TouchEvery:      h.touchEvery,
		Sources:         h.sources,
		LogoutCookies:   h.LogoutCookies,
		ClearSiteData:   h.ClearSiteData,
		Logger:          h.logger,
		ClientIP:        clientIP,
		CountState:      m.request,
		CountStoreError: m.storeErrors.Inc,
	})
}
