package throttle

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// redisThrottle is a throttle whose failures are kept in Redis under
// prefix, over a table of its own (as if in a process of its own).
func redisThrottle(client redis.UniversalClient, prefix string, failures int) (*Throttle, *observer.ObservedLogs) {
	th := NewPrivate(Limit{Failures: failures, Window: time.Minute}, &Redis{Client: client, Prefix: prefix}, 100, nil)
	core, logs := observer.New(zap.DebugLevel)
	th.logger = zap.New(core)
	return th, logs
}

func TestThrottleRedisSharesOneBudget(t *testing.T) {
	client, _ := storetest.RedisClient(t)
	prefix := storetest.RedisPrefix(t)
	a, logsA := redisThrottle(client, prefix, 3)
	b, logsB := redisThrottle(client, prefix, 3)
	now := time.Now()
	try(t, a, "s", "192.0.2.1", "alice", now)
	try(t, b, "s", "192.0.2.1", "alice", now)
	try(t, a, "s", "192.0.2.1", "alice", now)
	for name, th := range map[string]*Throttle{"a": a, "b": b} {
		at, wait, err := th.Begin(context.Background(), "s", "192.0.2.1", "alice", now)
		if err != nil || at != nil || wait <= 50*time.Second || wait > time.Minute {
			t.Fatalf("%s after 3 failures on two instances: let through=%v wait=%v err=%v", name, at != nil, wait, err)
		}
	}
	keys, err := client.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys %q, want the user's and the client's", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix+"throttle:{") || strings.Contains(k, "alice") || strings.Contains(k, "192.0.2.1") {
			t.Errorf("key %q: want a hash under the store's prefix", k)
		}
		if ttl := client.PTTL(context.Background(), k).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("key %q has TTL %v, want the window", k, ttl)
		}
	}
	// A refusal writes nothing; a success deletes the user's count.
	for i := range 20 {
		try(t, a, "s", "192.0.2.1", fmt.Sprint("x", i), now) // 9 fail, then the client is locked out
	}
	if n := len(client.Keys(context.Background(), prefix+"*").Val()); n != 2+9 {
		t.Fatalf("%d keys after 9 failures and 11 refusals, want 11", n)
	}
	try(t, b, "s", "198.51.100.1", "bob", now)
	at, _, _ := b.Begin(context.Background(), "s", "198.51.100.1", "bob", now)
	at.Succeeded(context.Background())
	user, _ := b.redis.names(keysFor("s", "198.51.100.1", "bob"))
	if client.Exists(context.Background(), user).Val() != 0 {
		t.Fatal("a success left the user's count")
	}
	// A count that has lost its TTL gets one at the next failure.
	user, _ = a.redis.names(keysFor("s", "203.0.113.9", "carol"))
	client.Set(context.Background(), user, 1, 0)
	try(t, a, "s", "203.0.113.9", "carol", now)
	if ttl := client.PTTL(context.Background(), user).Val(); ttl <= 0 {
		t.Fatalf("a count without TTL kept none after a failure: %v", ttl)
	}
	for _, e := range append(logsA.All(), logsB.All()...) {
		t.Errorf("logged: %s %v", e.Message, e.ContextMap())
	}
}

func TestThrottleRedisDownFailsClosed(t *testing.T) {
	port := freeTCPPort(t)
	client := redis.NewClient(&redis.Options{Addr: port, DialTimeout: 100 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	defer client.Close()
	th, _ := redisThrottle(client, "down:", 3)
	a, _, err := th.Begin(context.Background(), "s", "192.0.2.1", "alice", time.Now())
	if err == nil || a != nil {
		t.Fatalf("begin with Redis down: let through=%v err=%v, want an error", a != nil, err)
	}
	if len(th.table.inFlight) != 0 {
		t.Fatal("a failed check left an attempt in flight")
	}
}

func freeTCPPort(t testing.TB) string {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
