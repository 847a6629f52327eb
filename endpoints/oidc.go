package endpoints

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/edgesession/edgesession/identity/oidc"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

// The routes of the OIDC providers under <prefix>/oidc/, and the login
// page's and logout's parts of them. The sign-in itself is package
// oidc's; the sessions, pages and metrics are the endpoints'.

// oidcSite is what package oidc needs to know of r.
func (s *Server) oidcSite(r *http.Request) oidc.Site {
	return oidc.Site{Endpoints: s.endpointURL(r, ""), Home: home(s.mount(r)), ClientIP: s.c.ClientIP(r)}
}

// startOIDCLogin sends the browser to provider name.
func (s *Server) startOIDCLogin(w http.ResponseWriter, r *http.Request, name, redirect string) error {
	return s.oidcProblem(w, r, s.c.OIDC.Start(w, r, s.oidcSite(r), name, redirect))
}

// serveOIDC serves <prefix>/oidc/<name>/<what>.
func (s *Server) serveOIDC(w http.ResponseWriter, r *http.Request, rest string) error {
	name, what, _ := strings.Cut(rest, "/")
	p := s.c.OIDC.Get(name)
	if p != nil && what == "backchannel-logout" {
		return s.oidcBackchannelLogout(w, r, p)
	}
	if p == nil || what != "callback" {
		return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	}
	if r.Method != http.MethodGet {
		// Not even HEAD: it would spend the code.
		return methodNotAllowed(w, "GET")
	}
	return s.oidcCallback(w, r, p)
}

// oidcCallback finishes a login: the provider sent the browser back.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request, p *oidc.Client) error {
	site := s.oidcSite(r)
	l, err := p.Finish(w, r, site)
	if err != nil {
		return s.oidcProblem(w, r, err)
	}
	old, err := s.c.Sessions.Load(w, r)
	if err != nil {
		s.oidcCount(p.Name, "error")
		return ServiceUnavailable(w)
	}
	id := l.Identity
	fresh, err := s.c.Sessions.Login(r.Context(), w, r, old, id, l.SessionData(session.CarriedData(old, id)))
	if err != nil {
		s.oidcCount(p.Name, "error")
		s.c.Sessions.LogSaveError(r, "login", err)
		return ServiceUnavailable(w)
	}
	l.Done(w, r, site, fresh.Rec)
	s.oidcCount(p.Name, "success")
	if pages.AcceptsJSON(r) {
		return pages.WriteJSON(w, http.StatusOK, map[string]string{"user": id.User, "source": id.Source})
	}
	if s.c.Cookie.SameSite == "strict" {
		// A redirect would go on with the navigation the provider began,
		// a cross-site one, without the Strict session cookie. A page of
		// ours that moves on begins a navigation of our own.
		return s.c.Pages.OIDC(w, http.StatusOK, pages.OIDC{Title: "Signed in", Continue: s.redirectTarget(r, l.Redirect, "/"), Retry: s.redirectTarget(r, l.Redirect, "/")})
	}
	http.Redirect(w, r, s.redirectTarget(r, l.Redirect, "/"), http.StatusSeeOther)
	return nil
}

// oidcBackchannelLogout serves OIDC Back-Channel Logout 1.0: the
// provider's server, not a browser, POSTs a logout token.
func (s *Server) oidcBackchannelLogout(w http.ResponseWriter, r *http.Request, p *oidc.Client) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, "POST")
	}
	var rv oidc.Revocation
	if s.c.Revocation != nil {
		rv = s.c.Revocation()
	}
	a := p.BackchannelLogout(w, r, s.oidcSite(r), rv)
	if a.StoreErr != nil {
		s.c.Sessions.LogStoreError(r, "back-channel logout", a.StoreErr)
	}
	if a.Revoked > 0 {
		s.c.Metrics.Logout(a.Revoked)
	}
	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	if a.Body == nil {
		w.WriteHeader(a.Status)
		return nil
	}
	return pages.WriteJSON(w, a.Status, a.Body)
}

// oidcLogoutRedirect expires the logout hint cookie and returns where a
// browser logging out of sess goes to end its session at the provider,
// or "" when not there.
func (s *Server) oidcLogoutRedirect(w http.ResponseWriter, r *http.Request, sess *session.Session) string {
	if s.c.OIDC == nil {
		return ""
	}
	var rec *sessionstore.Record
	if sess != nil {
		rec = &sess.Rec
	}
	return s.c.OIDC.LogoutRedirect(w, r, s.oidcSite(r), rec)
}

// oidcProblem answers a provider login that did not work (err, a
// *oidc.Problem; any other error goes up as it is): a page that says why,
// or JSON for API clients. It never sets a session.
func (s *Server) oidcProblem(w http.ResponseWriter, r *http.Request, err error) error {
	var p *oidc.Problem
	if !errors.As(err, &p) {
		return err
	}
	if p.Result != "" {
		s.oidcCount(p.Provider, p.Result)
	}
	if p.RetryAfter != "" {
		w.Header().Set("Retry-After", p.RetryAfter)
	}
	if pages.AcceptsJSON(r) {
		return pages.WriteJSON(w, p.Status, map[string]string{"error": p.Message})
	}
	return s.c.Pages.OIDC(w, p.Status, pages.OIDC{Title: p.Title, Message: p.Message, Retry: s.endpointURL(r, "/login")})
}

// oidcCount counts a provider login in the provider's counter and in the
// logins counter (refused is a failure there).
func (s *Server) oidcCount(provider, result string) {
	s.c.Metrics.OIDCLogin(provider, result)
	if result == "refused" {
		result = "failure"
	}
	s.c.Metrics.Login(result)
}

// oidcButtons are the login page's provider buttons, for a login that
// goes on to redirect.
func (s *Server) oidcButtons(r *http.Request, redirect string) []pages.Provider {
	if s.c.OIDC == nil {
		return nil
	}
	buttons := make([]pages.Provider, 0, len(s.c.OIDC.List()))
	for _, p := range s.c.OIDC.List() {
		q := url.Values{"provider": {p.Name}}
		if redirect != "" && redirect != "/" {
			q.Set("redirect", redirect)
		}
		buttons = append(buttons, pages.Provider{Name: p.Name, Label: p.Label, URL: s.endpointURL(r, "/login") + "?" + q.Encode()})
	}
	return buttons
}
