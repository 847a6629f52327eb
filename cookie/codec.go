package cookie

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/edgesession/edgesession/sessionstore"
)

// MaxBytes is what browsers keep of one cookie, name and value.
const MaxBytes = 4096

// Codec signs and encrypts cookie values with gorilla/securecookie.
// Each secret yields one codec; the first encodes, all decode.
type Codec struct {
	name   string
	codecs []securecookie.Codec
	cache  decodeCache
}

// NewCodec derives an HMAC-SHA256 key and an AES-256 key from each
// secret with HKDF-SHA256, for the realm (no realm: the keys of before
// realms existed). maxAge bounds the age of any cookie it accepts.
func NewCodec(name, realm string, secrets [][]byte, maxAge time.Duration) (*Codec, error) {
	return NewPurposeCodec("edgesession cookie", name, realm, secrets, maxAge)
}

// NewPurposeCodec is NewCodec for cookies of another purpose: keys
// derived with HKDF info "<purpose> hmac-sha256" and "<purpose> aes-256"
// (and the realm), so that no cookie of one purpose decodes as another.
func NewPurposeCodec(purpose, name, realm string, secrets [][]byte, maxAge time.Duration) (*Codec, error) {
	c := &Codec{name: name}
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
		sc.MaxLength(MaxBytes - len(name) - 1)
		c.codecs = append(c.codecs, sc)
	}
	if len(c.codecs) == 0 {
		return nil, fmt.Errorf("no secret for the session cookie")
	}
	return c, nil
}

// Encode signs and encrypts b for a cookie value; a value longer than a
// browser keeps is sessionstore.ErrTooLarge.
func (c *Codec) Encode(b []byte) (string, error) {
	// securecookie encrypts in place: give it a copy, so b is left as it was.
	v, err := securecookie.EncodeMulti(c.name, bytes.Clone(b), c.codecs...)
	if err != nil {
		return "", fmt.Errorf("%w: %v", sessionstore.ErrTooLarge, err)
	}
	return v, nil
}

// Decode verifies and decrypts a cookie value. The result must not be
// modified: it may be shared with other requests through the cache.
func (c *Codec) Decode(v string) ([]byte, error) {
	if b, ok := c.cache.get(v, time.Now()); ok {
		return b, nil
	}
	b, err := c.Verify(v)
	if err != nil {
		return nil, err
	}
	c.cache.put(v, b, time.Now())
	return b, nil
}

// Verify is Decode without the cache.
func (c *Codec) Verify(v string) ([]byte, error) {
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
