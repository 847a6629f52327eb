package mfa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/edgesession/edgesession/sessionstore"
)

// Credentials are one user's enrolled second factors, as kept in the vault
// (JSON, under vaultName(user)).
type Credentials struct {
	// Handle is the user's WebAuthn user handle: 32 random bytes, made
	// at the first passkey and kept while the user has any, so that a
	// discoverable passkey names the user without naming them (the
	// vault maps it back: handleName).
	Handle []byte `json:"handle,omitempty"`
	// TOTP is the enrolled authenticator, if any.
	TOTP *TOTP `json:"totp,omitempty"`
	// Passkeys are the user's WebAuthn credentials.
	Passkeys []Passkey `json:"passkeys,omitempty"`
	// Recovery are the unused one-time recovery codes, hashed.
	Recovery []Recovery `json:"recovery,omitempty"`
}

// Enrolled reports whether c holds any second factor (recovery codes
// alone are none: they are a way back to one).
func (c *Credentials) Enrolled() bool { return c != nil && (c.TOTP != nil || len(c.Passkeys) > 0) }

// TOTP is an enrolled RFC 6238 authenticator.
type TOTP struct {
	// Sealed is the secret, encrypted with a key derived from the
	// handler's secret and bound to the user (see Sealer).
	Sealed  []byte    `json:"sealed"`
	Created time.Time `json:"created"`
}

// Passkey is one enrolled WebAuthn credential.
type Passkey struct {
	// Name is what the user called it (or the browser's description).
	Name       string              `json:"name"`
	Created    time.Time           `json:"created"`
	LastUsed   time.Time           `json:"last_used,omitzero"`
	Credential webauthn.Credential `json:"credential"`
}

// Recovery is one unused recovery code, as a keyed hash of it.
type Recovery struct {
	Hash []byte `json:"hash"`
}

// vaultName is where a user's credentials are kept in the vault; the
// prefix keeps them apart from anything else a vault may hold.
func vaultName(user string) string { return "mfa/user/" + user }

// handleName maps a WebAuthn user handle back to its user.
func handleName(handle []byte) string { return fmt.Sprintf("mfa/handle/%x", handle) }

// Store keeps users' credentials in a vault.
type Store struct {
	Vault sessionstore.Vault
}

// ErrConflict is returned by Update when the credentials kept changing
// under it (many writers at once): nothing was written.
var ErrConflict = errors.New("mfa: credentials changed too often meanwhile")

// Load returns user's credentials, or nil if they have none. An error is
// only for a store that failed or a value that cannot be read.
func (s *Store) Load(ctx context.Context, user string) (*Credentials, error) {
	c, _, err := s.load(ctx, user)
	return c, err
}

func (s *Store) load(ctx context.Context, user string) (*Credentials, []byte, error) {
	raw, err := s.Vault.VaultGet(ctx, vaultName(user))
	if err != nil || raw == nil {
		return nil, raw, err
	}
	c := new(Credentials)
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, raw, fmt.Errorf("mfa: credentials of %q: %w", user, err)
	}
	return c, raw, nil
}

// Update applies fn to user's credentials (nil for none; fn may set *c to
// nil to remove them all) and writes the result, atomically for every
// instance sharing the vault: if they changed meanwhile, fn is applied
// again to what is there now. An error from fn is returned as it is, and
// nothing is written. It returns the credentials as written.
func (s *Store) Update(ctx context.Context, user string, fn func(c **Credentials) error) (*Credentials, error) {
	for range 16 {
		c, old, err := s.load(ctx, user)
		if err != nil {
			return nil, err
		}
		if err := fn(&c); err != nil {
			return nil, err
		}
		var value []byte
		if c != nil && (c.Enrolled() || len(c.Recovery) > 0 || len(c.Handle) > 0) {
			if value, err = json.Marshal(c); err != nil {
				return nil, err
			}
		}
		if old == nil && value == nil {
			return nil, nil
		}
		ok, err := s.Vault.VaultSwap(ctx, vaultName(user), old, value)
		if err != nil {
			return nil, err
		}
		if ok {
			return c, nil
		}
	}
	return nil, ErrConflict
}
