package sessionstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
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

// invalidateChannel is where Redis publishes a tracking client's
// invalidations when the client is a RESP2 connection that redirects to
// itself.
const invalidateChannel = "__redis__:invalidate"

// RedisCache is a Redis store that keeps the records it found in local
// memory, with Redis's server-assisted client-side caching (CLIENT
// TRACKING in broadcast mode over the store's prefix) telling it when any
// client changes or deletes one.
//
// What bounds a stale read:
//   - a record is kept at most maxAge after it was read, whatever Redis
//     says, so maxAge is the worst-case delay before a change made
//     elsewhere is seen here;
//   - the whole cache is dropped, and nothing is kept, from the moment the
//     tracking connection fails (or stops answering pings) until it is
//     tracking again;
//   - this instance's own writes drop its copy before they return;
//   - a read that an invalidation overtakes is not kept: each read
//     registers before it asks Redis, and an invalidation for its key
//     (or a lost connection) that arrives meanwhile voids it;
//   - "not found" is never kept.
//
// Only a single Redis node or a Sentinel-managed master is supported (a
// *redis.Client); for a Cluster, NewRedisCache returns an error. The
// tracking connection follows the node that the client reaches, as after
// a Sentinel failover (see watchNode).
type RedisCache struct {
	*Redis
	maxAge  time.Duration
	tracker *redis.Client

	mu       sync.RWMutex
	tracking bool
	entries  map[Key]cacheEntry
	fills    map[Key][]*cacheFill

	hits atomic.Uint64
	ps   *redis.PubSub // the tracking connection, for Close to interrupt
	node string        // the run_id of the node ps is on (see watchNode)

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
// (DefaultCacheMaxAge if maxAge <= 0). It opens a tracking connection of
// its own with r's client options; Close closes it. r's client must be a
// *redis.Client (single node or Sentinel).
func NewRedisCache(r *Redis, maxAge time.Duration) (*RedisCache, error) {
	client, ok := r.client.(*redis.Client)
	if !ok {
		return nil, fmt.Errorf("redis cache: supported with a single Redis or Sentinel, not %T", r.client)
	}
	if maxAge <= 0 {
		maxAge = DefaultCacheMaxAge
	}
	opts := *client.Options()
	// A RESP2 connection that redirects its own invalidations to itself
	// and subscribes to them reads them as plain Pub/Sub messages.
	opts.Protocol = 2
	opts.PoolSize = 1
	opts.ClientName = "edgesession-tracking"
	onConnect := opts.OnConnect
	prefix := r.prefix
	ctx, cancel := context.WithCancel(context.Background())
	c := &RedisCache{
		Redis:   r,
		maxAge:  maxAge,
		entries: make(map[Key]cacheEntry),
		fills:   make(map[Key][]*cacheFill),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if onConnect != nil {
			if err := onConnect(ctx, cn); err != nil {
				return err
			}
		}
		c.setNode(runID(ctx, cn)) // see watchNode
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			return err
		}
		args := []any{"CLIENT", "TRACKING", "on", "REDIRECT", id, "BCAST"}
		if prefix != "" {
			args = append(args, "PREFIX", prefix)
		}
		return cn.Do(ctx, args...).Err()
	}
	c.tracker = redis.NewClient(&opts) // once c exists: OnConnect uses it
	go c.track(ctx)
	return c, nil
}

// Close stops tracking and drops the cache. It does not close r's client.
func (c *RedisCache) Close() error {
	c.cancel()
	c.mu.Lock()
	if c.ps != nil {
		c.ps.Close()
	}
	c.mu.Unlock()
	<-c.done
	return c.tracker.Close()
}

// track keeps a tracking connection subscribed to its invalidations, and
// drops the cache whenever the connection fails.
func (c *RedisCache) track(ctx context.Context) {
	defer close(c.done)
	defer c.lost()
	defer c.watchNode(ctx)() // waits for it to end
	// ping is how often an idle connection is checked; a connection that
	// leaves two pings unanswered is lost (a Redis that hangs is noticed
	// within about 3 pings).
	ping := c.pingEvery()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		ps := c.tracker.Subscribe(ctx, invalidateChannel)
		c.mu.Lock()
		c.ps = ps
		c.mu.Unlock()
		pending := 0
		for ctx.Err() == nil {
			msg, err := ps.ReceiveTimeout(ctx, ping)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && pending < 2 {
				pending++
				if ps.Ping(ctx) == nil {
					continue
				}
			}
			if err != nil {
				break
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" && m.Channel == invalidateChannel {
					c.setTracking()
					backoff = 50 * time.Millisecond
				}
			case *redis.Pong:
				pending = 0
			case *redis.Message:
				c.invalidate(m.PayloadSlice, m.Payload)
			}
			c.sweep()
		}
		c.lost()
		ps.Close()
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Tracking reports whether the tracking connection is up, so that records
// read now may be kept.
func (c *RedisCache) Tracking() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tracking
}

// Hits is how many Finds were answered from memory.
func (c *RedisCache) Hits() uint64 { return c.hits.Load() }

// setTracking starts keeping records: the connection has tracking on.
func (c *RedisCache) setTracking() {
	c.mu.Lock()
	c.tracking = true
	c.mu.Unlock()
}

// lost drops every record and voids every read in flight: the tracking
// connection is gone, so invalidations may be missed from now on.
func (c *RedisCache) lost() {
	c.mu.Lock()
	c.tracking = false
	c.dropAllLocked()
	c.mu.Unlock()
}

func (c *RedisCache) dropAllLocked() {
	clear(c.entries)
	for _, fs := range c.fills {
		for _, f := range fs {
			f.void = true
		}
	}
}

// invalidate handles a message from Redis: the names of changed keys, or
// none (payload nil) for a flush of the whole database.
func (c *RedisCache) invalidate(names []string, payload string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(names) == 0 && payload != "" {
		names = []string{payload}
	}
	if len(names) == 0 {
		c.dropAllLocked()
		return
	}
	for _, name := range names {
		if key, ok := c.keyOf(name); ok {
			c.dropLocked(key)
		}
	}
}

// keyOf returns the session key that a Redis name stands for, if it is one.
func (c *RedisCache) keyOf(name string) (Key, bool) {
	var key Key
	s, ok := strings.CutPrefix(name, c.prefix)
	if !ok || hex.DecodedLen(len(s)) != len(key) {
		return key, false
	}
	_, err := hex.Decode(key[:], []byte(s))
	return key, err == nil
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
