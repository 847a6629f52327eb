package caddymodule

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/sessionstore"
)

// Assertion sends the upstream a short-lived signed token (a JWT, ES256)
// that says who the user is, so that an upstream that can also be reached
// by other paths can tell the session's word from a forged header. The
// public keys are at <path_prefix>/jwks.json. Claims: iss, aud, sub (the
// user), groups, sid (a hash that names the session, never its ID), iat,
// exp and jti.
//
// A token names the app it is for: by default its iss and aud carry the
// mount prefix (the path Caddy stripped, as `handle_path /wiki/*` does),
// and each realm signs with keys of its own. Two apps on one host, each
// with its own realm, so issue tokens that neither's verifier accepts for
// the other: not by the keys (each app's <prefix>/jwks.json publishes only
// its realm's), and not by iss or aud.
//
// The signing keys are generated once and kept in Caddy's storage (see
// assertionKeysStorageKey), one set per realm, shared by every handler of
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

// Assertion defaults and bounds.
const (
	DefaultAssertionLifetime = 5 * time.Minute
	minAssertionLifetime     = 30 * time.Second
	maxAssertionLifetime     = time.Hour
	minAssertionRotation     = time.Minute
	// maxCachedAssertions bounds the token cache; past it the cache starts
	// afresh (each session then signs once more).
	maxCachedAssertions = 100_000
)

func (a *Assertion) validate() error {
	if a.Header != "" && !validHeaderName(a.Header) {
		return fmt.Errorf("assertion header %q: not a valid header name", a.Header)
	}
	if l := time.Duration(a.Lifetime); l != 0 && (l < minAssertionLifetime || l > maxAssertionLifetime) {
		return fmt.Errorf("assertion lifetime %v: want %v to %v", l, minAssertionLifetime, maxAssertionLifetime)
	}
	if r := time.Duration(a.RotateEvery); r != 0 && r < minAssertionRotation {
		return fmt.Errorf("assertion rotate_every %v: want 0 (never) or at least %v", r, minAssertionRotation)
	}
	for _, aud := range a.Audience {
		if aud == "" {
			return errors.New("assertion audience: empty")
		}
	}
	return nil
}

// asserter mints, caches and forwards the tokens of one handler.
type asserter struct {
	header   string // canonical
	issuer   string // "" for the request's origin, mount and prefix
	audience any    // nil for the request's host and mount, else string or []string
	lifetime time.Duration
	prefix   string // the handler's path prefix
	ring     *keyring
	logger   *zap.Logger

	mu    sync.Mutex
	cache map[tokenKey]*cachedToken
}

// tokenKey names one session's token for one audience and issuer. The
// session ID is zero for cookie-store sessions; the login time and the
// user tell them apart.
type tokenKey struct {
	id      sessionstore.ID
	created int64
	user    string
	host    string // as sent, with any port: the default aud and iss
	tls     bool   // the default iss's scheme
	mount   string // the default aud's and iss's mount prefix
}

type cachedToken struct {
	token   string
	groups  string // the groups it carries, as forwarded
	kid     string // the key that signed it
	renewAt time.Time
	exp     time.Time
}

// setupAssertion makes the asserter, syncs its keys and keeps them in
// sync until the config is unloaded. A header outside the prefix is
// added to the names stripped from every request.
func (h *Handler) setupAssertion(ctx caddy.Context) error {
	a := h.Assertion
	if a == nil {
		return nil
	}
	if err := a.validate(); err != nil {
		return err
	}
	as := &asserter{
		header:   http.CanonicalHeaderKey(a.Header),
		issuer:   a.Issuer,
		lifetime: time.Duration(a.Lifetime),
		prefix:   h.PathPrefix,
		logger:   h.logger,
		cache:    map[tokenKey]*cachedToken{},
		ring:     &keyring{storage: ctx.Storage(), storageKey: assertionKeysStorageKeyOf(h.Realm), rotateEvery: time.Duration(a.RotateEvery), logger: h.logger},
	}
	if as.header == "" {
		as.header = http.CanonicalHeaderKey(h.HeaderPrefix + "Assertion")
	}
	if as.lifetime == 0 {
		as.lifetime = DefaultAssertionLifetime
	}
	switch len(a.Audience) {
	case 0:
	case 1:
		as.audience = a.Audience[0]
	default:
		as.audience = a.Audience
	}
	if !h.strip.matches(as.header) {
		h.strip.names = append(h.strip.names, normalizeHeaderName(as.header))
	}
	if err := as.ring.sync(ctx, time.Now()); err != nil {
		return err
	}
	go as.ring.run(ctx, as.sweep)
	h.assert = as
	return nil
}

// forwardAssertion puts the session's token in the request to the
// upstream, signing a new one only when the cached one is near its end,
// was signed by a retired key, or names other groups. It reports false,
// and forwards nothing, when the token's default iss or aud needs the
// mount and the mount is not known (see findMount): a token with the
// root's iss and aud would be another app's.
func (h *Handler) forwardAssertion(r *http.Request, s *session) bool {
	as := h.assert
	if as == nil || s.rec.User == "" {
		return true
	}
	key := tokenKey{id: s.id, created: s.rec.Created.UnixNano(), user: s.rec.User, host: r.Host, tls: r.TLS != nil}
	if as.issuer == "" || as.audience == nil {
		var sure bool
		if key.mount, sure = findMount(r); !sure {
			return false
		}
	}
	var groups string
	if s.groups != nil {
		groups = s.groups.header
	}
	now := time.Now()
	_, kid := as.ring.current()
	as.mu.Lock()
	c := as.cache[key]
	as.mu.Unlock()
	if c == nil || !now.Before(c.renewAt) || c.groups != groups || c.kid != kid {
		var err error
		if c, err = as.mint(r, key.mount, s, groups, now); err != nil {
			// No token: the upstream, which requires one, refuses.
			as.logger.Error("signing the assertion", zap.Error(err), zap.String("user", s.rec.User))
			return true
		}
		as.mu.Lock()
		if len(as.cache) >= maxCachedAssertions {
			as.sweepLocked(now)
			if len(as.cache) >= maxCachedAssertions {
				clear(as.cache)
			}
		}
		as.cache[key] = c
		as.mu.Unlock()
	}
	r.Header[as.header] = []string{c.token}
	return true
}

// assertionClaims is the token's payload.
type assertionClaims struct {
	Issuer   string   `json:"iss"`
	Audience any      `json:"aud"`
	Subject  string   `json:"sub"`
	Groups   []string `json:"groups"`
	SID      string   `json:"sid"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
	ID       string   `json:"jti"`
}

func (as *asserter) mint(r *http.Request, mount string, s *session, groups string, now time.Time) (*cachedToken, error) {
	signer, kid := as.ring.current()
	claims := assertionClaims{
		Issuer:   as.issuer,
		Audience: as.audience,
		Subject:  s.rec.User,
		Groups:   []string{},
		SID:      sessionHash(s),
		IssuedAt: now.Unix(),
		Expiry:   now.Add(as.lifetime).Unix(),
		ID:       rand.Text(),
	}
	if claims.Issuer == "" {
		claims.Issuer = requestOrigin(r) + mount + as.prefix
	}
	if claims.Audience == nil {
		claims.Audience = requestHost(r) + mount
	}
	if s.groups != nil {
		claims.Groups = s.groups.names
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return nil, err
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return nil, err
	}
	exp := time.Unix(claims.Expiry, 0)
	return &cachedToken{token: token, groups: groups, kid: kid, renewAt: now.Add(as.lifetime * 4 / 5), exp: exp}, nil
}

// sweep drops expired tokens from the cache.
func (as *asserter) sweep(now time.Time) {
	as.mu.Lock()
	as.sweepLocked(now)
	as.mu.Unlock()
}

func (as *asserter) sweepLocked(now time.Time) {
	for k, c := range as.cache {
		if !now.Before(c.exp) {
			delete(as.cache, k)
		}
	}
}

// sessionHash is the token's sid: it names the session, the same in every
// token of it, without revealing its ID (which is a bearer secret) or
// letting anyone work it out.
func sessionHash(s *session) string {
	sum := sha256.New()
	sum.Write([]byte("edgesession assertion sid\x00"))
	sum.Write(s.id[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(s.rec.Created.UnixNano()))
	sum.Write(b[:])
	for _, v := range []string{s.rec.Site, s.rec.Source, s.rec.User} {
		sum.Write([]byte(v))
		sum.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(sum.Sum(nil)[:16])
}

// requestHost is the host the request was sent to, lower case, without
// the port.
func requestHost(r *http.Request) string {
	host := r.Host
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = hp
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// requestOrigin is the scheme and host the request was sent to.
func requestOrigin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// serveJWKS serves the public keys that verify the assertions.
func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	if h.assert == nil {
		return writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, "GET, HEAD")
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/jwk-set+json")
	hdr.Set("X-Content-Type-Options", "nosniff")
	// Short: a new key signs at once after a rotation. Verifiers should
	// also fetch again when a token names a key they do not have.
	hdr.Set("Cache-Control", "public, max-age=60")
	_, err := w.Write(h.assert.ring.published())
	return err
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
func (s *Handler) unmarshalAssertion(d *caddyfile.Dispenser) error {
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
