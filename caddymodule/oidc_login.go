package caddymodule

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/session"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/edgesession/edgesession/pages"
)

// A login through a provider goes:
//
//  1. <prefix>/login?provider=<name>[&redirect=<path>] (a button of the
//     login page is a link there): a state cookie is set and the browser
//     is sent to the provider with state, nonce and a PKCE challenge.
//  2. The provider sends the browser back to
//     <prefix>/oidc/<name>/callback?code=…&state=…: the state cookie is
//     checked and expired, the code exchanged (with the PKCE verifier),
//     the ID token verified, the user admitted or refused, and the session
//     created as for any login.
//
// The login in progress lives only in the state cookie, signed and
// encrypted with keys of its own: any instance that shares the secret can
// finish a login another began, and only the browser that began it can.

// oidcState is the login in progress, sealed in the state cookie. The
// callback URI is not in it: the callback works it out again as the start
// did (the provider sends the browser to exactly that URI), so that no
// Host header, however long, makes the cookie grow.
type oidcState struct {
	Provider string `json:"p"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Redirect string `json:"r"`
	Started  int64  `json:"t"` // Unix seconds: the oldest login goes first
}

// What one browser keeps of logins in progress stays within what browsers
// and servers accept: at most maxOIDCLogins state cookies (a new login
// drops the oldest), each under 4 KB. Caddy refuses request headers over
// 16 KB (431), browsers drop a cookie over 4 KB, and many upstreams take
// 8 KB of headers: maxOIDCLogins cookies of at most ~2.2 KB stay well
// within that beside the session cookie and the app's own.
const (
	// maxOIDCLogins is how many logins one browser may have in progress
	// with one handler: enough for a few tabs signing in at once.
	maxOIDCLogins = 4
	// maxStateRedirect bounds the redirect a state cookie keeps. A longer
	// one is kept without its query, or, if its path alone is too long,
	// replaced by the site's home: the login works, and lands near.
	maxStateRedirect = 1024
)

// oidcStatePrefix starts the names of the state cookies; each ends in 12
// hex digits (oidcStateCookie).
func (h *Handler) oidcStatePrefix() string { return h.Cookie.Name + "_oidc_" }

// oidcStateCookie names the state cookie of the login with state: one
// per login, so that logins started in two tabs do not undo each other.
func (h *Handler) oidcStateCookie(state string) string {
	sum := sha256.Sum256([]byte(state))
	return h.oidcStatePrefix() + hex.EncodeToString(sum[:6])
}

// isStateCookie reports whether a cookie called name is one of h's state
// cookies (not the logout hint, which shares the prefix).
func (h *Handler) isStateCookie(name string) bool {
	rest, ok := strings.CutPrefix(name, h.oidcStatePrefix())
	if !ok || len(rest) != 12 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

// oidcCookie is a state cookie with the session cookie's attributes but
// its own name, SameSite=Lax whatever the session cookie's (the
// provider's redirect back is a cross-site navigation), and the path of
// the handler's endpoints: the start of a login (<prefix>/login) sees the
// logins already in progress, to drop the oldest, and the callback
// (<prefix>/oidc/<name>/callback) its own.
func (h *Handler) oidcCookie(r *http.Request, name, value string) *http.Cookie {
	c := h.cookie(r, value)
	c.Name = name
	c.Path = h.endpointURL(r, "/")
	if cookie.HasPrefixFold(h.Cookie.Name, "__Host-") {
		c.Path = "/"
	}
	if c.SameSite != http.SameSiteNoneMode {
		c.SameSite = http.SameSiteLaxMode
	}
	return c
}

// stateRedirect is what of redirect a state cookie keeps: all of it, or
// its path when it is too long, or fallback when even that is.
func stateRedirect(redirect, fallback string) (kept string, cut bool) {
	if len(redirect) <= maxStateRedirect {
		return redirect, false
	}
	if i := strings.IndexAny(redirect, "?#"); i >= 0 && i <= maxStateRedirect {
		return redirect[:i], true
	}
	return fallback, true
}

// startOIDCLogin sends the browser to provider name.
func (h *Handler) startOIDCLogin(w http.ResponseWriter, r *http.Request, name, redirect string) error {
	p := h.oidc.get(name)
	if p == nil {
		return h.oidcProblem(w, r, nil, http.StatusNotFound, "Unknown sign-in provider", "There is no sign-in provider called "+name+" here.")
	}
	d, err := p.discovery(r.Context())
	if err != nil {
		h.oidcCount(p, "error")
		w.Header().Set("Retry-After", "30")
		return h.oidcProblem(w, r, p, http.StatusServiceUnavailable, "Sign-in unavailable", p.Label+" cannot be reached right now. Please try again in a minute.")
	}
	kept, cut := stateRedirect(redirect, home(mountPrefix(r)))
	if cut {
		p.logger.Info("oidc login: redirect too long to keep; the login goes on to a shorter one",
			zap.Int("length", len(redirect)), zap.String("kept", shorten(kept, 200)), zapRemoteIP(r))
	}
	st := oidcState{
		Provider: p.Name,
		State:    rand.Text(),
		Nonce:    rand.Text(),
		Verifier: oauth2.GenerateVerifier(),
		Redirect: kept,
		Started:  time.Now().Unix(),
	}
	b, _ := json.Marshal(st)
	v, err := h.oidc.stateCodec.Encode(b)
	if err != nil {
		return err // cannot happen: every field is bounded
	}
	h.dropOldOIDCLogins(w, r)
	c := h.oidcCookie(r, h.oidcStateCookie(st.State), v)
	c.MaxAge = int(oidcStateLifetime / time.Second)
	http.SetCookie(w, c)
	redirectURI := p.redirectURI(r, h.endpointURL(r, ""))
	target := p.oauth2Config(d, redirectURI).AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier))
	http.Redirect(w, r, target, http.StatusFound)
	return nil
}

// dropOldOIDCLogins expires the oldest state cookies r carries, so that
// with the one about to be set there are at most maxOIDCLogins. A cookie
// that does not decode (expired, or sealed with a retired secret) is the
// oldest of all.
func (h *Handler) dropOldOIDCLogins(w http.ResponseWriter, r *http.Request) {
	type login struct {
		name, value string
		started     int64
	}
	var logins []login
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			if n, v := cookie.Cut(part); h.isStateCookie(n) {
				logins = append(logins, login{name: n, value: v})
			}
		}
	}
	if len(logins) < maxOIDCLogins {
		return
	}
	for i := range logins {
		logins[i].started = stateStarted(h.oidc.stateCodec, logins[i].value)
	}
	slices.SortStableFunc(logins, func(a, b login) int { return cmp.Compare(a.started, b.started) })
	for _, l := range logins[:len(logins)-maxOIDCLogins+1] {
		c := h.oidcCookie(r, l.name, "")
		c.MaxAge = -1
		http.SetCookie(w, c)
	}
}

// stateStarted is when the login sealed in v started, 0 if v does not
// decode.
func stateStarted(codec *cookie.Codec, v string) int64 {
	var st oidcState
	b, err := codec.Verify(strings.Trim(v, `"`))
	if err != nil || json.Unmarshal(b, &st) != nil {
		return 0
	}
	return st.Started
}

// takeOIDCState returns the login in progress that state names, and
// expires its cookie: a state is used once.
func (h *Handler) takeOIDCState(w http.ResponseWriter, r *http.Request, p *oidcProvider, state string) (oidcState, bool) {
	var st oidcState
	if state == "" || len(state) > 256 {
		return st, false
	}
	name := h.oidcStateCookie(state)
	values := cookie.Values(r, name)
	if len(values) == 0 {
		return st, false
	}
	c := h.oidcCookie(r, name, "")
	c.MaxAge = -1
	http.SetCookie(w, c)
	for _, v := range values {
		b, err := h.oidc.stateCodec.Verify(v)
		if err != nil || json.Unmarshal(b, &st) != nil {
			continue
		}
		if st.Provider == p.Name && subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) == 1 {
			return st, true
		}
	}
	return oidcState{}, false
}

// serveOIDC serves <prefix>/oidc/<name>/<what>.
func (h *Handler) serveOIDC(w http.ResponseWriter, r *http.Request, rest string) error {
	name, what, _ := strings.Cut(rest, "/")
	p := h.oidc.get(name)
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
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request, p *oidcProvider) error {
	q := r.URL.Query()
	st, ok := h.takeOIDCState(w, r, p, q.Get("state"))
	if e := q.Get("error"); e != "" {
		h.oidcCount(p, "failure")
		desc := shorten(q.Get("error_description"), 200)
		p.logger.Warn("oidc login failed at the provider", zapRemoteIP(r), zap.String("error", shorten(e, 64)), zap.String("description", desc))
		if !isErrorCode(e) {
			e = "error" // anyone can send a browser here: show no text of theirs
		}
		status, msg := http.StatusBadRequest, p.Label+" could not sign you in ("+e+")."
		switch e {
		case "access_denied":
			status, msg = http.StatusForbidden, p.Label+" did not allow the sign-in."
		case "server_error", "temporarily_unavailable":
			status = http.StatusBadGateway
		}
		return h.oidcProblem(w, r, p, status, "Sign-in failed", msg)
	}
	if !ok {
		h.oidcCount(p, "failure")
		p.logger.Warn("oidc callback without a matching login in progress", zapRemoteIP(r))
		return h.oidcProblem(w, r, p, http.StatusBadRequest, "Sign-in expired",
			"This sign-in is no longer valid: it took too long, was already used, or was started in another browser. Please start again.")
	}
	d, err := p.discovery(r.Context())
	if err != nil {
		h.oidcCount(p, "error")
		return h.oidcProblem(w, r, p, http.StatusServiceUnavailable, "Sign-in unavailable", p.Label+" cannot be reached right now. Please try again in a minute.")
	}

	ctx := oidc.ClientContext(r.Context(), p.client)
	// The callback URI as the start worked it out: the provider sent the
	// browser to it, and refuses the code with any other.
	redirectURI := p.redirectURI(r, h.endpointURL(r, ""))
	tok, err := p.oauth2Config(d, redirectURI).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			// The provider refused the code: used already, expired, or
			// not for this client or verifier.
			h.oidcCount(p, "failure")
			p.logger.Warn("oidc code refused by the provider", zapRemoteIP(r), zap.String("error", re.ErrorCode), zap.Error(err))
			return h.oidcProblem(w, r, p, http.StatusBadRequest, "Sign-in failed", p.Label+" did not accept this sign-in. Please start again.")
		}
		h.oidcCount(p, "error")
		p.logger.Error("oidc token request failed", zapRemoteIP(r), zap.Error(err))
		return h.oidcProblem(w, r, p, http.StatusBadGateway, "Sign-in failed", p.Label+" did not answer as expected. Please try again later.")
	}
	v, err := p.verify(ctx, d, tok, st.Nonce)
	if err != nil {
		h.oidcCount(p, "failure")
		p.logger.Error("oidc id token refused", zapRemoteIP(r), zap.Error(err))
		return h.oidcProblem(w, r, p, http.StatusBadGateway, "Sign-in failed", "The answer of "+p.Label+" could not be verified. Please try again later.")
	}
	who, err := p.identify(v.claims)
	if err != nil {
		h.oidcCount(p, "refused")
		p.logger.Warn("oidc login refused: the claims name no user here", zap.String("sub", shorten(v.sub, 256)), zapRemoteIP(r), zap.Error(err))
		return h.oidcProblem(w, r, p, http.StatusForbidden, "Access denied", err.Error())
	}
	if reason := p.admit(who); reason != "" {
		h.oidcCount(p, "refused")
		p.logger.Warn("oidc login refused", zap.String("user", who.user), zap.String("email", who.email), zapRemoteIP(r), zap.String("reason", reason))
		return h.oidcProblem(w, r, p, http.StatusForbidden, "Access denied", reason)
	}

	old, err := h.sessions.Load(w, r)
	if err != nil {
		h.oidcCount(p, "error")
		return h.serviceUnavailable(w)
	}
	id := identity.Identity{User: p.userName(who.user), Source: p.source, Fingerprint: p.loginFingerprint(v.sub, v.sid), Groups: p.groupNames(who.groups)}
	data := session.CarriedData(old, id)
	if data == nil {
		data = map[string]string{}
	}
	// The claims are as the provider says now: one it no longer sends
	// (a group the user left) does not live on from the old session.
	for _, k := range p.claimKeys() {
		delete(data, k)
	}
	maps.Copy(data, who.data)
	fresh, err := h.sessions.Login(r.Context(), w, r, old, id, data)
	if err != nil {
		h.oidcCount(p, "error")
		h.logSaveError(r, "login", err)
		return h.serviceUnavailable(w)
	}
	h.keepLogoutHint(w, r, p, d, fresh.Rec, v.raw)
	h.oidcCount(p, "success")
	p.logger.Info("login", zap.String("user", id.User), zapRemoteIP(r))
	if pages.AcceptsJSON(r) {
		return pages.WriteJSON(w, http.StatusOK, map[string]string{"user": id.User, "source": id.Source})
	}
	if h.Cookie.SameSite == "strict" {
		// A redirect would go on with the navigation the provider began,
		// a cross-site one, without the Strict session cookie. A page of
		// ours that moves on begins a navigation of our own.
		return h.pages.OIDC(w, http.StatusOK, pages.OIDC{Title: "Signed in", Continue: safeRedirect(st.Redirect), Retry: safeRedirect(st.Redirect)})
	}
	http.Redirect(w, r, safeRedirect(st.Redirect), http.StatusSeeOther)
	return nil
}

// isErrorCode reports whether e looks like an OAuth error code.
func isErrorCode(e string) bool {
	return len(e) <= 40 && !strings.ContainsFunc(e, func(r rune) bool { return (r < 'a' || r > 'z') && r != '_' })
}

// verifiedLogin is what a verified ID token says.
type verifiedLogin struct {
	claims   map[string]any // with those of userinfo the ID token lacks
	sub, sid string
	raw      string // the ID token
}

// verify checks the ID token of tok (go-oidc: signature against the
// provider's keys, fetched again when an unknown key appears; iss, aud,
// exp) and what go-oidc leaves to its caller: nonce, azp, at_hash. The
// claims the ID token lacks are taken from the userinfo endpoint.
func (p *oidcProvider) verify(ctx context.Context, d *oidcDiscovery, tok *oauth2.Token, nonce string) (*verifiedLogin, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("no id_token in the token response")
	}
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, errors.New("id token nonce does not match the login's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	// OIDC Core 3.1.3.7: with several audiences azp must be there, and
	// when it is there it must be this client.
	azp, hasAzp := claims["azp"]
	if len(idt.Audience) > 1 && !hasAzp {
		return nil, errors.New("id token has several audiences and no azp")
	}
	if hasAzp && azp != p.ClientID {
		return nil, errors.New("id token azp is another client")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, err
		}
	}
	if p.wantsUserInfo(claims) && d.provider.UserInfoEndpoint() != "" {
		more, err := p.userInfo(ctx, d, tok)
		if err != nil {
			return nil, err
		}
		if sub, _ := more["sub"].(string); sub != idt.Subject {
			return nil, errors.New("userinfo is about another subject than the id token")
		}
		mergeUserInfo(claims, more)
	}
	sid, _ := claims["sid"].(string)
	return &verifiedLogin{claims: claims, sub: idt.Subject, sid: sid, raw: raw}, nil
}

// wantsUserInfo reports whether a claim the provider's settings use is
// missing from the ID token (many providers put only sub there when they
// also issue an access token).
func (p *oidcProvider) wantsUserInfo(claims map[string]any) bool {
	for _, c := range append([]string{p.UsernameClaim, p.GroupsClaim, "email", "name"}, p.Claims...) {
		if _, ok := claims[c]; !ok {
			return true
		}
	}
	return false
}

// mergeUserInfo adds to claims those of more it lacks. email_verified
// comes along only with the email it is about.
func mergeUserInfo(claims, more map[string]any) {
	for k, v := range more {
		if _, ok := claims[k]; !ok && k != "email_verified" && k != "sub" {
			claims[k] = v
		}
	}
	if _, ok := claims["email_verified"]; !ok && claims["email"] == more["email"] {
		if v, ok := more["email_verified"]; ok {
			claims["email_verified"] = v
		}
	}
}

// oidcProblem answers a provider login that did not work: a page that
// says why, or JSON for API clients. It never sets a session.
func (h *Handler) oidcProblem(w http.ResponseWriter, r *http.Request, p *oidcProvider, status int, title, msg string) error {
	if pages.AcceptsJSON(r) {
		return pages.WriteJSON(w, status, map[string]string{"error": msg})
	}
	return h.pages.OIDC(w, status, pages.OIDC{Title: title, Message: msg, Retry: h.endpointURL(r, "/login")})
}

// oidcCount counts a provider login in the provider's counter and in
// logins_total (refused is a failure there).
func (h *Handler) oidcCount(p *oidcProvider, result string) {
	h.oidc.metrics.WithLabelValues(p.Name, result).Inc()
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
	buttons := make([]pages.Provider, 0, len(h.oidc.list))
	for _, p := range h.oidc.list {
		q := url.Values{"provider": {p.Name}}
		if redirect != "" && redirect != "/" {
			q.Set("redirect", redirect)
		}
		buttons = append(buttons, pages.Provider{Name: p.Name, Label: p.Label, URL: h.endpointURL(r, "/login") + "?" + q.Encode()})
	}
	return buttons
}
