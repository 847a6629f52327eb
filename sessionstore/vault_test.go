package sessionstore_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// A bolt file gets the vault's bucket at the first write, not before (a
// store that never keeps a second factor keeps its file as it was), and
// what the vault holds is there after the file is opened again, past any
// sweep.
func TestBoltVaultSurvivesReopenAndSweeps(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	b, err := sessionstore.OpenBolt(path, sessionstore.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := b.VaultGet(ctx, "mfa/user/alice"); v != nil || err != nil {
		t.Fatalf("VaultGet on a new file = %q, %v", v, err)
	}
	if sessionstore.HasVaultBucket(b) {
		t.Fatal("a file that never kept a vault value has the vault's bucket")
	}
	if ok, err := b.VaultSwap(ctx, "mfa/user/alice", nil, []byte(`{"totp":{}}`)); !ok || err != nil {
		t.Fatalf("VaultSwap = %v, %v", ok, err)
	}
	if !sessionstore.HasVaultBucket(b) {
		t.Fatal("no vault bucket after a write")
	}
	now := time.Now()
	b.Create(ctx, sessionstore.KeyOf(sessionstore.NewID()), sessionstore.Record{User: "alice", Created: now, LastSeen: now, Expires: now.Add(time.Millisecond)})
	if n, err := b.Sweep(now.Add(100 * 365 * 24 * time.Hour)); n != 1 || err != nil {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = sessionstore.OpenBolt(path, sessionstore.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if v, err := b.VaultGet(ctx, "mfa/user/alice"); string(v) != `{"totp":{}}` || err != nil {
		t.Fatalf("after reopening: %q, %v", v, err)
	}
	if ok, err := b.VaultSwap(ctx, "mfa/user/alice", []byte(`{"totp":{}}`), nil); !ok || err != nil {
		t.Fatalf("delete after reopening = %v, %v", ok, err)
	}
}

// The memory store's sweeper leaves the vault alone.
func TestMemoryVaultSurvivesSweeps(t *testing.T) {
	ctx := context.Background()
	m := sessionstore.NewMemory(0)
	defer m.Close()
	m.VaultSwap(ctx, "mfa/user/alice", nil, []byte("x"))
	sessionstore.SweepMemory(m, time.Now().Add(100*365*24*time.Hour))
	if v, _ := m.VaultGet(ctx, "mfa/user/alice"); string(v) != "x" {
		t.Fatalf("after a sweep: %q", v)
	}
}

// In Redis a vault name is prefix+"vault:"+hex(SHA-256), with no TTL: no
// session name (no SCAN of sessions, no DeleteAll, no cache invalidation
// takes it for one), and it never expires.
func TestRedisVaultKeys(t *testing.T) {
	client, _ := storetest.RedisClient(t)
	ctx := context.Background()
	prefix := storetest.RedisPrefix(t)
	r := sessionstore.NewRedis(client, prefix)
	t.Cleanup(func() { r.DeleteAll(ctx) })
	c := newRedisCache(t, client, prefix, time.Second)
	for _, name := range []string{"mfa/user/alice", "mfa/handle/00ff", "{slot}*?", ""} {
		key := sessionstore.VaultRedisName(r, name)
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `vault:[0-9a-f]{64}$`).MatchString(key) {
			t.Fatalf("vault %q is kept under %q", name, key)
		}
		if sessionstore.IsSessionName(r, key) || sessionstore.CachedKeyOf(c, key) {
			t.Fatalf("%q is taken for a session's name", key)
		}
	}
	if ok, err := c.VaultSwap(ctx, "mfa/user/alice", nil, []byte("v")); !ok || err != nil {
		t.Fatalf("VaultSwap = %v, %v", ok, err)
	}
	key := sessionstore.VaultRedisName(r, "mfa/user/alice")
	if v, _ := client.Get(ctx, key).Result(); v != "v" {
		t.Fatalf("Redis holds %q under %s", v, key)
	}
	if ttl, _ := client.TTL(ctx, key).Result(); ttl != -1 {
		t.Fatalf("TTL of a vault key = %v, want none (-1)", ttl)
	}
	if n, err := c.DeleteAll(ctx); n != 0 || err != nil {
		t.Fatalf("DeleteAll = %d, %v", n, err)
	}
	if v, _ := r.VaultGet(ctx, "mfa/user/alice"); string(v) != "v" {
		t.Fatal("DeleteAll removed a vault value")
	}
	client.Del(ctx, key)
}

// Two Caddy instances are two Redis clients (connection pools of their
// own), one with the cache: compare-and-swap increments from many
// goroutines on both lose none.
func TestRedisVaultTwoClients(t *testing.T) {
	client, url := storetest.RedisClient(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	other := redis.NewClient(opts)
	t.Cleanup(func() { other.Close() })
	prefix := storetest.RedisPrefix(t)
	ctx := context.Background()
	vaults := []sessionstore.Vault{sessionstore.NewRedis(client, prefix), newRedisCache(t, other, prefix, time.Minute)}
	const goroutines, each = 8, 25
	var wg sync.WaitGroup
	for _, v := range vaults {
		for range goroutines {
			wg.Go(func() {
				for range each {
					if err := storetest.VaultIncrement(ctx, v, "counter"); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	want := strconv.Itoa(len(vaults) * goroutines * each)
	for i, v := range vaults {
		if got, err := v.VaultGet(ctx, "counter"); string(got) != want || err != nil {
			t.Fatalf("client %d reads %q, %v; want %s", i, got, err, want)
		}
	}
	client.Del(ctx, sessionstore.VaultRedisName(sessionstore.NewRedis(client, prefix), "counter"))
}
