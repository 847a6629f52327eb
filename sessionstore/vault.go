package sessionstore

import (
	"bytes"
	"context"
	"errors"
)

// Vault is implemented by stores that keep small values that never expire,
// under names of their own, for every instance that shares the store: the
// second factors a user has enrolled (package mfa). Memory, Bolt and Redis
// implement it; the cookie store keeps nothing on the server and cannot.
//
// Its names are a namespace of their own: no session, claim or index
// entry is ever found, changed or deleted through it, nor the other way
// round, and no session sweep, Lister or UserIndex sees it. Values are
// opaque bytes (their owner encrypts what must not be read from a copy of
// the store).
type Vault interface {
	// VaultGet returns the value stored under name, or nil if there is
	// none. err is only for a store that failed.
	VaultGet(ctx context.Context, name string) (value []byte, err error)

	// VaultSwap stores value under name if what is stored there now is
	// old (nil: nothing), atomically for every instance sharing the
	// store, and reports whether it did. A nil value deletes the name.
	// A caller that lost a race reads again and retries.
	VaultSwap(ctx context.Context, name string, old, value []byte) (swapped bool, err error)
}

// MaxVaultName and MaxVaultValue bound what a Vault keeps: a name of a
// few hundred bytes (a prefix and a user name) and a value of a user's
// credentials (a few passkeys, a TOTP secret, recovery codes).
const (
	MaxVaultName  = 1024
	MaxVaultValue = 64 << 10
)

// ErrVaultTooLarge is returned by VaultSwap for a name or value over the
// bounds.
var ErrVaultTooLarge = errors.New("vault: name or value too large")

func checkVault(name string, value []byte) error {
	if name == "" || len(name) > MaxVaultName || len(value) > MaxVaultValue {
		return ErrVaultTooLarge
	}
	return nil
}

// VaultGet implements Vault.
func (m *Memory) VaultGet(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	v, ok := m.vault[name]
	m.mu.RUnlock()
	if !ok {
		return nil, nil
	}
	return []byte(v), nil
}

// VaultSwap implements Vault.
func (m *Memory) VaultSwap(ctx context.Context, name string, old, value []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := checkVault(name, value); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.vault[name]
	if ok != (old != nil) || ok && !bytes.Equal([]byte(cur), old) {
		return false, nil
	}
	if value == nil {
		delete(m.vault, name)
	} else {
		m.vault[name] = string(value)
	}
	return true, nil
}

var _ Vault = (*Memory)(nil)
