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

// BenchmarkUserIndex measures listing and revoking one user's 5 sessions
// in a store of 1K sessions and in one of 1M (set EDGESESSION_SCALE=1;
// default 100K), the others spread over one user per 10 sessions. With the
// index both cost the same at any size; "scan" is what listing costs
// without it (Lister.Each over every session), for comparison.
//
// Redis at 1M needs about 400 MB in Redis and a minute to fill; it runs
// only with EDGESESSION_SCALE=1 and EDGESESSION_BENCH_REDIS=1 (at the
// smaller sizes it runs whenever Redis is there).
//
//	EDGESESSION_SCALE=1 go test -run '^$' -bench UserIndex -benchtime 2000x ./sessionstore/
func BenchmarkUserIndex(b *testing.B) {
	big := 100_000
	if os.Getenv("EDGESESSION_SCALE") == "1" {
		big = 1_000_000
	}
	stores := []struct {
		name string
		open func(b *testing.B) sessionstore.Store
	}{
		{"memory", func(b *testing.B) sessionstore.Store {
			m := sessionstore.NewMemory(0)
			b.Cleanup(func() { m.Close() })
			return m
		}},
		{"bolt", func(b *testing.B) sessionstore.Store {
			s, err := sessionstore.OpenBolt(filepath.Join(b.TempDir(), "s.db"), sessionstore.BoltOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"redis", func(b *testing.B) sessionstore.Store {
			client, _ := storetest.RedisClient(b)
			prefix := storetest.RedisPrefix(b)
			b.Cleanup(func() { dropPrefix(client, prefix) })
			return sessionstore.NewRedis(client, prefix)
		}},
	}
	for _, st := range stores {
		for _, n := range []int{1_000, big} {
			b.Run(fmt.Sprintf("store=%s/sessions=%d", st.name, n), func(b *testing.B) {
				if st.name == "redis" && n > 100_000 && os.Getenv("EDGESESSION_BENCH_REDIS") != "1" {
					b.Skip("SKIP: Redis at 1M sessions needs EDGESESSION_BENCH_REDIS=1")
				}
				s := st.open(b)
				fillUsers(b, s, n-5)
				ix := s.(sessionstore.UserIndex)
				ctx := context.Background()
				mine := createTarget(b, s)
				b.Run("list", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if es, err := ix.ListUser(ctx, "target"); err != nil || len(es) != 5 {
							b.Fatal(len(es), err)
						}
					}
				})
				b.Run("revoke", func(b *testing.B) {
					for b.Loop() {
						if keys, err := ix.DeleteUser(ctx, "target"); err != nil || len(keys) != len(mine) {
							b.Fatal(len(keys), err)
						}
						b.StopTimer()
						mine = createTarget(b, s)
						b.StartTimer()
					}
				})
				if l, ok := s.(sessionstore.Lister); ok {
					b.Run("scan", func(b *testing.B) {
						for b.Loop() {
							found := 0
							l.Each(ctx, func(_ sessionstore.Key, r sessionstore.Record) bool {
								if r.User == "target" {
									found++
								}
								return true
							})
							if found != 5 {
								b.Fatal(found)
							}
						}
					})
				}
			})
		}
	}
}

// createTarget creates the measured user's 5 sessions.
func createTarget(b *testing.B, s sessionstore.Store) []sessionstore.Key {
	keys := make([]sessionstore.Key, 5)
	for i := range keys {
		keys[i] = sessionstore.KeyOf(sessionstore.NewID())
	}
	rec := smallRecord(time.Now())
	rec.User = "target"
	if bs, ok := s.(*sessionstore.Bolt); ok {
		if err := bs.CreateMany(context.Background(), keys, rec); err != nil {
			b.Fatal(err)
		}
		return keys
	}
	for _, k := range keys {
		if err := s.Create(context.Background(), k, rec); err != nil {
			b.Fatal(err)
		}
	}
	return keys
}

// fillUsers creates n sessions, 10 per user.
func fillUsers(b *testing.B, s sessionstore.Store, n int) {
	ctx := context.Background()
	now := time.Now()
	if bs, ok := s.(*sessionstore.Bolt); ok {
		keys := make([]sessionstore.Key, n)
		for i := range keys {
			keys[i] = sessionstore.KeyOf(sessionstore.NewID())
		}
		err := bs.CreateEach(ctx, keys, func(i int) sessionstore.Record {
			rec := smallRecord(now)
			rec.User = fmt.Sprint("user-", i/10)
			return rec
		})
		if err != nil {
			b.Fatal(err)
		}
		return
	}
	var wg sync.WaitGroup
	const workers = 16
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				rec := smallRecord(now)
				rec.User = fmt.Sprint("user-", i/10)
				if err := s.Create(ctx, sessionstore.KeyOf(sessionstore.NewID()), rec); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// dropPrefix deletes every key under prefix.
func dropPrefix(client interface {
	Scan(ctx context.Context, cursor uint64, match string, count int64) *redis.ScanCmd
	Unlink(ctx context.Context, keys ...string) *redis.IntCmd
}, prefix string) {
	ctx := context.Background()
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			client.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		client.Unlink(ctx, batch...)
	}
}
