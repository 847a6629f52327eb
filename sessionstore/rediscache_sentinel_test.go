//go:build unix

package sessionstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgesession/edgesession/sessionstore"
)

// redisAt returns a client of s with go-redis's default options (retries
// included), closed with the test.
func redisAt(t *testing.T, s *redisServer) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// After a Sentinel failover, the cache follows the new master: a session
// revoked there through another instance is no longer served from memory,
// far sooner than the max age (an hour here).
//
// The old master stays up, and stays a master: Sentinel cannot reconfigure
// it (REPLICAOF and SLAVEOF are renamed away), as when the sentinels cannot
// reach it but this instance can. A tracking connection left on it would
// keep receiving pings but no invalidations, and the revoked session would
// be served for the whole max age. (When Sentinel can reconfigure it, it
// does so some 10s after the switch and closes the tracking connection
// then; until then the same happens.)
func TestRedisCacheFollowsSentinelFailover(t *testing.T) {
	master := startRedisServer(t, reserveRedisPort, redisArgs("--rename-command", "REPLICAOF", "", "--rename-command", "SLAVEOF", ""))
	replica := startRedisServer(t, reserveRedisPort, redisArgs("--replicaof", "127.0.0.1", fmt.Sprint(master.port)))
	ctx := context.Background()
	onReplica, onMaster := redisAt(t, replica), redisAt(t, master)
	waitFor(t, "the replica to be in sync", 10*time.Second, slowly(func() bool {
		info, _ := onReplica.Info(ctx, "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	}))
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	sentinel := startRedisServer(t, reserveRedisPort, func(port int) []string {
		if err := os.WriteFile(conf, fmt.Appendf(nil, "port %d\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %d 1\n"+
			"sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 2000\n", port, master.port), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{conf, "--sentinel"}
	})
	failoverClient := func() *redis.Client {
		c := redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: "mymaster", SentinelAddrs: []string{sentinel.addr()},
			DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: 1,
		})
		t.Cleanup(func() { c.Close() })
		return c
	}

	const prefix = "failover:"
	c := newRedisCache(t, failoverClient(), prefix, time.Hour)
	now := time.Now()
	key := sessionstore.KeyOf(sessionstore.NewID())
	rec := sessionstore.Record{User: "alice", Created: now, LastSeen: now, Expires: now.Add(time.Hour)}
	if err := c.Create(ctx, key, rec); err != nil {
		t.Fatal(err)
	}
	cached(t, c, key)
	waitFor(t, "the replica to hold the session", 10*time.Second, func() bool {
		return onReplica.Exists(ctx, prefix+key.String()).Val() == 1
	})

	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.addr()})
	t.Cleanup(func() { sc.Close() })
	// The sentinel refuses (NOGOODSLAVE) until it has seen the replica.
	waitFor(t, "the sentinel to start a failover", 30*time.Second, slowly(func() bool {
		return sc.Failover(ctx, "mymaster").Err() == nil
	}))
	waitFor(t, "the sentinel to name the replica master", 30*time.Second, slowly(func() bool {
		addr, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
		return err == nil && addr[1] == fmt.Sprint(replica.port)
	}))
	if _, found, err := c.Find(ctx, key); !found || err != nil {
		t.Fatalf("after the failover the session is not found: %v, %v", found, err)
	}

	// Another instance revokes the session: on the new master.
	if err := sessionstore.NewRedis(failoverClient(), prefix).Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n := onReplica.Exists(ctx, prefix+key.String()).Val(); n != 0 {
		t.Fatal("the revocation did not reach the new master")
	}
	waitFor(t, "the revoked session to be refused", 20*time.Second, func() bool {
		_, found, err := c.Find(ctx, key)
		return err == nil && !found
	})
	// That was the case this test is about: the old master is still up,
	// still a master, and still holds the session.
	role, err := onMaster.Do(ctx, "ROLE").Slice()
	if err != nil || role[0] != "master" || onMaster.Exists(ctx, prefix+key.String()).Val() != 1 {
		t.Fatalf("the old master was reconfigured (ROLE %v, %v): not the case under test", role, err)
	}

	// The cache works again, on the new master.
	key2 := sessionstore.KeyOf(sessionstore.NewID())
	if err := c.Create(ctx, key2, rec); err != nil {
		t.Fatal(err)
	}
	cached(t, c, key2)
	if err := sessionstore.NewRedis(failoverClient(), prefix).Delete(ctx, key2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a session revoked on the new master to be refused", 20*time.Second, func() bool {
		_, found, err := c.Find(ctx, key2)
		return err == nil && !found
	})
}

// slowly is cond, polled every 20ms rather than as fast as waitFor does.
func slowly(cond func() bool) func() bool {
	return func() bool {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
		return false
	}
}

// When the tracking connection is lost the cache is dropped at once: with
// Redis gone, Find fails (closed), it never answers from memory; and the
// cache fills again once Redis is back.
func TestRedisCacheDroppedWhenConnectionLost(t *testing.T) {
	server := startRedisServer(t, reserveRedisPort, redisArgs())
	client := redis.NewClient(&redis.Options{Addr: server.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	ctx := context.Background()
	waitFor(t, "redis-server up", 5*time.Second, func() bool { return client.Ping(ctx).Err() == nil })

	c := newRedisCache(t, client, "p:", time.Hour) // only the connection can drop it
	now := time.Now()
	key := sessionstore.KeyOf(sessionstore.NewID())
	if err := c.Create(ctx, key, sessionstore.Record{User: "alice", Created: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cached(t, c, key)

	server.stop()
	d := waitFor(t, "cache dropped", 10*time.Second, func() bool { return !c.Tracking() })
	t.Logf("cache dropped %v after redis-server died", d)
	hits := c.Hits()
	if _, found, err := c.Find(ctx, key); err == nil || found || c.Hits() != hits {
		t.Fatalf("Find with Redis down = found %v, err %v; want an error, not memory", found, err)
	}

	if err := server.start(); err != nil { // on the same port
		t.Fatal(err)
	}
	waitFor(t, "tracking again", 10*time.Second, c.Tracking)
	if err := c.Create(ctx, key, sessionstore.Record{User: "alice", Created: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cached(t, c, key)
}
