package sessionstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// newRedisCache returns a cached store on client under prefix, tracking
// already, closed when the test ends.
func newRedisCache(t testing.TB, client redis.UniversalClient, prefix string, maxAge time.Duration) *sessionstore.RedisCache {
	t.Helper()
	c, err := sessionstore.NewRedisCache(sessionstore.NewRedis(client, prefix), maxAge, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitFor(t, "tracking", 30*time.Second, c.Tracking)
	return c
}

func waitFor(t testing.TB, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return time.Since(start)
}

func TestRedisCache(t *testing.T) {
	runRedisConformance(t, func(t *testing.T, client redis.UniversalClient, prefix string) redisStore {
		return newRedisCache(t, client, prefix, time.Second)
	})
}

// Two instances, each with a client and a cache of its own, on one Redis:
// a data change, a logout and an admin revocation through one are seen
// through the other within far less than the max age, through Redis's
// invalidation push.
func TestRedisCacheTwoInstances(t *testing.T) {
	client, url := storetest.RedisClient(t)
	opts, _ := redis.ParseURL(url)
	other := redis.NewClient(opts)
	t.Cleanup(func() { other.Close() })
	prefix := storetest.RedisPrefix(t)
	// A long max age, so that only the invalidation push can explain b
	// seeing a change; the polls below give up long before it.
	const maxAge = time.Minute
	const limit = 10 * time.Second
	a := newRedisCache(t, client, prefix, maxAge)
	b := newRedisCache(t, other, prefix, maxAge)
	t.Cleanup(func() { a.DeleteAll(context.Background()) })
	ctx := context.Background()

	// warm makes b hold the record under key and checks that it answers
	// from memory.
	warm := func(key sessionstore.Key) {
		t.Helper()
		// The invalidation of a's own write may arrive after b's first
		// read and drop it: read until b answers from memory.
		hits := b.Hits()
		waitFor(t, "b answers from memory", limit, func() bool {
			_, found, err := b.Find(ctx, key)
			if !found || err != nil {
				t.Fatalf("b.Find = %v, %v", found, err)
			}
			return b.Hits() > hits
		})
	}
	var delays []time.Duration
	seen := func(what string, key sessionstore.Key, cond func(sessionstore.Record, bool) bool) {
		t.Helper()
		d := waitFor(t, what, limit, func() bool {
			rec, found, err := b.Find(ctx, key)
			return err == nil && cond(rec, found)
		})
		delays = append(delays, d)
	}

	for round := range 20 {
		now := time.Now()
		key := sessionstore.KeyOf(sessionstore.NewID())
		if err := a.Create(ctx, key, sessionstore.Record{User: "alice", Created: now, LastSeen: now, Expires: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		warm(key)
		if _, _, err := a.Update(ctx, key, sessionstore.Change{Set: map[string]string{"cart": fmt.Sprint(round)}}); err != nil {
			t.Fatal(err)
		}
		seen("data change", key, func(r sessionstore.Record, found bool) bool { return found && r.Data["cart"] == fmt.Sprint(round) })
		warm(key)
		if round%2 == 0 {
			if err := a.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			seen("logout", key, func(_ sessionstore.Record, found bool) bool { return !found })
		} else {
			if _, err := a.DeleteUser(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			seen("revocation", key, func(_ sessionstore.Record, found bool) bool { return !found })
		}
	}
	slices.Sort(delays)
	t.Logf("invalidation delay over %d changes: median %v, max %v (max age %v)",
		len(delays), delays[len(delays)/2], delays[len(delays)-1], maxAge)
}

// cached reads key until c answers from memory: the invalidation of the
// write that created it may arrive after the first read and drop it.
func cached(t *testing.T, c *sessionstore.RedisCache, key sessionstore.Key) {
	t.Helper()
	hits := c.Hits()
	waitFor(t, "answered from memory", 10*time.Second, func() bool {
		if _, found, err := c.Find(context.Background(), key); !found || err != nil {
			t.Fatalf("Find = %v, %v", found, err)
		}
		return c.Hits() > hits
	})
}

func BenchmarkRedisFind(b *testing.B) {
	client, _ := storetest.RedisClient(b)
	benchmarkFind(b, client, storetest.RedisPrefix(b))
}

// benchmarkFind measures Find of one session through client: a GET to
// Redis, and a hit in the cache, serial and parallel.
func benchmarkFind(b *testing.B, client redis.UniversalClient, prefix string) {
	ctx := context.Background()
	now := time.Now()
	key := sessionstore.KeyOf(sessionstore.NewID())
	rec := sessionstore.Record{User: "alice", Source: "password", Groups: []string{"staff"}, Data: map[string]string{"a": "b"}, Created: now, LastSeen: now, Expires: now.Add(time.Hour)}
	plain := sessionstore.NewRedis(client, prefix)
	if err := plain.Create(ctx, key, rec); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { plain.DeleteAll(ctx) })
	cached := newRedisCache(b, client, prefix, time.Hour)
	for _, bc := range []struct {
		name  string
		store sessionstore.Store
	}{{"go-redis-GET", plain}, {"cache-hit", cached}} {
		name, store := bc.name, bc.store
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				store.Find(ctx, key)
			}
		})
		b.Run(name+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					store.Find(ctx, key)
				}
			})
		})
	}
}

// A Redis user whose ACL does not allow CLIENT TRACKING gets no cache, and
// no error on any request: every Find reads from Redis, and the failure
// is reported once, not at each retry.
func TestRedisCacheRefusedTracking(t *testing.T) {
	admin, url := storetest.RedisClient(t)
	ctx := context.Background()
	user := fmt.Sprintf("edgesession-notrack-%d", time.Now().UnixNano())
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">pw-"+user, "~*", "&*", "+@all", "-client").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", user) })
	opts, _ := redis.ParseURL(url)
	opts.Username, opts.Password = user, "pw-"+user
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })

	var mu sync.Mutex
	var reports []error
	prefix := storetest.RedisPrefix(t)
	c, err := sessionstore.NewRedisCache(sessionstore.NewRedis(client, prefix), time.Minute, func(_ string, err error) {
		mu.Lock()
		reports = append(reports, err)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitFor(t, "the refusal to be reported", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reports) > 0
	})
	mu.Lock()
	if !strings.Contains(reports[0].Error(), "NOPERM") {
		t.Errorf("reported %v, want Redis's NOPERM", reports[0])
	}
	mu.Unlock()

	key := sessionstore.KeyOf(sessionstore.NewID())
	rec := sessionstore.Record{User: "alice", Expires: time.Now().Add(time.Hour)}
	if err := c.Create(ctx, key, rec); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got, found, err := c.Find(ctx, key); err != nil || !found || got.User != "alice" {
			t.Fatalf("Find: %v %v %v", got.User, found, err)
		}
	}
	if c.Tracking() || c.Hits() != 0 {
		t.Fatalf("tracking %v, %d hits: a session was kept without tracking", c.Tracking(), c.Hits())
	}
	// Deleted directly in Redis: no copy hides it.
	if err := admin.Del(ctx, prefix+key.String()).Err(); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := c.Find(ctx, key); found {
		t.Fatal("a session deleted in Redis was still found")
	}
	time.Sleep(3 * time.Second) // retries happen (backoff from 50 ms)
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 1 {
		t.Fatalf("the refusal was reported %d times, want once", len(reports))
	}
}
