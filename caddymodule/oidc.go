package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity/oidc"
	"github.com/edgesession/edgesession/internal/files"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

// OIDCProvider is an OpenID Connect provider that users may sign in with:
// see oidc.Provider. The sign-in itself is package oidc's; the routes
// under <prefix>/oidc/, the sessions, pages and metrics are the handler's.
type OIDCProvider = oidc.Provider

// setupOIDC provisions the providers: their secrets, the state cookie
// codec, and discovery in the background. Nothing here waits for a
// provider: one that is down when Caddy starts is retried until it
// answers or the config is unloaded.
func (h *Handler) setupOIDC(ctx caddy.Context, secrets [][]byte) error {
	if len(h.OIDC) == 0 {
		return nil
	}
	registerOIDCMetrics(ctx.GetMetricsRegistry(), h.logger)
	var err error
	h.oidc, err = oidc.New(ctx, h.OIDC, oidc.Options{
		Cookie:        h.Cookie,
		Realm:         h.Realm,
		Secrets:       secrets,
		Lifetime:      h.lifetime,
		Logger:        h.logger,
		ResolveSecret: resolvePlaceholders,
	})
	return err
}

// oidcSite is what package oidc needs to know of r.
func (h *Handler) oidcSite(r *http.Request) oidc.Site {
	return oidc.Site{Endpoints: h.endpointURL(r, ""), Home: home(mountPrefix(r)), ClientIP: clientIP(r)}
}

// startOIDCLogin sends the browser to provider name.
func (h *Handler) startOIDCLogin(w http.ResponseWriter, r *http.Request, name, redirect string) error {
	return h.oidcProblem(w, r, h.oidc.Start(w, r, h.oidcSite(r), name, redirect))
}

// serveOIDC serves <prefix>/oidc/<name>/<what>.
func (h *Handler) serveOIDC(w http.ResponseWriter, r *http.Request, rest string) error {
	name, what, _ := strings.Cut(rest, "/")
	p := h.oidc.Get(name)
	if p != nil && what == "backchannel-logout" {
		return h.oidcBackchannelLogout(w, r, p)
	}
	if p == nil || what != "callback" {
		return pages.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	}
	if r.Method != http.MethodGet {
		// Not even HEAD: it would spend the code.
		return methodNotAllowed(w, "GET")
	}
	return h.oidcCallback(w, r, p)
}

// oidcCallback finishes a login: the provider sent the browser back.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request, p *oidc.Client) error {
	site := h.oidcSite(r)
	l, err := p.Finish(w, r, site)
	if err != nil {
		return h.oidcProblem(w, r, err)
	}
	old, err := h.sessions.Load(w, r)
	if err != nil {
		h.oidcCount(p.Name, "error")
		return h.serviceUnavailable(w)
	}
	id := l.Identity
	fresh, err := h.sessions.Login(r.Context(), w, r, old, id, l.SessionData(session.CarriedData(old, id)))
	if err != nil {
		h.oidcCount(p.Name, "error")
		h.logSaveError(r, "login", err)
		return h.serviceUnavailable(w)
	}
	l.Done(w, r, site, fresh.Rec)
	h.oidcCount(p.Name, "success")
	if pages.AcceptsJSON(r) {
		return pages.WriteJSON(w, http.StatusOK, map[string]string{"user": id.User, "source": id.Source})
	}
	if h.Cookie.SameSite == "strict" {
		// A redirect would go on with the navigation the provider began,
		// a cross-site one, without the Strict session cookie. A page of
		// ours that moves on begins a navigation of our own.
		return h.pages.OIDC(w, http.StatusOK, pages.OIDC{Title: "Signed in", Continue: safeRedirect(l.Redirect), Retry: safeRedirect(l.Redirect)})
	}
	http.Redirect(w, r, safeRedirect(l.Redirect), http.StatusSeeOther)
	return nil
}

// oidcBackchannelLogout serves OIDC Back-Channel Logout 1.0: the
// provider's server, not a browser, POSTs a logout token.
func (h *Handler) oidcBackchannelLogout(w http.ResponseWriter, r *http.Request, p *oidc.Client) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, "POST")
	}
	rv := oidc.Revocation{Store: h.store}
	if lister, ok := underlyingStore(h.store).(sessionstore.Lister); ok {
		rv.Lister, rv.Claims = lister, h.claims()
	}
	a := p.BackchannelLogout(w, r, h.oidcSite(r), rv)
	if a.StoreErr != nil {
		h.sessions.LogStoreError(r, "back-channel logout", a.StoreErr)
	}
	if a.Revoked > 0 {
		h.metrics.logouts.Add(float64(a.Revoked))
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

// claims is where the handler claims what may be used once: its store,
// or, for the cookie store (which keeps nothing on the server), this
// process's memory, which other instances do not see.
func (h *Handler) claims() sessionstore.Claimer {
	if c, ok := underlyingStore(h.store).(sessionstore.Claimer); ok {
		return c
	}
	return processClaims()
}

// processClaims are the claims of handlers whose store cannot keep them,
// shared by every config this process loads.
var processClaims = sync.OnceValue(func() *sessionstore.Memory { return sessionstore.NewMemory(time.Minute) })

// oidcLogoutRedirect expires the logout hint cookie and returns where a
// browser logging out of s goes to end its session at the provider, or
// "" when not there.
func (h *Handler) oidcLogoutRedirect(w http.ResponseWriter, r *http.Request, s *session.Session) string {
	if h.oidc == nil {
		return ""
	}
	var rec *sessionstore.Record
	if s != nil {
		rec = &s.Rec
	}
	return h.oidc.LogoutRedirect(w, r, h.oidcSite(r), rec)
}

// logoutFormAction is what the logout page's CSP form-action must allow
// besides 'self': the providers' end_session endpoints.
func (h *Handler) logoutFormAction() string { return h.oidc.LogoutFormAction() }

// resolvePlaceholders replaces {env.*} and {file.*} in s, as for secrets,
// without their minimum length.
func resolvePlaceholders(s string) (string, error) {
	v, err := caddy.NewEmptyReplacer().ReplaceFunc(s, func(key string, _ any) (any, error) {
		if name, ok := strings.CutPrefix(key, "env."); ok {
			v := os.Getenv(name)
			if v == "" {
				return nil, fmt.Errorf("environment variable %s is unset or empty", name)
			}
			return v, nil
		}
		if path, ok := strings.CutPrefix(key, "file."); ok {
			if fi, err := os.Stat(path); err != nil {
				return nil, err
			} else if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("%s is not a regular file", path)
			}
			b, err := files.ReadAtMost(path, maxSecretFile)
			return string(b), err
		}
		return nil, fmt.Errorf("only {env.*} and {file.*} placeholders are replaced here (write a literal brace as \\{)")
	})
	return strings.TrimSpace(v), err
}

// oidcProblem answers a provider login that did not work (err, a
// *oidc.Problem; any other error goes up as it is): a page that says why,
// or JSON for API clients. It never sets a session.
func (h *Handler) oidcProblem(w http.ResponseWriter, r *http.Request, err error) error {
	var p *oidc.Problem
	if !errors.As(err, &p) {
		return err
	}
	if p.Result != "" {
		h.oidcCount(p.Provider, p.Result)
	}
	if p.RetryAfter != "" {
		w.Header().Set("Retry-After", p.RetryAfter)
	}
	if pages.AcceptsJSON(r) {
		return pages.WriteJSON(w, p.Status, map[string]string{"error": p.Message})
	}
	return h.pages.OIDC(w, p.Status, pages.OIDC{Title: p.Title, Message: p.Message, Retry: h.endpointURL(r, "/login")})
}

// oidcCount counts a provider login in the provider's counter and in
// logins_total (refused is a failure there).
func (h *Handler) oidcCount(provider, result string) {
	oidcLogins.WithLabelValues(provider, result).Inc()
	if result == "refused" {
		result = "failure"
	}
	h.metrics.logins.WithLabelValues(result).Inc()
}

// oidcButtons are the login page's provider buttons, for a login that
// goes on to redirect.
func (h *Handler) oidcButtons(r *http.Request, redirect string) []pages.Provider {
	if h.oidc == nil {
		return nil
	}
	buttons := make([]pages.Provider, 0, len(h.oidc.List()))
	for _, p := range h.oidc.List() {
		q := url.Values{"provider": {p.Name}}
		if redirect != "" && redirect != "/" {
			q.Set("redirect", redirect)
		}
		buttons = append(buttons, pages.Provider{Name: p.Name, Label: p.Label, URL: h.endpointURL(r, "/login") + "?" + q.Encode()})
	}
	return buttons
}

// registerOIDCMetrics registers the per-provider login counter, created
// once per process like the handler's other collectors.
func registerOIDCMetrics(reg prometheus.Registerer, logger *zap.Logger) *prometheus.CounterVec {
	if reg != nil {
		if err := reg.Register(oidcLogins); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				logger.Warn("cannot register oidc metrics", zap.Error(err))
			}
		}
	}
	return oidcLogins
}

var oidcLogins = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy", Subsystem: "session", Name: "oidc_logins_total",
	Help: "Logins through an OIDC provider by provider and result: success, refused (allow-lists), failure (the provider's answer did not verify, or the user cancelled), error (provider or store unreachable).",
}, []string{"provider", "result"})
