package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"maps"
	"net/http"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/internal/text"
	"github.com/edgesession/edgesession/sessionstore"
)

// Login is a login the provider vouched for and the allow-lists let in:
// the handler creates its session (Identity, SessionData), calls Done, and
// sends the browser on to Redirect.
type Login struct {
	Identity identity.Identity
	// Redirect is where the login was to go on to, as the start kept it:
	// not yet checked as a redirect target.
	Redirect string

	p   *Client
	d   *discovery
	who user
	raw string // the ID token
}

// SessionData is the session data of the login: carried (the data of
// the session it replaces, nil for none) with the claims as the provider
// says them now. A claim it no longer sends (a group the user left) does
// not live on from the old session.
func (l *Login) SessionData(carried map[string]string) map[string]string {
	data := carried
	if data == nil {
		data = map[string]string{}
	}
	for _, k := range l.p.claimKeys() {
		delete(data, k)
	}
	maps.Copy(data, l.who.data)
	return data
}

// Done finishes the login once its session rec is made: it keeps the
// logout hint cookie (when the provider logs out too) and logs the login.
func (l *Login) Done(w http.ResponseWriter, r *http.Request, site Site, rec sessionstore.Record) {
	l.p.keepLogoutHint(w, r, site, l.d, rec, l.raw)
	l.p.logger.Info("login", zap.String("user", l.Identity.User), site.zapRemoteIP())
}

// Finish finishes a login at <prefix>/oidc/<name>/callback: the provider
// sent the browser back. It checks and expires the state cookie,
// exchanges the code, verifies the ID token, reads the claims and applies
// the allow-lists. A login that did not work is a *Problem.
func (p *Client) Finish(w http.ResponseWriter, r *http.Request, site Site) (*Login, error) {
	q := r.URL.Query()
	st, ok := p.takeState(w, r, site, q.Get("state"))
	if e := q.Get("error"); e != "" {
		desc := text.Shorten(q.Get("error_description"), 200)
		p.logger.Warn("oidc login failed at the provider", site.zapRemoteIP(), zap.String("error", text.Shorten(e, 64)), zap.String("description", desc))
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
		return nil, p.problem("failure", status, "Sign-in failed", msg)
	}
	if !ok {
		p.logger.Warn("oidc callback without a matching login in progress", site.zapRemoteIP())
		return nil, p.problem("failure", http.StatusBadRequest, "Sign-in expired",
			"This sign-in is no longer valid: it took too long, was already used, or was started in another browser. Please start again.")
	}
	d, err := p.discover(r.Context())
	if err != nil {
		return nil, p.problem("error", http.StatusServiceUnavailable, "Sign-in unavailable", p.Label+" cannot be reached right now. Please try again in a minute.")
	}

	ctx := gooidc.ClientContext(r.Context(), p.client)
	// The callback URI as the start worked it out: the provider sent the
	// browser to it, and refuses the code with any other.
	redirectURI := p.redirectURI(r, site)
	tok, err := p.oauth2Config(d, redirectURI).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			// The provider refused the code: used already, expired, or
			// not for this client or verifier.
			p.logger.Warn("oidc code refused by the provider", site.zapRemoteIP(), zap.String("error", re.ErrorCode), zap.Error(err))
			return nil, p.problem("failure", http.StatusBadRequest, "Sign-in failed", p.Label+" did not accept this sign-in. Please start again.")
		}
		p.logger.Error("oidc token request failed", site.zapRemoteIP(), zap.Error(err))
		return nil, p.problem("error", http.StatusBadGateway, "Sign-in failed", p.Label+" did not answer as expected. Please try again later.")
	}
	v, err := p.verify(ctx, d, tok, st.Nonce)
	if err != nil {
		p.logger.Error("oidc id token refused", site.zapRemoteIP(), zap.Error(err))
		return nil, p.problem("failure", http.StatusBadGateway, "Sign-in failed", "The answer of "+p.Label+" could not be verified. Please try again later.")
	}
	who, err := p.identify(v.claims)
	if err != nil {
		p.logger.Warn("oidc login refused: the claims name no user here", zap.String("sub", text.Shorten(v.sub, 256)), site.zapRemoteIP(), zap.Error(err))
		return nil, p.problem("refused", http.StatusForbidden, "Access denied", err.Error())
	}
	if reason := p.admit(who); reason != "" {
		p.logger.Warn("oidc login refused", zap.String("user", who.user), zap.String("email", who.email), site.zapRemoteIP(), zap.String("reason", reason))
		return nil, p.problem("refused", http.StatusForbidden, "Access denied", reason)
	}
	return &Login{
		Identity: identity.Identity{User: p.userName(who.user), Source: p.source, Fingerprint: p.loginFingerprint(v.sub, v.sid), Groups: p.groupNames(who.groups),
			Amr: p.amrOf(v.amr, v.acr, p.set.providerMFA)},
		Redirect: st.Redirect,
		p:        p, d: d, who: who, raw: v.raw,
	}, nil
}

// isErrorCode reports whether e looks like an OAuth error code.
func isErrorCode(e string) bool {
	return len(e) <= 40 && !strings.ContainsFunc(e, func(r rune) bool { return (r < 'a' || r > 'z') && r != '_' })
}

// verifiedLogin is what a verified ID token says.
type verifiedLogin struct {
	claims   map[string]any // with those of userinfo the ID token lacks
	sub, sid string
	amr, acr any    // the ID token's own (not userinfo's)
	raw      string // the ID token
}

// verify checks the ID token of tok (go-oidc: signature against the
// provider's keys, fetched again when an unknown key appears; iss, aud,
// exp) and what go-oidc leaves to its caller: nonce, azp, at_hash. The
// claims the ID token lacks are taken from the userinfo endpoint.
func (p *Client) verify(ctx context.Context, d *discovery, tok *oauth2.Token, nonce string) (*verifiedLogin, error) {
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
	// How the user logged in is the ID token's word (OpenID Connect
	// Core 2), read before userinfo's claims join them.
	amr, acr := claims["amr"], claims["acr"]
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
	return &verifiedLogin{claims: claims, sub: idt.Subject, sid: sid, amr: amr, acr: acr, raw: raw}, nil
}

// wantsUserInfo reports whether a claim the provider's settings use is
// missing from the ID token (many providers put only sub there when they
// also issue an access token).
func (p *Client) wantsUserInfo(claims map[string]any) bool {
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
