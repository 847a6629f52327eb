package sessionstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Redis keeps sessions in Redis (single node, Sentinel or Cluster: any
// redis.UniversalClient), so that many Caddy instances share them. Each
// record is one string key, prefix + hex(Key), whose Redis TTL is the
// record's expiry.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis returns a store that keeps its keys under prefix in client. The
// caller owns client and closes it.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
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
	var rec Record
	if rec.UnmarshalBinary(v) != nil {
		return Record{}, false, nil
	}
	return rec, true, nil
}

// Create implements Store.
func (r *Redis) Create(ctx context.Context, key Key, rec Record) error {
	v, err := rec.MarshalBinary()
	if err != nil {
		return err
	}
	err = r.client.SetArgs(ctx, r.name(key), v, redis.SetArgs{ExpireAt: rec.Expires}).Err()
	if err != nil {
		return fmt.Errorf("redis store: %w", err)
	}
	return nil
}

// Update implements Store with SET ... XX, so a key deleted (or expired)
// meanwhile is never written again.
func (r *Redis) Update(ctx context.Context, key Key, rec Record) (bool, error) {
	v, err := rec.MarshalBinary()
	if err != nil {
		return false, err
	}
	err = r.client.SetArgs(ctx, r.name(key), v, redis.SetArgs{Mode: "XX", ExpireAt: rec.Expires}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("redis store: %w", err)
	}
	return true, nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key Key) error {
	if err := r.client.Del(ctx, r.name(key)).Err(); err != nil {
		return fmt.Errorf("redis store: %w", err)
	}
	return nil
}

var _ Store = (*Redis)(nil)
