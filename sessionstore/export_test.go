package sessionstore

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"
)

// IndexSize returns how many keys user's index holds, sessions that are
// gone but not yet dropped included: for tests that the index is cleaned.
func IndexSize(s Store, user string) int {
	switch s := s.(type) {
	case *Memory:
		s.mu.RLock()
		defer s.mu.RUnlock()
		if u := s.users[user]; u != nil {
			return u.len()
		}
		return 0
	case *Bolt:
		n := 0
		s.db.View(func(tx *bolt.Tx) error {
			n = len(boltUserKeys(tx, user))
			return nil
		})
		return n
	case *Redis:
		return int(s.client.ZCard(context.Background(), s.userName(user)).Val())
	case *RedisCache:
		return IndexSize(s.Redis, user)
	}
	panic("IndexSize: unknown store")
}

// TrackedNodes returns the addresses of the nodes c has a tracker for.
func (c *RedisCache) TrackedNodes() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var addrs []string
	for _, t := range c.trackers {
		addrs = append(addrs, t.client.Options().Addr)
	}
	return addrs
}

// UserIndexName is the Redis key of user's index.
func (r *Redis) UserIndexName(user string) string { return r.userName(user) }

// CreateEach stores rec(i) under keys[i], 10,000 keys per transaction, as
// CreateMany does: for filling a file with many users' sessions quickly.
func (b *Bolt) CreateEach(ctx context.Context, keys []Key, rec func(i int) Record) error {
	for start := 0; start < len(keys); start += 10_000 {
		end := min(len(keys), start+10_000)
		err := b.db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(boltBucket)
			for i := start; i < end; i++ {
				r := rec(i)
				v, err := boltValue(ctx, r)
				if err != nil {
					return err
				}
				if err := bk.Put(keys[i][:], v); err != nil {
					return err
				}
				if err := boltIndex(tx, keys[i][:], r.User); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// UserIndexName returns the Redis key of user's index in r.
func UserIndexName(r *Redis, user string) string { return r.userName(user) }

// ClaimCount returns how many claims s holds, ended ones not yet swept
// included.
func ClaimCount(s Store) int {
	switch s := s.(type) {
	case *Memory:
		s.mu.RLock()
		defer s.mu.RUnlock()
		return len(s.claims)
	case *Bolt:
		n := 0
		s.db.View(func(tx *bolt.Tx) error {
			if bk := tx.Bucket(boltClaims); bk != nil {
				n = bk.Stats().KeyN
			}
			return nil
		})
		return n
	}
	panic("ClaimCount: unknown store")
}

// HasVaultBucket reports whether b's file has the vault's bucket.
func HasVaultBucket(b *Bolt) bool {
	has := false
	b.db.View(func(tx *bolt.Tx) error {
		has = tx.Bucket(boltVault) != nil
		return nil
	})
	return has
}

// SweepMemory runs m's sweep now, as its sweeper would at now.
func SweepMemory(m *Memory, now time.Time) { m.sweep(now) }

// VaultRedisName is the Redis key that name is kept under in r's vault.
func VaultRedisName(r *Redis, name string) string { return r.vaultName(name) }

// IsSessionName reports whether r takes a Redis key for a session's.
func IsSessionName(r *Redis, name string) bool { return r.isSessionName(name) }

// CachedKeyOf reports whether c would take a Redis key for a session's
// (and drop its copy of that session when Redis says the key changed).
func CachedKeyOf(c *RedisCache, name string) bool {
	_, ok := c.keyOf(name)
	return ok
}
