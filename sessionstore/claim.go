package sessionstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
)

// Claimer is implemented by stores that remember that something was used
// once, for every instance that shares the store: a logout token's jti, a
// one-time code. Memory, Bolt and Redis implement it; the cookie store
// keeps nothing on the server and cannot (its users fall back to a memory
// store of their own, which holds in one process only).
//
// A claim is named by a Key, a hash (see ClaimKey): the store never holds
// what was used, so a copy of the store yields no code and no token.
// Claims are a namespace of their own: a claim never finds, changes or
// deletes a session stored under the same Key, nor the other way round.
type Claimer interface {
	// Claim marks key as used until the time until, and reports whether
	// this call was the one to mark it: true for the first call, false
	// for every later one (on any instance sharing the store) until until
	// has passed, after which key may be claimed again. An until that is
	// not in the future claims nothing and reports false: what cannot be
	// held is not granted. err is only for a store that failed, and then
	// the caller must treat key as not claimed by it.
	Claim(ctx context.Context, key Key, until time.Time) (claimed bool, err error)

	// Release forgets a claim before its time, so that key can be claimed
	// again: for a use that could not be completed (the store failed
	// after the claim), which its sender will retry. Releasing a key that
	// is not claimed is not an error.
	Release(ctx context.Context, key Key) error
}

// ClaimKey returns the key that a claim on the given parts is kept under:
// a SHA-256 hash of purpose and parts, each length-prefixed, so that no two
// (purpose, parts) share a key and no claim shares a session's key space.
func ClaimKey(purpose string, parts ...string) Key {
	b := make([]byte, 0, 64)
	b = append(b, claimKeyDomain...)
	for _, s := range append([]string{purpose}, parts...) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return Key(sha256.Sum256(b))
}

const claimKeyDomain = "edgesession claim\x00"

// Claim implements Claimer.
func (m *Memory) Claim(ctx context.Context, key Key, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := time.Now().UnixNano()
	end := until.UnixNano()
	if end <= now {
		return false, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if held, ok := m.claims[key]; ok && held > now {
		return false, nil
	}
	m.claims[key] = end
	return true, nil
}

// Release implements Claimer.
func (m *Memory) Release(ctx context.Context, key Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.claims, key)
	m.mu.Unlock()
	return nil
}

// boltClaims is the bucket of claims: Key → until (8 bytes, big-endian
// Unix nanoseconds). It is made by the first claim: a file whose store
// never claims keeps its layout (and Find its cost).
var boltClaims = []byte("claims")

// Claim implements Claimer in one write transaction.
func (b *Bolt) Claim(ctx context.Context, key Key, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := time.Now()
	if !until.After(now) {
		return false, nil
	}
	claimed := false
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(boltClaims)
		if err != nil {
			return err
		}
		if v := bk.Get(key[:]); len(v) >= 8 && !boltExpired(v, now) {
			return nil
		}
		claimed = true
		return bk.Put(key[:], binary.BigEndian.AppendUint64(nil, uint64(until.UnixNano())))
	})
	if err != nil {
		return false, fmt.Errorf("bolt store: %w", err)
	}
	return claimed, nil
}

// Release implements Claimer.
func (b *Bolt) Release(ctx context.Context, key Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(boltClaims); bk != nil {
			return bk.Delete(key[:])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt store: %w", err)
	}
	return nil
}

// sweepClaims deletes the claims whose time has passed.
func (b *Bolt) sweepClaims(now time.Time) error {
	var expired [][]byte
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltClaims)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			if len(v) < 8 || boltExpired(v, now) {
				expired = append(expired, append([]byte(nil), k...))
			}
			return nil
		})
	})
	if err != nil || len(expired) == 0 {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltClaims)
		for _, k := range expired {
			if v := bk.Get(k); v != nil && (len(v) < 8 || boltExpired(v, now)) {
				if err := bk.Delete(k); err != nil {
					return err
				}
			}
		}
		if k, _ := bk.Cursor().First(); k == nil {
			return tx.DeleteBucket(boltClaims) // the file's layout as before
		}
		return nil
	})
}

// claimName is the Redis key a claim is kept under: it is no session
// name (see isSessionName), so no SCAN of sessions and no cache sees it.
func (r *Redis) claimName(key Key) string { return r.prefix + "claim:" + key.String() }

// Claim implements Claimer with SET NX PX: Redis decides which of the
// instances that claim at once is first, and forgets the claim by itself.
func (r *Redis) Claim(ctx context.Context, key Key, until time.Time) (bool, error) {
	ttl := time.Until(until)
	if ttl <= 0 {
		return false, nil
	}
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond) // PX is in whole ms: round up
	err := r.client.SetArgs(ctx, r.claimName(key), "", redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil // NX: it was there
	}
	if err != nil {
		return false, redisErr(err)
	}
	return true, nil
}

// Release implements Claimer.
func (r *Redis) Release(ctx context.Context, key Key) error {
	return redisErr(r.client.Del(ctx, r.claimName(key)).Err())
}

var (
	_ Claimer = (*Memory)(nil)
	_ Claimer = (*Bolt)(nil)
	_ Claimer = (*Redis)(nil)
	_ Claimer = (*RedisCache)(nil)
)
