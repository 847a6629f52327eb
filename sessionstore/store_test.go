package sessionstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T) sessionstore.Store {
			m := sessionstore.NewMemory(0)
			t.Cleanup(func() { m.Close() })
			return m
		},
		// What the memory store holds: every key and encoded record.
		AtRest: func(t *testing.T, s sessionstore.Store) []byte {
			var all []byte
			s.(*sessionstore.Memory).Each(context.Background(), func(k sessionstore.Key, r sessionstore.Record) bool {
				b, _ := r.MarshalBinary()
				all = append(append(all, k[:]...), b...)
				return true
			})
			return all
		},
	})
}

func TestBolt(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T) sessionstore.Store {
			b, err := sessionstore.OpenBolt(filepath.Join(t.TempDir(), "s.db"), sessionstore.BoltOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		},
		AtRest: func(t *testing.T, s sessionstore.Store) []byte {
			data, err := os.ReadFile(s.(*sessionstore.Bolt).Path())
			if err != nil {
				t.Fatal(err)
			}
			return data
		},
	})
}

func TestRedis(t *testing.T) {
	runRedisConformance(t, func(t *testing.T, client redis.UniversalClient, prefix string) redisStore {
		return sessionstore.NewRedis(client, prefix)
	})
}

// redisStore is a Redis-backed store the conformance suite can clean up.
type redisStore interface {
	sessionstore.Store
	DeleteAll(context.Context) (int, error)
}

// runRedisConformance runs the conformance suite on stores that open
// makes on the shared Redis.
func runRedisConformance(t *testing.T, open func(t *testing.T, client redis.UniversalClient, prefix string) redisStore) {
	client, _ := storetest.RedisClient(t)
	runRedisConformanceOn(t, client, open)
}

// runRedisConformanceOn runs the conformance suite on stores that open
// makes on client (a single node or a Cluster). Each store has a prefix of
// its own, new on every run, so that no run sees what an earlier one left.
func runRedisConformanceOn(t *testing.T, client redis.UniversalClient, open func(t *testing.T, client redis.UniversalClient, prefix string) redisStore) {
	var prefixes sync.Map // store → prefix
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T) sessionstore.Store {
			prefix := storetest.RedisPrefix(t)
			s := open(t, client, prefix)
			prefixes.Store(s, prefix)
			t.Cleanup(func() { s.DeleteAll(context.Background()) })
			return s
		},
		// Another instance: a store of its own on the same Redis and prefix.
		Share: func(t *testing.T, s sessionstore.Store) sessionstore.Store {
			prefix, _ := prefixes.Load(s)
			return open(t, client, prefix.(string))
		},
		AtRest: func(t *testing.T, s sessionstore.Store) []byte {
			var all []byte
			ctx := context.Background()
			prefix, _ := prefixes.Load(s)
			for _, name := range redisKeys(t, client, prefix.(string)+"*") {
				v, _ := client.Get(ctx, name).Bytes()
				all = append(append(all, name...), v...)
			}
			return all
		},
	})
}

// redisKeys returns the names that match pattern, on every master of a
// Cluster or on the one server.
func redisKeys(t *testing.T, client redis.UniversalClient, pattern string) []string {
	ctx := context.Background()
	var mu sync.Mutex
	var names []string
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, pattern, 100).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			names = append(names, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cluster, ok := client.(*redis.ClusterClient); ok {
		err = cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, client)
	}
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestBoltSweepDeletesExpired(t *testing.T) {
	b, err := sessionstore.OpenBolt(filepath.Join(t.TempDir(), "s.db"), sessionstore.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	now := time.Now()
	live := sessionstore.KeyOf(sessionstore.NewID())
	b.Create(ctx, live, sessionstore.Record{User: "live", Created: now, LastSeen: now, Expires: now.Add(time.Hour)})
	for range 10 {
		b.Create(ctx, sessionstore.KeyOf(sessionstore.NewID()), sessionstore.Record{User: "old", Created: now, LastSeen: now, Expires: now.Add(time.Millisecond)})
	}
	n, err := b.Sweep(now.Add(time.Second))
	if err != nil || n != 10 {
		t.Fatalf("Sweep = %d, %v; want 10, nil", n, err)
	}
	if b.Len() != 1 {
		t.Fatalf("%d records left, want 1", b.Len())
	}
	if _, found, _ := b.Find(ctx, live); !found {
		t.Fatal("sweep deleted a live session")
	}
}

// Claims whose time has passed are swept with expired sessions, by both
// stores that keep them in the process or file.
func TestSweepDeletesEndedClaims(t *testing.T) {
	ctx := context.Background()
	b, err := sessionstore.OpenBolt(filepath.Join(t.TempDir(), "s.db"), sessionstore.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := sessionstore.NewMemory(20 * time.Millisecond)
	defer m.Close()
	for _, s := range []interface {
		sessionstore.Store
		sessionstore.Claimer
	}{b, m} {
		for i := range 10 {
			if ok, err := s.Claim(ctx, sessionstore.ClaimKey("test", fmt.Sprint(i)), time.Now().Add(10*time.Millisecond)); !ok || err != nil {
				t.Fatalf("%T: Claim = %v, %v", s, ok, err)
			}
		}
		s.Claim(ctx, sessionstore.ClaimKey("test", "live"), time.Now().Add(time.Hour))
	}
	if _, err := b.Sweep(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := sessionstore.ClaimCount(b); n != 1 {
		t.Fatalf("bolt: %d claims left after a sweep, want the live one", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for sessionstore.ClaimCount(m) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("memory: the sweeper left %d claims, want the live one", sessionstore.ClaimCount(m))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, s := range []sessionstore.Claimer{b, m} {
		if ok, _ := s.Claim(ctx, sessionstore.ClaimKey("test", "live"), time.Now().Add(time.Hour)); ok {
			t.Fatalf("%T: the sweep dropped a live claim", s)
		}
	}
	// With every claim ended, bolt drops the bucket; claims work on.
	if _, err := b.Sweep(time.Now().Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := sessionstore.ClaimCount(b); n != 0 {
		t.Fatalf("bolt: %d claims left after they all ended", n)
	}
	if ok, err := b.Claim(ctx, sessionstore.ClaimKey("test", "live"), time.Now().Add(time.Hour)); !ok || err != nil {
		t.Fatalf("Claim after the bucket went = %v, %v", ok, err)
	}
	if err := b.Release(ctx, sessionstore.ClaimKey("test", "never")); err != nil {
		t.Fatal(err)
	}
}

func TestMemorySweepDeletesExpired(t *testing.T) {
	m := sessionstore.NewMemory(20 * time.Millisecond)
	defer m.Close()
	now := time.Now()
	m.Create(context.Background(), sessionstore.KeyOf(sessionstore.NewID()), sessionstore.Record{Created: now, LastSeen: now, Expires: now.Add(10 * time.Millisecond)})
	deadline := time.Now().Add(5 * time.Second)
	for m.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not delete an expired record")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBoltKeepsSessionsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	b, err := sessionstore.OpenBolt(path, sessionstore.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key := sessionstore.KeyOf(sessionstore.NewID())
	now := time.Now()
	b.Create(context.Background(), key, sessionstore.Record{User: "alice", Created: now, LastSeen: now, Expires: now.Add(time.Hour)})
	b.Close()
	b, err = sessionstore.OpenBolt(path, sessionstore.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rec, found, err := b.Find(context.Background(), key)
	if err != nil || !found || rec.User != "alice" {
		t.Fatalf("after reopen: %+v %v %v", rec, found, err)
	}
}

func TestBoltLockTimeout(t *testing.T) {
	// A second open of the same file waits for the lock, then fails with a
	// clear error instead of hanging.
	path := filepath.Join(t.TempDir(), "s.db")
	b, err := sessionstore.OpenBolt(path, sessionstore.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = sessionstore.OpenBolt(path, sessionstore.BoltOptions{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		t.Fatal("a second open of a locked bolt file succeeded")
	}
}

func TestRealmKey(t *testing.T) {
	var id sessionstore.ID
	for i := range id {
		id[i] = byte(i)
	}
	if sessionstore.RealmKey("", id) != sessionstore.KeyOf(id) {
		t.Error(`RealmKey("", id) is not KeyOf(id)`)
	}
	// Known answers, computed outside Go: stored keys depend on them, so
	// the encoding may never change silently.
	for realm, want := range map[string]string{
		"":       "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd",
		"site-a": "a4a40e00d756e036d665daa50a5bdf4fe7d2222426ccb1ea16ee9a24647205a4",
	} {
		if got := sessionstore.RealmKey(realm, id).String(); got != want {
			t.Errorf("RealmKey(%q, 0..31) = %s, want %s", realm, got, want)
		}
	}
	// No two (realm, ID) pairs share a key, including pairs whose plain
	// concatenations are equal.
	var id2 sessionstore.ID
	copy(id2[:], append([]byte("b"), id[:31]...))
	pairs := []struct {
		realm string
		id    sessionstore.ID
	}{
		{"", id}, {"a", id}, {"b", id}, {"A", id}, {"a\x00", id}, {"ab", id}, {"a", id2}, {"", id2},
		{"edgesession realm key", id}, {string(make([]byte, 200)), id},
	}
	seen := map[sessionstore.Key]int{}
	for i, p := range pairs {
		k := sessionstore.RealmKey(p.realm, p.id)
		if k != sessionstore.RealmKey(p.realm, p.id) {
			t.Fatalf("RealmKey(%q) is not deterministic", p.realm)
		}
		if j, ok := seen[k]; ok {
			t.Errorf("pairs %d (%q) and %d (%q) share a key", j, pairs[j].realm, i, p.realm)
		}
		seen[k] = i
	}
}

func TestRecordDecodesVersion1(t *testing.T) {
	// A version-1 record as written before identity fields existed: times
	// 1, 2, 3 ns; user "al"; data {"k": "v"}.
	v1 := []byte{1, 2, 4, 6, 2, 'a', 'l', 1, 1, 'k', 1, 'v'}
	var rec sessionstore.Record
	if err := rec.UnmarshalBinary(v1); err != nil {
		t.Fatal(err)
	}
	want := sessionstore.Record{User: "al", Data: map[string]string{"k": "v"}, Created: time.Unix(0, 1), LastSeen: time.Unix(0, 2), Expires: time.Unix(0, 3)}
	if err := storetest.Diff(rec, want); err != nil {
		t.Fatal(err)
	}
	if rec.Source != "" || rec.Groups != nil {
		t.Fatalf("identity fields of a version-1 record: %+v", rec)
	}
	// Written back, it is version 2 and reads the same.
	b, err := rec.MarshalBinary()
	if err != nil || b[0] != 2 {
		t.Fatalf("re-encoded: %x, %v; want version 2", b, err)
	}
	var again sessionstore.Record
	if err := again.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if err := storetest.Diff(again, want); err != nil {
		t.Fatal(err)
	}
	// Version-1 bytes are not read as version 2, nor the other way round.
	for _, b := range [][]byte{append([]byte{2}, v1[1:]...), {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {3, 0, 0, 0, 0, 0}} {
		if err := new(sessionstore.Record).UnmarshalBinary(b); err == nil {
			t.Errorf("UnmarshalBinary(%x) succeeded", b)
		}
	}
}

func TestMarshalRejectsInvalidUTF8(t *testing.T) {
	bad := "\xc3\x28"
	for name, rec := range map[string]sessionstore.Record{
		"user":        {User: bad},
		"source":      {Source: bad},
		"fingerprint": {Fingerprint: bad},
		"site":        {Site: bad},
		"group":       {Groups: []string{"ok", bad}},
		"client IP":   {ClientIP: bad},
		"user agent":  {UserAgent: bad},
		"data key":    {Data: map[string]string{bad: "v"}},
		"data value":  {Data: map[string]string{"k": bad}},
	} {
		if b, err := rec.MarshalBinary(); err == nil {
			t.Errorf("%s: MarshalBinary = %x, want an error (it could never be read back)", name, b)
		}
	}
	// A store refuses such a change and keeps the record as it was.
	m := sessionstore.NewMemory(0)
	defer m.Close()
	ctx := context.Background()
	key := sessionstore.KeyOf(sessionstore.NewID())
	now := time.Now()
	m.Create(ctx, key, sessionstore.Record{User: "alice", Data: map[string]string{"k": "v"}, Created: now, LastSeen: now, Expires: now.Add(time.Hour)})
	if _, _, err := m.Update(ctx, key, sessionstore.Change{Set: map[string]string{"k": bad}}); err == nil {
		t.Error("Update with invalid UTF-8 succeeded")
	}
	if rec, found, _ := m.Find(ctx, key); !found || rec.Data["k"] != "v" {
		t.Errorf("after a refused Update: %+v, %v", rec, found)
	}
}

func TestCloneAndApplyShareNothing(t *testing.T) {
	rec := sessionstore.Record{User: "alice", Groups: []string{"a", "b"}, Data: map[string]string{"k": "v"}}
	c := rec.Clone()
	c.Groups[0], c.Data["k"] = "x", "x"
	if rec.Groups[0] != "a" || rec.Data["k"] != "v" {
		t.Fatalf("changing a clone changed the original: %+v", rec)
	}
	applied := rec.Apply(sessionstore.Change{Delete: []string{"k"}, Set: map[string]string{"n": "1"}})
	applied.Groups[1] = "x"
	if rec.Groups[1] != "b" || rec.Data["k"] != "v" || len(rec.Data) != 1 {
		t.Fatalf("Apply changed the original: %+v", rec)
	}
}
