package sessionstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	client, _ := storetest.RedisClient(t)
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T) sessionstore.Store {
			return sessionstore.NewRedis(client, "edgesession-test:"+t.Name()+":")
		},
		AtRest: func(t *testing.T, s sessionstore.Store) []byte {
			var all []byte
			ctx := context.Background()
			iter := client.Scan(ctx, 0, "edgesession-test:"+t.Name()+":*", 100).Iterator()
			for iter.Next(ctx) {
				v, _ := client.Get(ctx, iter.Val()).Bytes()
				all = append(append(all, iter.Val()...), v...)
			}
			if err := iter.Err(); err != nil {
				t.Fatal(err)
			}
			return all
		},
	})
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
