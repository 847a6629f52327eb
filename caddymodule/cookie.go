package caddymodule

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"iter"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/gorilla/securecookie"

	"github.com/edgesession/edgesession/sessionstore"
)

// Cookie is the session cookie's name and attributes.
type Cookie struct {
	// Name of the cookie. Default "caddy_session".
	Name string `json:"name,omitempty"`
	// Domain attribute. Default none: the cookie is host-only.
	Domain string `json:"domain,omitempty"`
	// Path attribute. Default "/".
	Path string `json:"path,omitempty"`
	// Secure is "auto" (the default: Secure when the request came over
	// TLS), "always" or "never".
	Secure string `json:"secure,omitempty"`
	// SameSite is "lax" (the default), "strict" or "none". "none" needs
	// Secure, so with it the cookie is always Secure.
	SameSite string `json:"same_site,omitempty"`
	// Persist makes the cookie outlive the browser session: its Max-Age
	// is the session's remaining lifetime. Default false.
	Persist bool `json:"persist,omitempty"`
}

func (c Cookie) validate() error {
	if c.Name == "" || strings.ContainsFunc(c.Name, func(r rune) bool { return !isTokenChar(r) }) {
		return fmt.Errorf("cookie name %q: not a valid cookie name", c.Name)
	}
	switch c.Secure {
	case "", "auto", "always", "never":
	default:
		return fmt.Errorf("cookie secure %q: want auto, always or never", c.Secure)
	}
	switch c.SameSite {
	case "", "lax", "strict":
	case "none":
		if c.Secure == "never" {
			return fmt.Errorf("cookie same_site none needs a Secure cookie; secure never contradicts it")
		}
	default:
		return fmt.Errorf("cookie same_site %q: want lax, strict or none", c.SameSite)
	}
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, ";\r\n") {
		return fmt.Errorf("cookie path %q: must start with /", c.Path)
	}
	if strings.ContainsAny(c.Domain, "; \r\n") {
		return fmt.Errorf("cookie domain %q: not a domain", c.Domain)
	}
	// The rules of the name prefixes, which browsers match without regard
	// to case: a __Secure- cookie must be Secure; a __Host- one also has
	// path / and no domain.
	switch host := hasPrefixFold(c.Name, "__Host-"); {
	case c.securePrefixed() && c.Secure == "never":
		return fmt.Errorf("cookie name %q: the name makes browsers require a Secure cookie; secure never contradicts it", c.Name)
	case host && c.Domain != "":
		return fmt.Errorf("cookie name %q: a __Host- cookie cannot have a domain", c.Name)
	case host && c.Path != "/":
		return fmt.Errorf("cookie name %q: a __Host- cookie must have path /", c.Name)
	}
	return nil
}

// securePrefixed reports whether the name is one browsers accept only with
// Secure: __Secure-… or __Host-…, in any case.
func (c Cookie) securePrefixed() bool {
	return hasPrefixFold(c.Name, "__Host-") || hasPrefixFold(c.Name, "__Secure-")
}

// alwaysSecure reports whether the cookie must carry Secure whatever the
// request: browsers refuse a __Host- or __Secure- cookie without it, and
// one with SameSite=None.
func (c Cookie) alwaysSecure() bool {
	return c.Secure == "always" || c.SameSite == "none" || c.securePrefixed()
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// maxCookieBytes is what browsers keep of one cookie, name and value.
const maxCookieBytes = 4096

// cookieCodec signs and encrypts cookie values with gorilla/securecookie.
// Each secret yields one codec; the first encodes, all decode.
type cookieCodec struct {
	name   string
	codecs []securecookie.Codec
	cache  decodeCache
}

// newCookieCodec derives an HMAC-SHA256 key and an AES-256 key from each
// secret with HKDF-SHA256, for the realm (no realm: the keys of before
// realms existed). maxAge bounds the age of any cookie it accepts.
func newCookieCodec(name, realm string, secrets [][]byte, maxAge time.Duration) (*cookieCodec, error) {
	return newPurposeCodec("edgesession cookie", name, realm, secrets, maxAge)
}

// newPurposeCodec is newCookieCodec for cookies of another purpose: keys
// derived with HKDF info "<purpose> hmac-sha256" and "<purpose> aes-256"
// (and the realm), so that no cookie of one purpose decodes as another.
func newPurposeCodec(purpose, name, realm string, secrets [][]byte, maxAge time.Duration) (*cookieCodec, error) {
	c := &cookieCodec{name: name}
	info := ""
	if realm != "" {
		info = " realm " + realm
	}
	for _, secret := range secrets {
		hashKey, err := hkdf.Key(sha256.New, secret, nil, purpose+" hmac-sha256"+info, 32)
		if err != nil {
			return nil, err
		}
		blockKey, err := hkdf.Key(sha256.New, secret, nil, purpose+" aes-256"+info, 32)
		if err != nil {
			return nil, err
		}
		sc := securecookie.New(hashKey, blockKey)
		sc.SetSerializer(securecookie.NopEncoder{})
		sc.MaxAge(int((maxAge + time.Second - 1) / time.Second))
		sc.MaxLength(maxCookieBytes - len(name) - 1)
		c.codecs = append(c.codecs, sc)
	}
	if len(c.codecs) == 0 {
		return nil, fmt.Errorf("no secret for the session cookie")
	}
	return c, nil
}

func (c *cookieCodec) encode(b []byte) (string, error) {
	// securecookie encrypts in place: give it a copy, so b is left as it was.
	v, err := securecookie.EncodeMulti(c.name, bytes.Clone(b), c.codecs...)
	if err != nil {
		return "", fmt.Errorf("%w: %v", sessionstore.ErrTooLarge, err)
	}
	return v, nil
}

// decode verifies and decrypts a cookie value. The result must not be
// modified: it may be shared with other requests through the cache.
func (c *cookieCodec) decode(v string) ([]byte, error) {
	if b, ok := c.cache.get(v, time.Now()); ok {
		return b, nil
	}
	b, err := c.verify(v)
	if err != nil {
		return nil, err
	}
	c.cache.put(v, b, time.Now())
	return b, nil
}

// verify is decode without the cache.
func (c *cookieCodec) verify(v string) ([]byte, error) {
	var b []byte
	if err := securecookie.DecodeMulti(c.name, v, &b, c.codecs...); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeCache remembers cookie values that verified, so that the requests
// of one session pay for HMAC and AES once a minute instead of every time.
// It is keyed by the whole value: only a value that was verified can hit.
// What a value names is still looked up and checked every time (store,
// expiry), so a hit grants nothing a fresh decode would not.
type decodeCache struct {
	mu      sync.RWMutex
	entries map[string]decoded
}

type decoded struct {
	plain []byte
	until time.Time
}

const (
	decodeCacheSize = 16384
	decodeCacheTTL  = time.Minute
)

func (dc *decodeCache) get(v string, now time.Time) ([]byte, bool) {
	dc.mu.RLock()
	e, ok := dc.entries[v]
	dc.mu.RUnlock()
	if !ok || now.After(e.until) {
		return nil, false
	}
	return e.plain, true
}

func (dc *decodeCache) put(v string, plain []byte, now time.Time) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.entries == nil {
		dc.entries = make(map[string]decoded)
	}
	if len(dc.entries) >= decodeCacheSize {
		// Drop expired entries, or else some: map order is random.
		dropped := 0
		for k, e := range dc.entries {
			if now.After(e.until) || dropped < decodeCacheSize/16 {
				delete(dc.entries, k)
				dropped++
			}
		}
	}
	dc.entries[v] = decoded{plain: plain, until: now.Add(decodeCacheTTL)}
}

// setCookie sets the session cookie: the signed, encrypted ID, or in
// cookie mode the whole record.
func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, id sessionstore.ID, rec sessionstore.Record) error {
	var plain []byte
	if h.store == nil {
		var err error
		if plain, err = rec.MarshalBinary(); err != nil {
			return err
		}
	} else {
		plain = id[:]
	}
	value, err := h.codec.encode(plain)
	if err != nil {
		return err
	}
	c := h.cookie(r, value)
	if h.Cookie.Persist {
		c.MaxAge = int(time.Until(rec.Created.Add(h.lifetime)).Seconds())
		if c.MaxAge <= 0 {
			c.MaxAge = -1
		}
	}
	replaceSetCookie(w.Header(), h.Cookie.Name, c.String())
	return nil
}

// expireCookie tells the browser to drop the session cookie.
func (h *Handler) expireCookie(w http.ResponseWriter, r *http.Request) {
	c := h.cookie(r, "")
	c.MaxAge = -1
	replaceSetCookie(w.Header(), h.Cookie.Name, c.String())
}

func (h *Handler) cookie(r *http.Request, value string) *http.Cookie {
	c := &http.Cookie{
		Name:     h.Cookie.Name,
		Value:    value,
		Path:     h.Cookie.Path,
		Domain:   h.Cookie.Domain,
		HttpOnly: true,
		Secure:   h.Cookie.alwaysSecure() || (h.Cookie.Secure != "never" && cameOverHTTPS(r)),
		SameSite: http.SameSiteLaxMode,
	}
	switch h.Cookie.SameSite {
	case "strict":
		c.SameSite = http.SameSiteStrictMode
	case "none":
		c.SameSite = http.SameSiteNoneMode
	}
	return c
}

// cameOverHTTPS reports whether the client used TLS: to Caddy, or to a
// proxy in Caddy's trusted_proxies that says so in X-Forwarded-Proto (a
// TLS-terminating load balancer).
func cameOverHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return trusted && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// replaceSetCookie adds a Set-Cookie line for name, dropping any earlier
// one for the same name, so a response sets the cookie once.
func replaceSetCookie(h http.Header, name, line string) {
	lines := h["Set-Cookie"]
	kept := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(l, name+"=") {
			kept = append(kept, l)
		}
	}
	h["Set-Cookie"] = append(kept, line)
}

// cookieValues returns the values of every cookie called name in the
// request, in order. (A browser may send two: one host-only, one for a
// parent domain.)
func cookieValues(r *http.Request, name string) []string {
	return slices.Collect(eachCookie(r, name))
}

// eachCookie yields the values of every cookie called name in the request,
// in order, without collecting them.
func eachCookie(r *http.Request, name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, line := range r.Header["Cookie"] {
			for part := range strings.SplitSeq(line, ";") {
				if n, v := cutCookie(part); n == name {
					if v = strings.Trim(v, `"`); v != "" && !yield(v) {
						return
					}
				}
			}
		}
	}
}

// removeCookie removes the cookie called name from the Cookie header and
// keeps every other cookie as it was sent, "; " between them. Lines
// without that cookie are kept as they are; each line that had it costs
// one allocation. A changed line is written in place: the header map is
// written to only when a line is gone.
func removeCookie(h http.Header, name string) {
	lines, ok := h["Cookie"]
	if !ok {
		return
	}
	kept := 0
	for _, line := range lines {
		if out, _ := withoutCookie(line, name); out != "" || line == "" {
			lines[kept] = out
			kept++
		}
	}
	switch {
	case kept == len(lines):
	case kept == 0:
		delete(h, "Cookie")
	default:
		clear(lines[kept:])
		h["Cookie"] = lines[:kept]
	}
}

// withoutCookie returns a line that mentions name rebuilt without the
// cookies called name and without empty parts (changed), and any other
// line as it is.
func withoutCookie(line, name string) (out string, changed bool) {
	if !strings.Contains(line, name) {
		return line, false
	}
	var b strings.Builder
	for part := range strings.SplitSeq(line, ";") {
		if n, _ := cutCookie(part); n == name || n == "" {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(line))
		} else {
			b.WriteString("; ")
		}
		b.WriteString(textproto.TrimString(part))
	}
	return b.String(), true
}

// cutCookie splits one "name=value" part of a Cookie header the way
// net/http reads it: HTTP whitespace trimmed around both, so that
// "caddy_session =x" is the session cookie here as it is to a Go upstream.
func cutCookie(part string) (name, value string) {
	name, value, _ = strings.Cut(textproto.TrimString(part), "=")
	return textproto.TrimString(name), textproto.TrimString(value)
}

func isTokenChar(r rune) bool {
	return r > ' ' && r < 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?={}`, r)
}
