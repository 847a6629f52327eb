package assertion

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// defaultStorageKey is where the signing keys of the handlers without a
// realm are kept in Caddy's storage, next to the generated secret. Every
// such handler (and every Caddy sharing the storage) signs with the same
// keys. Deleting it and reloading with --force drops every key at once,
// for a key that may have leaked.
const defaultStorageKey = "edgesession/assertion-keys.json"

// StorageKey is where the signing keys of realm are kept in Caddy's
// storage: each realm signs with keys of its own, so that a token of one
// realm verifies with no other realm's JWKS. The handlers without a realm
// keep the keys they had before realms had keys of their own.
func StorageKey(realm string) string {
	if realm == "" {
		return defaultStorageKey
	}
	return "edgesession/assertion-keys-realm-" + realm + ".json"
}

// Keyring is the signing keys of one realm: the active one signs, all are
// published (JWKS). It follows the keys in storage, so that a rotation by
// one handler or one instance reaches the others.
type Keyring struct {
	storage     certmagic.Storage
	storageKey  string        // where in storage: StorageKey
	rotateEvery time.Duration // 0: never
	logger      *zap.Logger

	mu     sync.RWMutex
	signer jose.Signer
	kid    string
	jwks   []byte // the public keys, as served
	loaded []byte // what storage held, to skip unchanged reloads
}

// NewKeyring returns the keyring of realm kept in storage, which makes a
// new signing key when the current one is rotateEvery old (0: never). It
// holds no key until Sync.
func NewKeyring(storage certmagic.Storage, realm string, rotateEvery time.Duration, logger *zap.Logger) *Keyring {
	return &Keyring{storage: storage, storageKey: StorageKey(realm), rotateEvery: rotateEvery, logger: logger}
}

// syncEvery is how often a keyring looks at storage again, and rotates
// the key when it is due.
const syncEvery = time.Minute

// retiredKeyKept is how long a key stays published after it stopped
// signing: longer than any token it signed lives (MaxLifetime), plus the
// time other instances take to notice the rotation.
const retiredKeyKept = MaxLifetime + 2*syncEvery + time.Minute

// storedKeys is the keyring as kept in storage.
type storedKeys struct {
	Keys []storedKey `json:"keys"`
}

type storedKey struct {
	JWK     jose.JSONWebKey `json:"jwk"` // the private key
	Created time.Time       `json:"created"`
	Retired time.Time       `json:"retired,omitzero"` // zero while it signs
}

// Sync brings the keyring up to date with storage, generating the first
// key, rotating a key that is due and dropping keys whose tokens have all
// expired; changes are made under the storage lock.
func (k *Keyring) Sync(ctx context.Context, now time.Time) error {
	b, err := k.storage.Load(ctx, k.storageKey)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("loading the assertion keys: %w", err)
	}
	var keys storedKeys
	if err == nil {
		if err := json.Unmarshal(b, &keys); err != nil {
			return fmt.Errorf("reading the assertion keys in storage (%s): %w", k.storageKey, err)
		}
	}
	if k.due(keys, now) {
		if err := k.storage.Lock(ctx, k.storageKey); err != nil {
			return fmt.Errorf("locking the assertion keys: %w", err)
		}
		defer k.storage.Unlock(ctx, k.storageKey)
		// Another instance may have changed them meanwhile.
		keys = storedKeys{}
		b, err = k.storage.Load(ctx, k.storageKey)
		if err == nil {
			err = json.Unmarshal(b, &keys)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("loading the assertion keys: %w", err)
		}
		if b, err = k.change(&keys, now); err != nil {
			return err
		}
		if err := k.storage.Store(ctx, k.storageKey, b); err != nil {
			return fmt.Errorf("storing the assertion keys: %w", err)
		}
	}
	return k.use(keys, b)
}

// due reports whether keys need a change: a first key, a rotation, or a
// retired key to drop.
func (k *Keyring) due(keys storedKeys, now time.Time) bool {
	active := activeKey(keys)
	if active == nil {
		return true
	}
	if k.rotateEvery > 0 && now.Sub(active.Created) >= k.rotateEvery {
		return true
	}
	for _, sk := range keys.Keys {
		if !sk.Retired.IsZero() && now.Sub(sk.Retired) > retiredKeyKept {
			return true
		}
	}
	return false
}

// change makes the changes due and returns the keys to store.
func (k *Keyring) change(keys *storedKeys, now time.Time) ([]byte, error) {
	active := activeKey(*keys)
	if active != nil && k.rotateEvery > 0 && now.Sub(active.Created) >= k.rotateEvery {
		active.Retired = now
		active = nil
	}
	kept := keys.Keys[:0]
	for _, sk := range keys.Keys {
		if sk.Retired.IsZero() || now.Sub(sk.Retired) <= retiredKeyKept {
			kept = append(kept, sk)
		}
	}
	keys.Keys = kept
	if active == nil {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		jwk := jose.JSONWebKey{Key: priv, Algorithm: string(jose.ES256), Use: "sig"}
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, err
		}
		jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
		keys.Keys = append(keys.Keys, storedKey{JWK: jwk, Created: now})
		k.logger.Info("generated an assertion signing key and stored it in Caddy's storage",
			zap.String("kid", jwk.KeyID), zap.String("key", k.storageKey))
	}
	return json.Marshal(keys)
}

// activeKey is the newest key that has not been retired.
func activeKey(keys storedKeys) *storedKey {
	var active *storedKey
	for i := range keys.Keys {
		sk := &keys.Keys[i]
		if sk.Retired.IsZero() && sk.JWK.Valid() && !sk.JWK.IsPublic() && (active == nil || sk.Created.After(active.Created)) {
			active = sk
		}
	}
	return active
}

// use makes keys the keyring's: the active one signs, all are published.
func (k *Keyring) use(keys storedKeys, raw []byte) error {
	k.mu.RLock()
	same := k.signer != nil && string(raw) == string(k.loaded)
	k.mu.RUnlock()
	if same {
		return nil
	}
	active := activeKey(keys)
	if active == nil {
		return errors.New("the assertion keys in storage have no signing key")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: active.JWK},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return fmt.Errorf("assertion signing key: %w", err)
	}
	var set jose.JSONWebKeySet
	for _, sk := range keys.Keys {
		set.Keys = append(set.Keys, sk.JWK.Public())
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.signer, k.kid, k.jwks, k.loaded = signer, active.JWK.KeyID, jwks, raw
	k.mu.Unlock()
	return nil
}

// Run syncs the keyring every minute until ctx is done, calling tick
// after each sync.
func (k *Keyring) Run(ctx context.Context, tick func(now time.Time)) {
	t := time.NewTicker(syncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := k.Sync(ctx, now); err != nil && ctx.Err() == nil {
				k.logger.Error("assertion keys", zap.Error(err))
			}
			tick(now)
		}
	}
}

// current returns the signer and its key ID.
func (k *Keyring) current() (jose.Signer, string) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.signer, k.kid
}

// JWKS returns the JSON Web Key Set that publishes the public keys, as
// served at <path_prefix>/jwks.json. The caller must not change it.
func (k *Keyring) JWKS() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}
