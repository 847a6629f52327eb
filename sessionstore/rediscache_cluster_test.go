//go:build unix

package sessionstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgesession/edgesession/sessionstore"
)

// The conformance suite on a Redis Cluster of 3 masters, with and without
// the cache.
func TestRedisClusterConformance(t *testing.T) {
	client := startRedisCluster(t, 3, 0).client(t)
	t.Run("plain", func(t *testing.T) {
		runRedisConformanceOn(t, client, func(t *testing.T, client redis.UniversalClient, prefix string) redisStore {
			return sessionstore.NewRedis(client, prefix)
		})
	})
	t.Run("cache", func(t *testing.T) {
		runRedisConformanceOn(t, client, func(t *testing.T, client redis.UniversalClient, prefix string) redisStore {
			return newRedisCache(t, client, prefix, time.Second)
		})
	})
}

// In a Cluster, an Update that makes a session live longer raises its
// user's index first, which is on another hash slot, often of the same
// master. It must not hold the connection of its transaction while it
// takes another from the same pool: as many such updates at once as the
// pool has connections would each hold one and wait for a second until
// the pool timed out ("redis: connection pool timeout"). With one
// connection per node, a single update shows it.
func TestRedisClusterUpdateHoldsOneConnection(t *testing.T) {
	rc := startRedisCluster(t, 3, 0)
	var addrs []string
	for _, n := range rc.nodes {
		addrs = append(addrs, n.addr())
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: 1, PoolTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	ctx := context.Background()
	prefix := fmt.Sprintf("edgesession-test:%s:%d:", t.Name(), time.Now().UnixNano())
	st := sessionstore.NewRedis(client, prefix)
	t.Cleanup(func() { st.DeleteAll(context.Background()) })

	// A session and a user whose index is on the session's master.
	key := sessionstore.KeyOf(sessionstore.NewID())
	master, err := client.MasterForKey(ctx, prefix+key.String())
	if err != nil {
		t.Fatal(err)
	}
	user := ""
	for i := 0; user == ""; i++ {
		u := fmt.Sprint("user", i)
		m, err := client.MasterForKey(ctx, sessionstore.UserIndexName(st, u))
		if err != nil {
			t.Fatal(err)
		}
		if m.Options().Addr == master.Options().Addr {
			user = u
		}
	}
	now := time.Now()
	if err := st.Create(ctx, key, sessionstore.Record{User: user, Created: now, LastSeen: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(2 * time.Hour)
	rec, found, err := st.Update(ctx, key, sessionstore.Change{Expires: later, Set: map[string]string{"k": "v"}})
	if err != nil || !found {
		t.Fatalf("Update = %v, %v; want the session updated", found, err)
	}
	if !rec.Expires.Equal(later) || rec.Data["k"] != "v" {
		t.Errorf("Update returned %+v", rec)
	}
	// The index holds the session, scored no earlier than its new expiry.
	score, err := client.ZScore(ctx, sessionstore.UserIndexName(st, user), key.String()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if int64(score) < later.UnixMilli() {
		t.Errorf("index score %d, want at least the new expiry %d", int64(score), later.UnixMilli())
	}
}

// sessionOn is a record under a key that lives on one master.
type sessionOn struct {
	master *redisServer
	key    sessionstore.Key
}

// oneKeyPerMaster returns a key for each master of rc, under prefix: the
// master that the client routes it to, and that holds it once created
// (created checks it).
func oneKeyPerMaster(t *testing.T, rc *redisCluster, client *redis.ClusterClient, prefix string) []sessionOn {
	t.Helper()
	ctx := context.Background()
	var keys []sessionOn
	seen := map[string]bool{}
	for len(keys) < 3 {
		key := sessionstore.KeyOf(sessionstore.NewID())
		master, err := client.MasterForKey(ctx, prefix+key.String())
		if err != nil {
			t.Fatal(err)
		}
		if addr := master.Options().Addr; !seen[addr] {
			seen[addr] = true
			keys = append(keys, sessionOn{rc.node(t, addr), key})
		}
	}
	return keys
}

// created creates a session of user under s.key through st and checks
// that s.master holds it.
func created(t *testing.T, st sessionstore.Store, prefix, user string, s sessionOn) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	if err := st.Create(ctx, s.key, sessionstore.Record{User: user, Created: now, LastSeen: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.master.rdb.Exists(ctx, prefix+s.key.String()).Result(); n != 1 || err != nil {
		t.Fatalf("%s does not hold the session: %d, %v", s.master.addr(), n, err)
	}
}

// Two instances, each with a client and a cache of its own, on one
// Cluster: a data change, a logout and a revocation through one are seen
// through the other, for a session on each master. The max age is a
// minute, so only the invalidation pushed by that session's master can
// explain that the other sees them.
func TestRedisCacheClusterTwoInstances(t *testing.T) {
	rc := startRedisCluster(t, 3, 0)
	const prefix, maxAge = "two:", time.Minute
	clientA := rc.client(t)
	a := newRedisCache(t, clientA, prefix, maxAge)
	b := newRedisCache(t, rc.client(t), prefix, maxAge)
	ctx := context.Background()

	// warm makes b hold the record under key and checks that it answers
	// from memory.
	warm := func(key sessionstore.Key) {
		t.Helper()
		hits := b.Hits()
		waitFor(t, "b answers from memory", 10*time.Second, func() bool {
			_, found, err := b.Find(ctx, key)
			if !found || err != nil {
				t.Fatalf("b.Find = %v, %v", found, err)
			}
			return b.Hits() > hits
		})
	}
	seen := func(what string, key sessionstore.Key, cond func(sessionstore.Record, bool) bool) {
		t.Helper()
		waitFor(t, what, 10*time.Second, func() bool {
			rec, found, err := b.Find(ctx, key)
			return err == nil && cond(rec, found)
		})
	}

	for round := range 2 {
		for _, s := range oneKeyPerMaster(t, rc, clientA, prefix) {
			created(t, a, prefix, "alice", s)
			warm(s.key)
			cart := fmt.Sprint(round, s.master.addr())
			if _, _, err := a.Update(ctx, s.key, sessionstore.Change{Set: map[string]string{"cart": cart}}); err != nil {
				t.Fatal(err)
			}
			seen("data change on "+s.master.addr(), s.key, func(r sessionstore.Record, found bool) bool { return found && r.Data["cart"] == cart })
			warm(s.key)
			if round == 0 {
				if err := a.Delete(ctx, s.key); err != nil {
					t.Fatal(err)
				}
				seen("logout on "+s.master.addr(), s.key, func(_ sessionstore.Record, found bool) bool { return !found })
			} else {
				if _, err := a.DeleteUser(ctx, "alice"); err != nil {
					t.Fatal(err)
				}
				seen("revocation on "+s.master.addr(), s.key, func(_ sessionstore.Record, found bool) bool { return !found })
			}
		}
	}
}

// A lost tracking connection to any one master drops the whole cache,
// records on the other masters included, and the cache fills again once
// it is back: first with CLIENT KILL on that master (the connection comes
// back at once), then with the master stopped and started again.
func TestRedisCacheClusterTrackerLost(t *testing.T) {
	rc := startRedisCluster(t, 3, 0)
	const prefix = "lost:"
	client := rc.client(t)
	c := newRedisCache(t, client, prefix, time.Hour) // only a lost connection can drop it
	ctx := context.Background()
	keys := oneKeyPerMaster(t, rc, client, prefix)
	for _, s := range keys {
		created(t, c, prefix, "alice", s)
		cached(t, c, s.key)
	}
	victim, other := keys[0], keys[1]

	killed, err := victim.master.rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
	if err != nil || killed != 1 {
		t.Fatalf("CLIENT KILL TYPE pubsub on %s: %d, %v; want the one tracking connection", victim.master.addr(), killed, err)
	}
	waitFor(t, "a read of a session on another master to go to Redis", 10*time.Second, func() bool {
		hits := c.Hits()
		if _, found, err := c.Find(ctx, other.key); !found || err != nil {
			t.Fatalf("Find = %v, %v", found, err)
		}
		return c.Hits() == hits
	})
	waitFor(t, "tracking again", 30*time.Second, c.Tracking)
	cached(t, c, other.key)

	victim.master.stop()
	waitFor(t, "cache dropped", 10*time.Second, func() bool { return !c.Tracking() })
	hits := c.Hits()
	for range 3 {
		if _, found, err := c.Find(ctx, other.key); !found || err != nil {
			t.Fatalf("Find on a master that is up = %v, %v", found, err)
		}
	}
	if _, found, err := c.Find(ctx, victim.key); err == nil || found {
		t.Fatalf("Find on the stopped master = found %v, err %v; want an error", found, err)
	}
	if c.Hits() != hits {
		t.Fatalf("%d Finds answered from memory while a master was down", c.Hits()-hits)
	}

	if err := victim.master.start(); err != nil {
		t.Fatal(err)
	}
	rc.waitOK(t)
	waitFor(t, "tracking again", 30*time.Second, c.Tracking)
	cached(t, c, other.key)
	created(t, c, prefix, "alice", victim) // its data went with the restart
	cached(t, c, victim.key)
}

// A failover changes the masters: the cache is dropped and tracks the new
// master, whose invalidations then arrive.
func TestRedisCacheClusterFailover(t *testing.T) {
	rc := startRedisCluster(t, 3, 1)
	const prefix = "failover:"
	client := rc.client(t)
	c := newRedisCache(t, client, prefix, time.Minute)
	writer := sessionstore.NewRedis(rc.client(t), prefix)
	ctx := context.Background()
	s := oneKeyPerMaster(t, rc, client, prefix)[0]
	created(t, writer, prefix, "alice", s)
	cached(t, c, s.key)
	oldMaster, newMaster := s.master, rc.replicaOf(t, s.master)
	if tracked := c.TrackedNodes(); !slices.Contains(tracked, oldMaster.addr()) || slices.Contains(tracked, newMaster.addr()) {
		t.Fatalf("tracked %v; want %s, not its replica %s", tracked, oldMaster.addr(), newMaster.addr())
	}

	// A manual failover must be done within 5 s (cluster-node-timeout
	// aside); on a loaded machine it may not be, and is then asked again.
	var asked time.Time
	waitSlowly(t, "the replica to become master", func() bool {
		if role, err := newMaster.rdb.Do(ctx, "ROLE").Slice(); err == nil && len(role) > 0 && role[0] == "master" {
			return true
		}
		if time.Since(asked) > 10*time.Second {
			if err := newMaster.rdb.ClusterFailover(ctx).Err(); err != nil {
				t.Logf("CLUSTER FAILOVER: %v", err)
			}
			asked = time.Now()
		}
		return false
	})
	defer func() {
		if t.Failed() {
			t.Logf("the cache tracks %v (tracking %v); old master %s, new %s", c.TrackedNodes(), c.Tracking(), oldMaster.addr(), newMaster.addr())
		}
	}()
	waitSlowly(t, "the cache to track the new master", func() bool {
		tracked := c.TrackedNodes()
		return slices.Contains(tracked, newMaster.addr()) && !slices.Contains(tracked, oldMaster.addr()) && c.Tracking()
	})
	hits := c.Hits()
	if _, found, err := c.Find(ctx, s.key); !found || err != nil || c.Hits() != hits {
		t.Fatalf("first Find after the failover = %v, %v, from memory %v; want it read from Redis", found, err, c.Hits() != hits)
	}
	cached(t, c, s.key)
	if _, _, err := writer.Update(ctx, s.key, sessionstore.Change{Set: map[string]string{"cart": "after"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a change on the new master to be seen", 10*time.Second, func() bool {
		rec, found, err := c.Find(ctx, s.key)
		return err == nil && found && rec.Data["cart"] == "after"
	})
}

func BenchmarkRedisFindCluster(b *testing.B) {
	benchmarkFind(b, startRedisCluster(b, 3, 0).client(b), "bench:")
}
