package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/sessionstore"
)

// Back-channel logout (OIDC Back-Channel Logout 1.0): the provider's
// server POSTs a logout token to <prefix>/oidc/<name>/backchannel-logout.
//
// A logout token is accepted as certified providers send it: Ory Hydra's
// carry no exp and a typ of JWT. What is checked:
//   - the signature, with the provider's keys (go-oidc and go-jose; the
//     algorithm as for ID tokens, never none or a MAC), iss and aud;
//   - typ, when present: logout+jwt or the generic JWT (with or without
//     application/); any other explicit type (an access token's at+jwt…)
//     is refused. What keeps an ID token from passing as a logout token
//     is what the spec relies on: the events claim and no nonce;
//   - the events claim holds the back-channel logout event (an object),
//     no nonce, a jti, and sub or sid or both;
//   - freshness by iat: issued at most logoutTokenMaxAge ago and not in
//     the future, each give or take logoutClockSkew; an exp or nbf, when
//     present, is honoured with the same leeway;
//   - jti: each token is accepted once. Its jti is claimed in the session
//     store (sessionstore.Claimer: every instance that shares a Redis or
//     bolt store sees it) until the token could no longer be fresh; a
//     replay is refused with 400.
//
// Every check that needs nothing but the token runs before its signature
// is checked, so that junk never makes go-oidc fetch the provider's keys
// (see backchannel_limits.go for what is limited).
const (
	logoutTokenMaxAge = 2 * time.Minute
	logoutClockSkew   = time.Minute
)

// backchannelLogoutEvent is the member of a logout token's events claim
// that makes it one.
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogoutToken bounds a back-channel logout request body.
const maxLogoutToken = 64 << 10

// logoutTokenAlgs are the algorithms a logout token may be parsed with:
// the asymmetric ones. go-oidc then holds the token to the provider's
// id_token_signing_alg_values_supported (RS256 if it names none).
var logoutTokenAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// logoutToken is a logout token's claims.
type logoutToken struct {
	jwt.Claims
	SessionID string                     `json:"sid"`
	Events    map[string]json.RawMessage `json:"events"`
	// Nonce is kept raw: its mere presence refuses the token.
	Nonce json.RawMessage `json:"nonce"`
}

// freshUntil is the last moment the token could pass the freshness
// checks: its jti is remembered until then.
func (lt *logoutToken) freshUntil() time.Time {
	until := lt.IssuedAt.Time().Add(logoutTokenMaxAge + logoutClockSkew)
	if lt.Expiry != nil {
		if exp := lt.Expiry.Time().Add(logoutClockSkew); exp.Before(until) {
			until = exp
		}
	}
	return until
}

// Reasons a back-channel logout is refused, for logs.
const (
	refusedTooMany     = "too_many_requests"
	refusedNoToken     = "no_token"
	refusedMalformed   = "malformed"
	refusedType        = "type"
	refusedClaims      = "claims"
	refusedStale       = "stale"
	refusedSignature   = "signature"
	refusedKeys        = "keys_unavailable"
	refusedReplay      = "replayed"
	refusedUnavailable = "discovery_unavailable"
)

// verifyLogoutToken checks raw as p's logout token at now; on failure it
// says why (one of the refused* reasons) and how.
func (p *Client) verifyLogoutToken(ctx context.Context, d *discovery, raw string, now time.Time) (*logoutToken, string, error) {
	// The token as sent, unverified: everything that costs nothing.
	tok, err := jwt.ParseSigned(raw, logoutTokenAlgs)
	if err != nil {
		return nil, refusedMalformed, err
	}
	if len(tok.Headers) != 1 {
		return nil, refusedMalformed, errors.New("not one signature")
	}
	if err := checkLogoutType(tok.Headers[0].ExtraHeaders[jose.HeaderType]); err != nil {
		return nil, refusedType, err
	}
	var sent logoutToken
	if err := tok.UnsafeClaimsWithoutVerification(&sent); err != nil {
		return nil, refusedMalformed, err
	}
	if reason, err := p.checkLogoutClaims(&sent, now); err != nil {
		return nil, reason, err
	}
	// The signature (and iss and aud again): only now may the keys be
	// fetched.
	failedBefore := p.keys.failed.Load()
	idt, err := d.logoutVerifier.Verify(ctx, raw)
	if err != nil {
		if p.keys.failed.Load() != failedBefore {
			return nil, refusedKeys, err
		}
		return nil, refusedSignature, err
	}
	// The claims as signed decide.
	var lt logoutToken
	if err := idt.Claims(&lt); err != nil {
		return nil, refusedMalformed, err
	}
	if reason, err := p.checkLogoutClaims(&lt, now); err != nil {
		return nil, reason, err
	}
	return &lt, "", nil
}

// checkLogoutType accepts a typ header that is absent, logout+jwt or
// JWT, with or without application/, in any case (RFC 7515 §4.1.9).
func checkLogoutType(typ any) error {
	if typ == nil {
		return nil
	}
	s, ok := typ.(string)
	if ok {
		t := strings.ToLower(s)
		t = strings.TrimPrefix(t, "application/")
		if t == "logout+jwt" || t == "jwt" {
			return nil
		}
	}
	return fmt.Errorf("typ %.64q: not a logout token (want logout+jwt)", fmt.Sprint(typ))
}

// checkLogoutClaims checks everything in lt but its signature.
func (p *Client) checkLogoutClaims(lt *logoutToken, now time.Time) (string, error) {
	// iss, aud; exp and nbf when present; iat not in the future.
	err := lt.ValidateWithLeeway(jwt.Expected{Issuer: p.Issuer, AnyAudience: jwt.Audience{p.ClientID}, Time: now}, logoutClockSkew)
	switch {
	case errors.Is(err, jwt.ErrExpired) || errors.Is(err, jwt.ErrNotValidYet) || errors.Is(err, jwt.ErrIssuedInTheFuture):
		return refusedStale, err
	case err != nil:
		return refusedClaims, err
	}
	if lt.IssuedAt == nil {
		return refusedClaims, errors.New("no iat")
	}
	if iat := lt.IssuedAt.Time(); now.Sub(iat) > logoutTokenMaxAge+logoutClockSkew {
		return refusedStale, fmt.Errorf("issued %v ago; a logout token is fresh for %v (give or take %v)", now.Sub(iat).Round(time.Second), logoutTokenMaxAge, logoutClockSkew)
	}
	if ev, ok := lt.Events[backchannelLogoutEvent]; !ok || !isJSONObject(ev) {
		return refusedClaims, errors.New("no back-channel logout event in the events claim: not a logout token")
	}
	if len(lt.Nonce) != 0 {
		return refusedClaims, errors.New("a nonce: an ID token, not a logout token")
	}
	if lt.ID == "" {
		return refusedClaims, errors.New("no jti")
	}
	if lt.Subject == "" && lt.SessionID == "" {
		return refusedClaims, errors.New("neither sub nor sid")
	}
	return "", nil
}

func isJSONObject(b json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}

// Deleter deletes sessions: the handler's store.
type Deleter interface {
	Delete(ctx context.Context, key sessionstore.Key) error
}

// Revocation is what a back-channel logout acts on.
type Revocation struct {
	// Lister finds the provider's sessions; nil when the store cannot
	// (the cookie store): the logout is answered 501.
	Lister sessionstore.Lister
	// Claims is where a logout token's jti is claimed, once for every
	// instance that shares it (unused without a Lister).
	Claims sessionstore.Claimer
	// Store deletes the sessions found.
	Store Deleter
}

// LogoutAnswer is the answer to a back-channel logout: Status, with Body
// as JSON unless it is nil.
type LogoutAnswer struct {
	Status     int
	Body       map[string]string
	RetryAfter string // the Retry-After header, or ""
	// Revoked is how many sessions ended.
	Revoked int
	// StoreErr is the store's failure behind a 503, for the handler to
	// log as it logs the store's errors.
	StoreErr error
}

// BackchannelLogout serves OIDC Back-Channel Logout 1.0 (a POST, which the
// handler checks): the provider's server, not a browser, POSTs a logout
// token, and the sessions it names end.
func (p *Client) BackchannelLogout(w http.ResponseWriter, r *http.Request, site Site, rv Revocation) LogoutAnswer {
	ip := site.ClientIP
	now := time.Now()
	if !p.logoutAddrs.allow(ip, now) {
		p.logoutRefusals.refused(refusedTooMany, ip, nil)
		return LogoutAnswer{Status: http.StatusTooManyRequests, RetryAfter: "1", Body: map[string]string{"error": "temporarily_unavailable"}}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutToken)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("logout_token") == "" {
		p.logoutRefusals.refused(refusedNoToken, ip, err)
		return LogoutAnswer{Status: http.StatusBadRequest, Body: map[string]string{"error": "invalid_request", "error_description": "no logout_token"}}
	}
	d, err := p.discover(r.Context())
	if err != nil {
		p.logoutRefusals.refused(refusedUnavailable, ip, err)
		return LogoutAnswer{Status: http.StatusServiceUnavailable, RetryAfter: "5", Body: map[string]string{"error": "temporarily_unavailable"}}
	}
	lt, reason, err := p.verifyLogoutToken(r.Context(), d, r.PostForm.Get("logout_token"), now)
	if err != nil {
		p.logoutRefusals.refused(reason, ip, err)
		if reason == refusedKeys {
			// The provider's keys could not be fetched now: a retry may
			// well pass (Hydra retries a 503, not a 400).
			return LogoutAnswer{Status: http.StatusServiceUnavailable, RetryAfter: fmt.Sprint(int(keyFetchEvery / time.Second)),
				Body: map[string]string{"error": "temporarily_unavailable", "error_description": "the provider's keys cannot be fetched now"}}
		}
		return LogoutAnswer{Status: http.StatusBadRequest, Body: map[string]string{"error": "invalid_request", "error_description": "logout token refused"}}
	}
	if rv.Lister == nil {
		p.logger.Error("oidc back-channel logout: this session store cannot find a user's sessions (memory, bolt and redis can); nothing revoked", zap.String("sid", lt.SessionID))
		return LogoutAnswer{Status: http.StatusNotImplemented, Body: map[string]string{"error": "unsupported", "error_description": "the session store cannot revoke sessions by user"}}
	}
	// Once per token, on every instance: claim its jti before acting.
	jti := sessionstore.ClaimKey("oidc logout jti", p.Issuer, p.ClientID, lt.ID)
	first, err := rv.Claims.Claim(r.Context(), jti, lt.freshUntil())
	if err != nil {
		return LogoutAnswer{Status: http.StatusServiceUnavailable, Body: map[string]string{"error": "temporarily_unavailable"}, StoreErr: err}
	}
	if !first {
		p.logoutRefusals.refused(refusedReplay, ip, fmt.Errorf("jti %q was accepted before: a logout token is accepted once", lt.ID))
		return LogoutAnswer{Status: http.StatusBadRequest, Body: map[string]string{"error": "invalid_request", "error_description": "logout token replayed"}}
	}
	n, err := p.revokeSessions(r.Context(), rv.Lister, rv.Store, lt.Subject, lt.SessionID)
	if err != nil {
		// Nothing may have been revoked: the provider's retry of this
		// very token must not count as a replay.
		if rerr := rv.Claims.Release(context.WithoutCancel(r.Context()), jti); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return LogoutAnswer{Status: http.StatusServiceUnavailable, Body: map[string]string{"error": "temporarily_unavailable"}, StoreErr: err}
	}
	p.logger.Info("oidc back-channel logout", zap.Int("sessions", n), zap.Bool("by_sid", lt.SessionID != ""))
	return LogoutAnswer{Status: http.StatusOK, Revoked: n}
}
