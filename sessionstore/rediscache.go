package sessionstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultCacheMaxAge is how long RedisCache keeps a record at most when
// no max age is given: the worst-case delay before a logout, rotation,
// data change or revocation made through another instance is seen here.
const DefaultCacheMaxAge = time.Second

// cacheMaxEntries bounds the records a RedisCache keeps; beyond it, Find
// reads from Redis without keeping what it read.
const cacheMaxEntries = 1 << 17

// Lock order: go-redis is never called with c.mu held, and nothing that
// go-redis calls back (OnConnect) takes c.mu; a PubSub that connects again
// holds its own lock while OnConnect runs, and its Close waits for that.

// RedisCache is a Redis store that keeps the records it found in local
// memory, with Redis's server-assisted client-side caching (CLIENT
// TRACKING in broadcast mode over the store's prefix) telling it when any
// client changes or deletes one.
//
// It has a tracking connection of its own to each Redis that holds keys:
// the one node (or Sentinel's master) of a *redis.Client, or each master
// of a Cluster, since a master tracks and invalidates only its own keys.
//
// What bounds a stale read:
//   - a record is kept at most maxAge after it was read, whatever Redis
//     says, so maxAge is the worst-case delay before a change made
//     elsewhere is seen here;
//   - the whole cache is dropped, and nothing is kept, from the moment any
//     tracking connection fails (or stops answering pings) until every one
//     is tracking again;
//   - in a Cluster, the masters (those that hold slots) are read again
//     every ping interval (maxAge/2, within 50ms to 1s): when they have
//     changed (a failover, slots moved to a master that had none, a
//     master gone), the whole cache is dropped and the tracking
//     connections are made again for the new masters. A change written on
//     a new master before that is not pushed, so it is seen about one ping
//     interval later; and while slots migrate to a master that had none,
//     the keys already moved there are not tracked until the migration
//     ends. maxAge bounds both;
//   - this instance's own writes drop its copy before they return;
//   - a read that an invalidation overtakes is not kept: each read
//     registers before it asks Redis, and an invalidation for its key
//     (or a lost connection) that arrives meanwhile voids it;
//   - "not found" is never kept.
//
// Reads go to masters (the client's default): a read from a lagging
// replica could keep a record older than an invalidation already handled.
// With Sentinel, the tracking connection follows the master that the
// client reaches (see checkNode).
type RedisCache struct {
	*Redis
	maxAge time.Duration
	ping   time.Duration                // how often connections and masters are checked
	failed func(addr string, err error) // may be nil

	mu       sync.RWMutex
	trackers []*tracker // one per Redis that holds keys
	tracking bool       // every tracker is subscribed: reads may be kept
	entries  map[Key]cacheEntry
	fills    map[Key][]*cacheFill

	hits atomic.Uint64

	swept time.Time // when track last swept old records

	cancel context.CancelFunc
	done   chan struct{}
}

type cacheEntry struct {
	rec    Record
	filled time.Time // when the read that found rec was started
}

// cacheFill is one Find reading from Redis; void is set when an
// invalidation for its key, or a lost tracking connection, arrives
// before it is done.
type cacheFill struct{ void bool }

// NewRedisCache returns r with a local cache of at most maxAge per record
// (DefaultCacheMaxAge if maxAge <= 0). It opens tracking connections of
// its own with r's client options (one per master in a Cluster); Close
// closes them. r's client must be a *redis.Client (single node or
// Sentinel) or a *redis.ClusterClient.
//
// failed, if not nil, is told when a tracking connection to the node at
// addr fails or cannot turn tracking on (a Redis before 6, or a user whose
// ACL does not allow CLIENT TRACKING): once until it is tracking again,
// not at each retry. Meanwhile every Find reads from Redis.
func NewRedisCache(r *Redis, maxAge time.Duration, failed func(addr string, err error)) (*RedisCache, error) {
	switch r.client.(type) {
	case *redis.Client, *redis.ClusterClient:
	default:
		return nil, fmt.Errorf("redis cache: supported with a single Redis, Sentinel or Cluster, not %T", r.client)
	}
	if maxAge <= 0 {
		maxAge = DefaultCacheMaxAge
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &RedisCache{
		Redis:  r,
		maxAge: maxAge,
		failed: failed,
		// A connection that leaves two pings unanswered is lost (a Redis
		// that hangs is noticed within about 3 pings).
		ping:    min(max(maxAge/2, 50*time.Millisecond), time.Second),
		entries: make(map[Key]cacheEntry),
		fills:   make(map[Key][]*cacheFill),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go c.track(ctx)
	return c, nil
}

// Close stops tracking and drops the cache. It does not close r's client.
func (c *RedisCache) Close() error {
	c.cancel()
	<-c.done
	return nil
}

// Tracking reports whether every tracking connection is up, so that
// records read now may be kept.
func (c *RedisCache) Tracking() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tracking
}

// Hits is how many Finds were answered from memory.
func (c *RedisCache) Hits() uint64 { return c.hits.Load() }

func (c *RedisCache) dropAllLocked() {
	clear(c.entries)
	for _, fs := range c.fills {
		for _, f := range fs {
			f.void = true
		}
	}
}

func (c *RedisCache) dropLocked(key Key) {
	delete(c.entries, key)
	for _, f := range c.fills[key] {
		f.void = true
	}
}

func (c *RedisCache) drop(keys ...Key) {
	c.mu.Lock()
	for _, key := range keys {
		c.dropLocked(key)
	}
	c.mu.Unlock()
}

func (c *RedisCache) dropAll() {
	c.mu.Lock()
	c.dropAllLocked()
	c.mu.Unlock()
}

// sweep forgets records older than maxAge, at most once per maxAge (it
// walks the whole cache under the lock). Called from track only.
func (c *RedisCache) sweep() {
	now := time.Now()
	if now.Sub(c.swept) < c.maxAge {
		return
	}
	c.swept = now
	c.mu.Lock()
	for key, e := range c.entries {
		if now.Sub(e.filled) >= c.maxAge {
			delete(c.entries, key)
		}
	}
	c.mu.Unlock()
}

// Find implements Store: from memory when this instance holds the record
// and it is younger than maxAge, otherwise from Redis.
func (c *RedisCache) Find(ctx context.Context, key Key) (Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, false, fmt.Errorf("redis store: %w", err)
	}
	now := time.Now()
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if ok && now.Sub(e.filled) < c.maxAge && !e.rec.Expired(now) {
		c.hits.Add(1)
		return e.rec.Clone(), true, nil
	}

	f := c.startFill(key)
	rec, found, err := c.Redis.Find(ctx, key)
	c.endFill(key, f, rec, found && err == nil, now)
	return rec, found, err
}

// startFill registers a read of key before it is sent to Redis, or
// returns nil when nothing read now may be kept.
func (c *RedisCache) startFill(key Key) *cacheFill {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tracking {
		return nil
	}
	f := &cacheFill{}
	c.fills[key] = append(c.fills[key], f)
	return f
}

// endFill keeps rec if found and if no invalidation voided the read.
func (c *RedisCache) endFill(key Key, f *cacheFill, rec Record, found bool, started time.Time) {
	if f == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := c.fills[key]
	for i := range fs {
		if fs[i] == f {
			fs = append(fs[:i], fs[i+1:]...)
			break
		}
	}
	if len(fs) == 0 {
		delete(c.fills, key)
	} else {
		c.fills[key] = fs
	}
	if found && !f.void && c.tracking && len(c.entries) < cacheMaxEntries {
		c.entries[key] = cacheEntry{rec: rec.Clone(), filled: started}
	}
}

// Create implements Store.
func (c *RedisCache) Create(ctx context.Context, key Key, rec Record) error {
	err := c.Redis.Create(ctx, key, rec)
	c.drop(key)
	return err
}

// Update implements Store. This instance's copy is dropped, not replaced:
// the next Find reads the record as it is then.
func (c *RedisCache) Update(ctx context.Context, key Key, ch Change) (Record, bool, error) {
	if ch.IsZero() {
		return c.Find(ctx, key)
	}
	rec, found, err := c.Redis.Update(ctx, key, ch)
	c.drop(key)
	return rec, found, err
}

// Delete implements Store.
func (c *RedisCache) Delete(ctx context.Context, key Key) error {
	err := c.Redis.Delete(ctx, key)
	c.drop(key)
	return err
}

// DeleteUser implements UserIndex.
func (c *RedisCache) DeleteUser(ctx context.Context, user string, handles ...Handle) ([]Key, error) {
	keys, err := c.Redis.DeleteUser(ctx, user, handles...)
	if err != nil {
		c.dropAll()
	} else {
		c.drop(keys...)
	}
	return keys, err
}

// DeleteAll implements UserIndex.
func (c *RedisCache) DeleteAll(ctx context.Context) (int, error) {
	n, err := c.Redis.DeleteAll(ctx)
	c.dropAll()
	return n, err
}

var (
	_ Store     = (*RedisCache)(nil)
	_ UserIndex = (*RedisCache)(nil)
)
