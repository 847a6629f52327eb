package sessionstore_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgesession/edgesession/sessionstore"
)

// startRedisServer starts redis-server (with --sentinel, a sentinel) on a
// free port with the arguments args gives for it, and stops it with the
// test. It returns the port once the server answers.
func startRedisServer(t *testing.T, args func(port int) []string) int {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found (CI=true: tests may not skip)")
		}
		t.Skip("SKIP: no redis-server")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", args(port)...)
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	client := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer client.Close()
	waitFor(t, fmt.Sprintf("redis-server on port %d", port), 10*time.Second, func() bool {
		return client.Ping(context.Background()).Err() == nil
	})
	return port
}

func redisAt(t *testing.T, port int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
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
	server := func(extra ...string) func(int) []string {
		return func(port int) []string {
			return append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, extra...)
		}
	}
	master := startRedisServer(t, server("--rename-command", "REPLICAOF", "", "--rename-command", "SLAVEOF", ""))
	replica := startRedisServer(t, server("--replicaof", "127.0.0.1", fmt.Sprint(master)))
	ctx := context.Background()
	onReplica, onMaster := redisAt(t, replica), redisAt(t, master)
	waitFor(t, "the replica to be in sync", 10*time.Second, slowly(func() bool {
		info, _ := onReplica.Info(ctx, "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	}))
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	sentinel := startRedisServer(t, func(port int) []string {
		if err := os.WriteFile(conf, fmt.Appendf(nil, "port %d\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %d 1\n"+
			"sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 2000\n", port, master), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{conf, "--sentinel"}
	})
	failoverClient := func() *redis.Client {
		c := redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: "mymaster", SentinelAddrs: []string{fmt.Sprintf("127.0.0.1:%d", sentinel)},
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
	fromMemory(t, c, key)
	waitFor(t, "the replica to hold the session", 10*time.Second, func() bool {
		return onReplica.Exists(ctx, prefix+key.String()).Val() == 1
	})

	sc := redis.NewSentinelClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", sentinel)})
	t.Cleanup(func() { sc.Close() })
	// The sentinel refuses (NOGOODSLAVE) until it has seen the replica.
	waitFor(t, "the sentinel to start a failover", 30*time.Second, slowly(func() bool {
		return sc.Failover(ctx, "mymaster").Err() == nil
	}))
	waitFor(t, "the sentinel to name the replica master", 30*time.Second, slowly(func() bool {
		addr, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
		return err == nil && addr[1] == fmt.Sprint(replica)
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
	fromMemory(t, c, key2)
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

// fromMemory reads key until c answers from memory, which it does once it
// tracks (and the invalidation of the write that created key is past).
func fromMemory(t *testing.T, c *sessionstore.RedisCache, key sessionstore.Key) {
	t.Helper()
	hits := c.Hits()
	waitFor(t, "answered from memory", 10*time.Second, func() bool {
		if _, found, err := c.Find(context.Background(), key); !found || err != nil {
			t.Fatalf("Find = %v, %v", found, err)
		}
		return c.Hits() > hits
	})
}
