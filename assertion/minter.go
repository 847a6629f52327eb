package assertion

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"time"
)

// Bounds of a token's lifetime and of the rotation.
const (
	DefaultLifetime = 5 * time.Minute
	MinLifetime     = 30 * time.Second
	MaxLifetime     = time.Hour
	MinRotation     = time.Minute
)

// maxCached bounds the token cache; past it the cache starts afresh (each
// session then signs once more).
const maxCached = 100_000

// Minter mints and caches the tokens of one handler.
type Minter struct {
	issuer   string // "" for the request's origin, mount and prefix
	audience any    // nil for the request's host and mount, else string or []string
	lifetime time.Duration
	prefix   string // the handler's path prefix, the end of the default iss
	ring     *Keyring

	mu    sync.Mutex
	cache map[Key]*cachedToken
}

// NewMinter returns a Minter that signs with ring. An empty issuer or
// audience is the default one, made of the Key's host and mount (see
// Minter.Token); lifetime 0 is DefaultLifetime. prefix is the handler's
// path prefix: the default issuer ends with it, so that <iss>/jwks.json
// has the keys.
func NewMinter(ring *Keyring, issuer string, audience []string, lifetime time.Duration, prefix string) *Minter {
	m := &Minter{issuer: issuer, lifetime: lifetime, prefix: prefix, ring: ring, cache: map[Key]*cachedToken{}}
	if m.lifetime == 0 {
		m.lifetime = DefaultLifetime
	}
	switch len(audience) {
	case 0:
	case 1:
		m.audience = audience[0]
	default:
		m.audience = audience
	}
	return m
}

// UsesMount reports whether a token's iss or aud is the default one,
// which carries Key.Mount: the caller must then know the mount, since a
// token with the root's iss and aud would be another app's.
func (m *Minter) UsesMount() bool {
	return m.issuer == "" || m.audience == nil
}

// Key names one session's token for one audience and issuer.
type Key struct {
	// Session is the session's ID, zero for sessions kept in the cookie:
	// Created and User tell those apart.
	Session [32]byte
	Created int64  // when the session began, in Unix nanoseconds
	User    string // the token's sub
	Host    string // as sent, with any port: the default aud and iss
	TLS     bool   // the default iss's scheme
	Mount   string // the default aud's and iss's mount prefix
}

// Subject is what a token says besides its Key.
type Subject struct {
	// Site and Source, with the Key's Session, Created and User, make the
	// sid.
	Site, Source string
	// Groups are the token's groups; GroupsKey names them (the groups as
	// forwarded): a token is signed again when it changes.
	Groups    []string
	GroupsKey string
	// Amr is how the user proved who they are (RFC 8176), space
	// separated as forwarded ("pwd otp mfa"): the token's amr claim, a
	// list (left out when empty). A token is signed again when it
	// changes.
	Amr string
}

type cachedToken struct {
	token   string
	groups  string // Subject.GroupsKey
	amr     string // Subject.Amr
	kid     string // the key that signed it
	renewAt time.Time
	exp     time.Time
}

// claims is the token's payload.
type claims struct {
	Issuer   string   `json:"iss"`
	Audience any      `json:"aud"`
	Subject  string   `json:"sub"`
	Groups   []string `json:"groups"`
	Amr      []string `json:"amr,omitempty"` // as OpenID Connect's ID token
	SID      string   `json:"sid"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
	ID       string   `json:"jti"`
}

// Token returns the token of key, signing a new one only when the cached
// one is near its end, was signed by a retired key, or names other
// groups.
func (m *Minter) Token(key Key, sub Subject, now time.Time) (string, error) {
	_, kid := m.ring.current()
	m.mu.Lock()
	c := m.cache[key]
	m.mu.Unlock()
	if c != nil && now.Before(c.renewAt) && c.groups == sub.GroupsKey && c.amr == sub.Amr && c.kid == kid {
		return c.token, nil
	}
	c, err := m.mint(key, sub, now)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	if len(m.cache) >= maxCached {
		m.sweepLocked(now)
		if len(m.cache) >= maxCached {
			clear(m.cache)
		}
	}
	m.cache[key] = c
	m.mu.Unlock()
	return c.token, nil
}

func (m *Minter) mint(key Key, sub Subject, now time.Time) (*cachedToken, error) {
	signer, kid := m.ring.current()
	cl := claims{
		Issuer:   m.issuer,
		Audience: m.audience,
		Subject:  key.User,
		Groups:   []string{},
		SID:      sessionHash(key, sub),
		IssuedAt: now.Unix(),
		Expiry:   now.Add(m.lifetime).Unix(),
		ID:       rand.Text(),
	}
	if cl.Issuer == "" {
		cl.Issuer = origin(key) + key.Mount + m.prefix
	}
	if cl.Audience == nil {
		cl.Audience = hostname(key.Host) + key.Mount
	}
	if sub.Groups != nil {
		cl.Groups = sub.Groups
	}
	cl.Amr = strings.Fields(sub.Amr)
	payload, err := json.Marshal(cl)
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
	exp := time.Unix(cl.Expiry, 0)
	return &cachedToken{token: token, groups: sub.GroupsKey, amr: sub.Amr, kid: kid, renewAt: now.Add(m.lifetime * 4 / 5), exp: exp}, nil
}

// Sweep drops expired tokens from the cache.
func (m *Minter) Sweep(now time.Time) {
	m.mu.Lock()
	m.sweepLocked(now)
	m.mu.Unlock()
}

func (m *Minter) sweepLocked(now time.Time) {
	for k, c := range m.cache {
		if !now.Before(c.exp) {
			delete(m.cache, k)
		}
	}
}

// sessionHash is the token's sid: it names the session, the same in every
// token of it, without revealing its ID (which is a bearer secret) or
// letting anyone work it out.
func sessionHash(key Key, sub Subject) string {
	sum := sha256.New()
	sum.Write([]byte("edgesession assertion sid\x00"))
	sum.Write(key.Session[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(key.Created))
	sum.Write(b[:])
	for _, v := range []string{sub.Site, sub.Source, key.User} {
		sum.Write([]byte(v))
		sum.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(sum.Sum(nil)[:16])
}

// hostname is the host a request was sent to, lower case, without the
// port.
func hostname(host string) string {
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = hp
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// origin is the scheme and host a request was sent to.
func origin(key Key) string {
	if key.TLS {
		return "https://" + key.Host
	}
	return "http://" + key.Host
}
