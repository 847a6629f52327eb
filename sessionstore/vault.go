package sessionstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
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

// boltVault is the bucket of the vault: name → value, kept until
// swapped away (no expiry, never swept). It is made by the first write: a
// file whose store never keeps a value keeps its layout. DeleteAll,
// DeleteUser and the sweeper touch only the sessions' and the index's
// buckets.
var boltVault = []byte("vault")

// VaultGet implements Vault.
func (b *Bolt) VaultGet(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var v []byte
	err := b.db.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(boltVault); bk != nil {
			// Only valid inside the transaction: copied out.
			if cur := bk.Get([]byte(name)); cur != nil {
				v = append([]byte{}, cur...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt store: %w", err)
	}
	return v, nil
}

// VaultSwap implements Vault in one write transaction, which bbolt runs
// one at a time: the comparison and the write cannot be split by another
// (one process holds the file).
func (b *Bolt) VaultSwap(ctx context.Context, name string, old, value []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := checkVault(name, value); err != nil {
		return false, err
	}
	swapped := false
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltVault)
		var cur []byte
		if bk != nil {
			cur = bk.Get([]byte(name))
		}
		if (cur != nil) != (old != nil) || cur != nil && !bytes.Equal(cur, old) {
			return nil
		}
		swapped = true
		if value == nil {
			if bk == nil {
				return nil
			}
			return bk.Delete([]byte(name))
		}
		if bk == nil {
			var err error
			if bk, err = tx.CreateBucket(boltVault); err != nil {
				return err
			}
		}
		return bk.Put([]byte(name), value)
	})
	if err != nil {
		return false, fmt.Errorf("bolt store: %w", err)
	}
	return swapped, nil
}

// vaultName is the Redis key a vault name is kept under: a hash of the
// name, so that any name (a user's, with braces or '*') is a plain key of
// fixed length in no chosen Cluster slot, and "vault:" before it, so that
// it is no session name (see isSessionName): no SCAN of sessions
// (DeleteAll, Each), no index and no RedisCache invalidation takes it for
// one. It has no TTL.
func (r *Redis) vaultName(name string) string {
	h := sha256.Sum256([]byte("edgesession vault\x00" + name))
	return r.prefix + "vault:" + hex.EncodeToString(h[:])
}

// redisVaultSwap is VaultSwap as one script, which Redis runs alone: the
// comparison and the write are one step for every client. KEYS[1] the
// name; ARGV[1] "1" if there is an old value, ARGV[2] it; ARGV[3] "1" if
// there is a new value, ARGV[4] it. One key: it runs in a Cluster too. It
// is sent with EVAL, as the index's script is, so that an ACL user needs
// no EVALSHA.
const redisVaultSwap = `
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
	if cur == false or cur ~= ARGV[2] then return 0 end
elseif cur ~= false then
	return 0
end
if ARGV[3] == '1' then
	redis.call('SET', KEYS[1], ARGV[4])
else
	redis.call('DEL', KEYS[1])
end
return 1`

// VaultGet implements Vault.
func (r *Redis) VaultGet(ctx context.Context, name string) ([]byte, error) {
	v, err := r.client.Get(ctx, r.vaultName(name)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, redisErr(err)
	}
	if v == nil {
		v = []byte{} // an empty value is a value
	}
	return v, nil
}

// VaultSwap implements Vault with one script (redisVaultSwap).
func (r *Redis) VaultSwap(ctx context.Context, name string, old, value []byte) (bool, error) {
	if err := checkVault(name, value); err != nil {
		return false, err
	}
	flag := func(b []byte) string {
		if b == nil {
			return "0"
		}
		return "1"
	}
	n, err := r.client.Eval(ctx, redisVaultSwap, []string{r.vaultName(name)}, flag(old), old, flag(value), value).Int()
	if err != nil {
		return false, redisErr(err)
	}
	return n == 1, nil
}

// RedisCache passes VaultGet and VaultSwap through to Redis (its embedded
// *Redis): a vault value is never kept in local memory, since another
// instance may swap it at any moment and a stale copy would make a
// compare-and-swap fail or a removed credential count.

var (
	_ Vault = (*Memory)(nil)
	_ Vault = (*Bolt)(nil)
	_ Vault = (*Redis)(nil)
	_ Vault = (*RedisCache)(nil)
)
