package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps sessions in Redis (single node, Sentinel or Cluster: any
// redis.UniversalClient), so that many Caddy instances share them. Each
// record is one string key, prefix + hex(Key), whose Redis TTL is the
// record's expiry. The index by user is a sorted set per user (see
// index_redis.go).
type Redis struct {
	client redis.UniversalClient
	prefix string
	// cluster is set for a Redis Cluster, where a session and its user's
	// index are in different hash slots and cannot share a MULTI.
	cluster bool
}

// NewRedis returns a store that keeps its keys under prefix in client. The
// caller owns client and closes it.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	_, cluster := client.(*redis.ClusterClient)
	return &Redis{client: client, prefix: prefix, cluster: cluster}
}

func (r *Redis) name(key Key) string { return r.prefix + key.String() }

// Find implements Store.
func (r *Redis) Find(ctx context.Context, key Key) (Record, bool, error) {
	v, err := r.client.Get(ctx, r.name(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("redis store: %w", err)
	}
	// Redis's TTL runs on Redis's clock; the record's own Expires decides.
	var rec Record
	if rec.UnmarshalBinary(v) != nil || rec.Expired(time.Now()) {
		return Record{}, false, nil
	}
	return rec, true, nil
}

// Create implements Store. A user's session is added to the user's index
// in the same MULTI (in a Cluster: first the index, then the session).
func (r *Redis) Create(ctx context.Context, key Key, rec Record) error {
	v, err := rec.MarshalBinary()
	if err != nil {
		return err
	}
	err = r.withIndex(ctx, rec.User, func(c redis.Cmdable) error {
		if rec.User != "" {
			if err := r.index(ctx, c, rec.User, key, rec.Expires); err != nil {
				return err
			}
		}
		return c.SetArgs(ctx, r.name(key), v, redis.SetArgs{ExpireAt: rec.Expires}).Err()
	})
	if err != nil {
		return fmt.Errorf("redis store: %w", err)
	}
	return nil
}

// redisUpdateAttempts bounds how often Update runs its transaction when
// other writers keep changing the same key between its read and its write.
const redisUpdateAttempts = 50

// Update implements Store as an optimistic transaction on the one key:
// WATCH, GET, then MULTI, SET XX with the new expiry, EXEC. If another writer changed the
// key meanwhile, EXEC does nothing and Update starts again from the stored
// record, up to redisUpdateAttempts times (then it is an error). XX keeps a
// key that expired meanwhile from being written again. A later expiry is
// written to the user's index too, in the same MULTI.
//
// In a Cluster the index is in another slot, so it is written before the
// MULTI, and outside the WATCH: the transaction gives its connection back,
// the index is raised to the new expiry, and the transaction runs again
// (the index is then already far enough). Writing the index from inside
// the WATCH would hold one pooled connection while waiting for another of
// the same pool (the index's node is the session's one time in three), so
// that as many such updates as the pool has connections would wait on
// each other until the pool timed out.
func (r *Redis) Update(ctx context.Context, key Key, ch Change) (Record, bool, error) {
	if ch.IsZero() {
		return r.Find(ctx, key)
	}
	name := r.name(key)
	var rec Record
	found := false
	var indexed time.Time // in a Cluster: how far this Update raised the index
	update := func(tx *redis.Tx) error {
		found = false
		v, err := tx.Get(ctx, name).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		var old Record
		if old.UnmarshalBinary(v) != nil || old.Expired(time.Now()) {
			return nil
		}
		rec = old.Apply(ch)
		enc, err := rec.MarshalBinary()
		if err != nil {
			return err
		}
		reindex := rec.User != "" && rec.Expires.After(old.Expires)
		if reindex && r.cluster && rec.Expires.After(indexed) {
			return errIndexFirst
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.SetArgs(ctx, name, enc, redis.SetArgs{Mode: "XX", ExpireAt: rec.Expires})
			if reindex && !r.cluster {
				return r.index(ctx, pipe, rec.User, key, rec.Expires)
			}
			return nil
		})
		if errors.Is(err, redis.Nil) { // gone since the GET
			return nil
		}
		found = err == nil
		return err
	}
	for attempt, reindexed := 1, 0; ; attempt++ {
		err := r.client.Watch(ctx, update, name)
		if errors.Is(err, errIndexFirst) && reindexed < redisUpdateAttempts {
			// Not a lost race: the WATCH's connection is back in the pool,
			// and the transaction runs again once the index is written.
			if err := r.index(ctx, r.client, rec.User, key, rec.Expires); err != nil {
				return Record{}, false, fmt.Errorf("redis store: %w", err)
			}
			indexed = rec.Expires
			reindexed++
			attempt--
			continue
		}
		switch {
		case err == nil && found:
			return rec, true, nil
		case err == nil:
			return Record{}, false, nil
		case !errors.Is(err, redis.TxFailedErr):
			return Record{}, false, fmt.Errorf("redis store: %w", err)
		case attempt == redisUpdateAttempts:
			return Record{}, false, fmt.Errorf("redis store: session changed by others %d times during one update: %w", attempt, err)
		}
		// Another writer won: wait a random moment, up to twice as long
		// after each loss (at most 32ms), so that writers contending for
		// one session spread out rather than collide again at once.
		pause := time.NewTimer(rand.N(time.Millisecond << min(attempt, 5)))
		select {
		case <-ctx.Done():
			pause.Stop()
			return Record{}, false, fmt.Errorf("redis store: %w", ctx.Err())
		case <-pause.C:
		}
	}
}

// errIndexFirst ends a Cluster's Update transaction that must first raise
// the user's index, which it does outside the transaction.
var errIndexFirst = errors.New("the index is written first")

// Delete implements Store: GETDEL, then the session leaves its user's
// index. Should that second step fail, the index keeps a name that leads
// nowhere until the user's next list or revocation, or its expiry.
func (r *Redis) Delete(ctx context.Context, key Key) error {
	v, err := r.client.GetDel(ctx, r.name(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("redis store: %w", err)
	}
	if user, ok := recordUser(v); ok && user != "" {
		r.client.ZRem(ctx, r.userName(user), key.String())
	}
	return nil
}

var (
	_ Store     = (*Redis)(nil)
	_ UserIndex = (*Redis)(nil)
	_ Lister    = (*Redis)(nil)
)
