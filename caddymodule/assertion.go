package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/assertion"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/upstream"
)

// Assertion sends the upstream a short-lived signed token (a JWT, ES256)
// that says who the user is, so that an upstream that can also be reached
// by other paths can tell the session's word from a forged header. The
// public keys are at <path_prefix>/jwks.json. Claims: iss, aud, sub (the
// user), groups, amr (how the user proved who they are, RFC 8176, as an
// OpenID Connect ID token carries it; left out when unknown), sid (a
// hash that names the session, never its ID), iat, exp and jti.
//
// A token names the app it is for: by default its iss and aud carry the
// mount prefix (the path Caddy stripped, as `handle_path /wiki/*` does),
// and each realm signs with keys of its own. Two apps on one host, each
// with its own realm, so issue tokens that neither's verifier accepts for
// the other: not by the keys (each app's <prefix>/jwks.json publishes only
// its realm's), and not by iss or aud.
//
// The signing keys are generated once and kept in Caddy's storage (see
// assertion.StorageKey), one set per realm, shared by every handler of
// the realm and every Caddy that shares the storage. A token is signed
// once per session and reused until shortly before it expires.
type Assertion struct {
	// Header carries the token. Default "<header_prefix>Assertion". A
	// client's copy is always removed.
	Header string `json:"header,omitempty"`

	// Issuer is the token's iss. Default: the origin, mount prefix and
	// path prefix the request came to, e.g.
	// "https://app.example.com/wiki/.session" under `handle_path /wiki/*`
	// ("https://app.example.com/.session" with no mount), so that
	// <iss>/jwks.json has the keys.
	Issuer string `json:"issuer,omitempty"`

	// Audience is the token's aud. Default: the host the request was sent
	// to, without the port, followed by the mount prefix:
	// "app.example.com/wiki" under `handle_path /wiki/*`, "app.example.com"
	// with no mount.
	Audience []string `json:"audience,omitempty"`

	// Lifetime is how long a token is valid. Default 5m; at least 30s and
	// at most 1h.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`

	// RotateEvery makes a new signing key when the current one is this
	// old; earlier keys are published until every token they signed has
	// expired. Default 0: never. At least 1m.
	RotateEvery caddy.Duration `json:"rotate_every,omitempty"`
}

// DefaultAssertionLifetime is how long a token is valid by default.
const DefaultAssertionLifetime = assertion.DefaultLifetime

func (a *Assertion) validate() error {
	if a.Header != "" && !upstream.ValidHeaderName(a.Header) {
		return fmt.Errorf("assertion header %q: not a valid header name", a.Header)
	}
	if l := time.Duration(a.Lifetime); l != 0 && (l < assertion.MinLifetime || l > assertion.MaxLifetime) {
		return fmt.Errorf("assertion lifetime %v: want %v to %v", l, assertion.MinLifetime, assertion.MaxLifetime)
	}
	if r := time.Duration(a.RotateEvery); r != 0 && r < assertion.MinRotation {
		return fmt.Errorf("assertion rotate_every %v: want 0 (never) or at least %v", r, assertion.MinRotation)
	}
	for _, aud := range a.Audience {
		if aud == "" {
			return errors.New("assertion audience: empty")
		}
	}
	return nil
}

// asserter is the assertion as one handler forwards it.
type asserter struct {
	header string // canonical
	minter *assertion.Minter
	ring   *assertion.Keyring
}

// setupAssertion makes the minter, syncs its realm's keys and keeps them
// in sync until the config is unloaded. A header outside the prefix is
// added to the names stripped from every request.
func (h *Handler) setupAssertion(ctx caddy.Context) error {
	a := h.Assertion
	if a == nil {
		return nil
	}
	if err := a.validate(); err != nil {
		return err
	}
	header := http.CanonicalHeaderKey(a.Header)
	if header == "" {
		header = http.CanonicalHeaderKey(h.HeaderPrefix + "Assertion")
	}
	h.strip.Add(header)
	ring := assertion.NewKeyring(ctx.Storage(), h.Realm, time.Duration(a.RotateEvery), h.logger)
	if err := ring.Sync(ctx, time.Now()); err != nil {
		return err
	}
	h.assert = &asserter{
		header: header,
		minter: assertion.NewMinter(ring, a.Issuer, a.Audience, time.Duration(a.Lifetime), h.PathPrefix),
		ring:   ring,
	}
	go ring.Run(ctx, h.assert.minter.Sweep)
	return nil
}

// forwardAssertion puts the session's token in the request to the
// upstream. It reports false, and forwards nothing, when the token's
// default iss or aud needs the mount and the mount is not known (see
// findMount): a token with the root's iss and aud would be another app's.
func (h *Handler) forwardAssertion(r *http.Request, s *session.Session) bool {
	return h.putAssertion(r.Header, r, s)
}

// putAssertion puts the token of s for request r into hdr (the request's
// header, or the auth endpoint's answer); false as forwardAssertion.
func (h *Handler) putAssertion(hdr http.Header, r *http.Request, s *session.Session) bool {
	as := h.assert
	if as == nil || s.Rec.User == "" {
		return true
	}
	key := assertion.Key{Session: s.ID, Created: s.Rec.Created.UnixNano(), User: s.Rec.User, Host: r.Host, TLS: r.TLS != nil}
	if as.minter.UsesMount() {
		var sure bool
		if key.Mount, sure = findMount(r); !sure {
			return false
		}
	}
	sub := assertion.Subject{Site: s.Rec.Site, Source: s.Rec.Source}
	if s.Groups != nil {
		sub.Groups, sub.GroupsKey = s.Groups.Names(), s.Groups.Joined()
	}
	sub.Amr = identity.AmrHeader(amrOf(s.Rec))
	token, err := as.minter.Token(key, sub, time.Now())
	if err != nil {
		// No token: the upstream, which requires one, refuses.
		h.logger.Error("signing the assertion", zap.Error(err), zap.String("user", s.Rec.User))
		return true
	}
	hdr[as.header] = []string{token}
	return true
}

// unmarshalAssertion reads
//
//	assertion [{
//		header <name>
//		issuer <iss>
//		audience <aud>...
//		lifetime <duration>
//		rotate_every <duration>
//	}]
func unmarshalAssertion(d *caddyfile.Dispenser, s *Handler) error {
	if d.NextArg() {
		return d.Errf("assertion takes a block or nothing, not %q", d.Val())
	}
	a := &Assertion{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("assertion: %s given twice", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "header":
			a.Header, err = oneArg(d)
		case "issuer":
			a.Issuer, err = oneArg(d)
		case "audience":
			a.Audience = d.RemainingArgs()
			if len(a.Audience) == 0 {
				return d.Err("assertion audience: needs at least one value")
			}
		case "lifetime":
			a.Lifetime, err = durationArg(d, false)
		case "rotate_every":
			a.RotateEvery, err = durationArg(d, true)
		default:
			return d.Errf("assertion: unknown option %q", sub)
		}
		if err != nil {
			return err
		}
		if err := a.validate(); err != nil {
			return d.WrapErr(err)
		}
	}
	s.Assertion = a
	return nil
}
