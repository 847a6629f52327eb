package sessionstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

func TestHandle(t *testing.T) {
	id := sessionstore.NewID()
	k := sessionstore.KeyOf(id)
	h := k.Handle()
	if string(h[:]) != string(k[:16]) {
		t.Fatal("a handle is not the first half of its key")
	}
	s := h.String()
	if len(s) != 32 || strings.Contains(k.String(), fmt.Sprintf("%x", id[:])) {
		t.Fatalf("handle %q", s)
	}
	for _, in := range []string{s, strings.ToUpper(s)} {
		if got, err := sessionstore.ParseHandle(in); err != nil || got != h {
			t.Fatalf("ParseHandle(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", s[:31], s + "0", "zz" + s[2:], k.String()} {
		if _, err := sessionstore.ParseHandle(bad); err == nil {
			t.Errorf("ParseHandle(%q) succeeded", bad)
		}
	}
}

// shortSessions creates n sessions of user that expire in d, and one that
// does not.
func shortSessions(t *testing.T, s sessionstore.Store, user string, n int, d time.Duration) sessionstore.Key {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	for range n {
		if err := s.Create(ctx, sessionstore.KeyOf(sessionstore.NewID()), sessionstore.Record{User: user, Created: now, LastSeen: now, Expires: now.Add(d)}); err != nil {
			t.Fatal(err)
		}
	}
	live := sessionstore.KeyOf(sessionstore.NewID())
	if err := s.Create(ctx, live, sessionstore.Record{User: user, Created: now, LastSeen: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return live
}

func TestMemoryIndexIsSweptAndTidy(t *testing.T) {
	m := sessionstore.NewMemory(20 * time.Millisecond)
	defer m.Close()
	live := shortSessions(t, m, "alice", 5, 10*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for sessionstore.IndexSize(m, "alice") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper left %d keys in the index, want 1", sessionstore.IndexSize(m, "alice"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.Delete(context.Background(), live)
	if n := sessionstore.IndexSize(m, "alice"); n != 0 {
		t.Fatalf("after the last session's delete the index holds %d keys", n)
	}
}

func TestBoltIndexIsSweptAndTidy(t *testing.T) {
	b, err := sessionstore.OpenBolt(filepath.Join(t.TempDir(), "s.db"), sessionstore.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	live := shortSessions(t, b, "alice", 5, time.Millisecond)
	if n, err := b.Sweep(time.Now().Add(time.Second)); err != nil || n != 5 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if n := sessionstore.IndexSize(b, "alice"); n != 1 {
		t.Fatalf("after the sweep the index holds %d keys, want 1", n)
	}
	b.Delete(context.Background(), live)
	if n := sessionstore.IndexSize(b, "alice"); n != 0 {
		t.Fatalf("after the last session's delete the index holds %d keys", n)
	}
}

// TestBoltIndexIsBuiltForAnOldFile: a file written before the index
// existed gets one when it is opened.
func TestBoltIndexIsBuiltForAnOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	b, err := sessionstore.OpenBolt(path, sessionstore.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	var keys []sessionstore.Key
	for _, user := range []string{"alice", "alice", "bob", ""} {
		k := sessionstore.KeyOf(sessionstore.NewID())
		b.Create(ctx, k, sessionstore.Record{User: user, Created: now, LastSeen: now, Expires: now.Add(time.Hour)})
		keys = append(keys, k)
	}
	b.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("users")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	b, err = sessionstore.OpenBolt(path, sessionstore.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	es, err := b.ListUser(ctx, "alice")
	if err != nil || len(es) != 2 {
		t.Fatalf("ListUser(alice) on a reopened old file = %d, %v; want 2", len(es), err)
	}
	if deleted, err := b.DeleteUser(ctx, "bob"); err != nil || len(deleted) != 1 || deleted[0] != keys[2] {
		t.Fatalf("DeleteUser(bob) = %v, %v", deleted, err)
	}
}

func TestRedisIndexIsTrimmedAndExpires(t *testing.T) {
	client, _ := storetest.RedisClient(t)
	ctx := context.Background()
	prefix := storetest.RedisPrefix(t)
	r := sessionstore.NewRedis(client, prefix)
	defer r.DeleteAll(ctx)
	live := shortSessions(t, r, "alice", 5, 300*time.Millisecond)
	set := r.UserIndexName("alice")
	if strings.Contains(set, "alice") {
		t.Fatalf("the index's name %q holds the user's name", set)
	}
	if n := sessionstore.IndexSize(r, "alice"); n != 6 {
		t.Fatalf("index holds %d keys, want 6", n)
	}
	ttl := client.PTTL(ctx, set).Val()
	if ttl < 59*time.Minute || ttl > time.Hour+time.Second {
		t.Fatalf("the index's TTL is %v, want its latest session's (1h)", ttl)
	}
	time.Sleep(400 * time.Millisecond)
	if es, err := r.ListUser(ctx, "alice"); err != nil || len(es) != 1 {
		t.Fatalf("ListUser = %d, %v", len(es), err)
	}
	if n := sessionstore.IndexSize(r, "alice"); n != 1 {
		t.Fatalf("after a read the index holds %d keys, want 1 (trimmed)", n)
	}
	r.Delete(ctx, live)
	if n := sessionstore.IndexSize(r, "alice"); n != 0 {
		t.Fatalf("after the last session's delete the index holds %d keys", n)
	}
	// A session whose key was deleted behind the store's back is dropped
	// from the index at the next read.
	k := sessionstore.KeyOf(sessionstore.NewID())
	now := time.Now()
	r.Create(ctx, k, sessionstore.Record{User: "alice", Created: now, LastSeen: now, Expires: now.Add(time.Hour)})
	client.Del(ctx, prefix+k.String())
	if es, _ := r.ListUser(ctx, "alice"); len(es) != 0 {
		t.Fatalf("ListUser lists a session whose key is gone: %+v", es)
	}
	if n := sessionstore.IndexSize(r, "alice"); n != 0 {
		t.Fatalf("the index keeps %d keys that lead nowhere", n)
	}
	// A short session's expiry shortens nothing: the set lives as long
	// as its latest session.
	shortSessions(t, r, "bob", 0, 0)
	r.Create(ctx, sessionstore.KeyOf(sessionstore.NewID()), sessionstore.Record{User: "bob", Created: now, LastSeen: now, Expires: time.Now().Add(time.Minute)})
	if ttl := client.PTTL(ctx, r.UserIndexName("bob")).Val(); ttl < 59*time.Minute {
		t.Fatalf("a shorter session cut the index's TTL to %v", ttl)
	}
}
