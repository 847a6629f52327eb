package redisclients

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// cacheTTL is both caches' longest keep: sessionstore.RedisCache's max age
// (its default) and the TTL given to rueidis's DoCache.
const cacheTTL = time.Second

// loadGoroutines is how many goroutines the parallel64 runs use in all, a
// server with many requests in flight (where auto-pipelining matters).
const loadGoroutines = 64

// fixture is one Redis, one stored session and every reader of it.
type fixture struct {
	ctx    context.Context
	client *redis.Client // go-redis, as the store uses it
	writer *redis.Client // another client, for the invalidation test
	plain  *sessionstore.Redis
	cached *sessionstore.RedisCache
	rdo    rueidis.Client // DisableCache: plain Do
	rcache rueidis.Client // client-side cache on (default OPTIN tracking)
	prefix string
	rec    sessionstore.Record
	value  []byte
	key    sessionstore.Key
	name   string
}

// record is a realistic session: a logged-in user with groups, the client
// that logged in and a few data keys.
func record(now time.Time) sessionstore.Record {
	return sessionstore.Record{
		User:        "alice.martin@example.com",
		Source:      "oidc:corp",
		Fingerprint: "k3Jb9vQ2xYh0T7mWcLr5pN1sAe8uGd4fZo6iHq2tVwE",
		Site:        "app.example.com",
		Groups:      []string{"staff", "engineering", "vpn-users", "grafana-editors"},
		ClientIP:    "203.0.113.42",
		UserAgent:   "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		Data: map[string]string{
			"csrf":      "Qm9vdHN0cmFwLXRva2VuLWZvci1jc3JmLXByb3RlY3Q",
			"return_to": "/dashboard/projects/42?tab=overview",
			"theme":     "dark",
			"locale":    "en-GB",
		},
		Created:  now,
		LastSeen: now,
		Expires:  now.Add(time.Hour),
	}
}

func setup(tb testing.TB) *fixture {
	tb.Helper()
	client, url := storetest.RedisClient(tb)
	ctx := context.Background()
	f := &fixture{
		ctx:    ctx,
		client: client,
		prefix: storetest.RedisPrefix(tb),
		rec:    record(time.Now()),
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	f.writer = redis.NewClient(opts)
	tb.Cleanup(func() { f.writer.Close() })
	tb.Cleanup(func() { f.clean(tb) }) // runs after the readers' closes

	f.plain = sessionstore.NewRedis(client, f.prefix)
	f.key = sessionstore.KeyOf(sessionstore.NewID())
	f.name = f.prefix + f.key.String()
	if f.value, err = f.rec.MarshalBinary(); err != nil {
		tb.Fatal(err)
	}
	if err := f.plain.Create(ctx, f.key, f.rec); err != nil {
		tb.Fatal(err)
	}

	f.cached, err = sessionstore.NewRedisCache(f.plain, cacheTTL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.cached.Close() })
	for start := time.Now(); !f.cached.Tracking(); time.Sleep(time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			tb.Fatal("RedisCache: not tracking within 5s")
		}
	}

	ropt, err := rueidis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	ropt.DisableCache = true
	if f.rdo, err = rueidis.NewClient(ropt); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.rdo.Close)
	ropt.DisableCache = false
	if f.rcache, err = rueidis.NewClient(ropt); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.rcache.Close)
	return f
}

// clean removes every key under the fixture's prefix (sessions and the
// user index).
func (f *fixture) clean(tb testing.TB) {
	iter := f.writer.Scan(f.ctx, 0, f.prefix+"*", 500).Iterator()
	var names []string
	for iter.Next(f.ctx) {
		names = append(names, iter.Val())
	}
	if len(names) > 0 {
		f.writer.Unlink(f.ctx, names...)
	}
	if err := iter.Err(); err != nil {
		tb.Log("clean:", err)
	}
}

// decode is what sessionstore.Redis.Find does with a GET's answer.
func decode(res rueidis.RedisResult) (sessionstore.Record, bool, error) {
	v, err := res.AsBytes()
	if rueidis.IsRedisNil(err) {
		return sessionstore.Record{}, false, nil
	}
	if err != nil {
		return sessionstore.Record{}, false, err
	}
	var rec sessionstore.Record
	if rec.UnmarshalBinary(v) != nil || rec.Expired(time.Now()) {
		return sessionstore.Record{}, false, nil
	}
	return rec, true, nil
}

// rueidisFind is sessionstore.Redis.Find on rueidis, without its cache.
func rueidisFind(ctx context.Context, c rueidis.Client, name string) (sessionstore.Record, bool, error) {
	return decode(c.Do(ctx, c.B().Get().Key(name).Build()))
}

// rueidisFindCached is sessionstore.Redis.Find on rueidis's client-side
// cache; hit tells whether the answer came from memory.
func rueidisFindCached(ctx context.Context, c rueidis.Client, name string) (rec sessionstore.Record, found, hit bool, err error) {
	res := c.DoCache(ctx, c.B().Get().Key(name).Cache(), cacheTTL)
	rec, found, err = decode(res)
	return rec, found, res.IsCacheHit(), err
}

// run benchmarks find serial, parallel (GOMAXPROCS goroutines) and
// parallel64 (loadGoroutines goroutines). For a cache, misses is called
// as each run starts and returns how many of its n Finds missed; the
// count is reported as "misses" (1 s max age/TTL: about one a second).
func run(b *testing.B, find func() (bool, error), misses func() func(n int) int) {
	check := func(b *testing.B, found bool, err error) bool {
		if err != nil || !found {
			b.Errorf("found %v, err %v", found, err)
			return false
		}
		return true
	}
	report := func(b *testing.B, done func(int) int) {
		if done != nil {
			b.ReportMetric(float64(done(b.N)), "misses")
		}
	}
	start := func() func(int) int {
		if misses == nil {
			return nil
		}
		return misses()
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		done := start()
		for b.Loop() {
			if found, err := find(); !check(b, found, err) {
				return
			}
		}
		report(b, done)
	})
	parallel := func(b *testing.B) {
		b.ReportAllocs()
		done := start()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if found, err := find(); !check(b, found, err) {
					return
				}
			}
		})
		report(b, done)
	}
	b.Run("parallel", parallel)
	b.Run("parallel64", func(b *testing.B) {
		b.SetParallelism(max(1, loadGoroutines/runtime.GOMAXPROCS(0)))
		parallel(b)
	})
}

// BenchmarkGoRedisGET is sessionstore.Redis.Find: one GET with go-redis
// v9 (connection pool, one command per connection at a time), then
// UnmarshalBinary.
func BenchmarkGoRedisGET(b *testing.B) {
	f := setup(b)
	run(b, func() (bool, error) {
		_, found, err := f.plain.Find(f.ctx, f.key)
		return found, err
	}, nil)
}

// BenchmarkRueidisGET is the same with rueidis's Do (auto-pipelining over
// one connection when requests are concurrent), client-side cache off.
func BenchmarkRueidisGET(b *testing.B) {
	f := setup(b)
	run(b, func() (bool, error) {
		_, found, err := rueidisFind(f.ctx, f.rdo, f.name)
		return found, err
	}, nil)
}

// BenchmarkRueidisDoCacheHit is rueidis's DoCache (TTL 1s) answered from
// its client-side cache, then UnmarshalBinary as in Redis.Find.
func BenchmarkRueidisDoCacheHit(b *testing.B) {
	f := setup(b)
	if _, _, _, err := rueidisFindCached(f.ctx, f.rcache, f.name); err != nil {
		b.Fatal(err)
	}
	var missed atomic.Int64 // rare: no contention
	run(b, func() (bool, error) {
		_, found, hit, err := rueidisFindCached(f.ctx, f.rcache, f.name)
		if !hit {
			missed.Add(1)
		}
		return found, err
	}, func() func(int) int {
		m0 := missed.Load()
		return func(int) int { return int(missed.Load() - m0) }
	})
}

// BenchmarkRedisCacheHit is sessionstore.RedisCache.Find (max age 1s)
// answered from memory: a map read under an RWMutex and a Clone of the
// decoded record.
func BenchmarkRedisCacheHit(b *testing.B) {
	f := setup(b)
	if _, _, err := f.cached.Find(f.ctx, f.key); err != nil {
		b.Fatal(err)
	}
	run(b, func() (bool, error) {
		_, found, err := f.cached.Find(f.ctx, f.key)
		return found, err
	}, func() func(int) int {
		h0 := f.cached.Hits()
		return func(n int) int { return n - int(f.cached.Hits()-h0) }
	})
}

// TestInvalidationLatency logs, for each cache, how long after another
// client's SET or DEL of a cached session the cached reader sees the
// change: from just before the writer sends the command (so it includes
// the writer's round trip, logged as "write rtt") until a Find that
// polls without pause returns the new record, or not found. Not
// asserted: it is a measurement.
func TestInvalidationLatency(t *testing.T) {
	const rounds = 100
	f := setup(t)
	t.Logf("record: %d bytes encoded", len(f.value))
	readers := []struct {
		name string
		find func(key sessionstore.Key) (rec sessionstore.Record, found, hit bool)
	}{
		{"RedisCache", func(key sessionstore.Key) (sessionstore.Record, bool, bool) {
			h := f.cached.Hits()
			rec, found, err := f.cached.Find(f.ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			return rec, found, f.cached.Hits() != h
		}},
		{"rueidis-DoCache", func(key sessionstore.Key) (sessionstore.Record, bool, bool) {
			rec, found, hit, err := rueidisFindCached(f.ctx, f.rcache, f.prefix+key.String())
			if err != nil {
				t.Fatal(err)
			}
			return rec, found, hit
		}},
	}
	for _, r := range readers {
		for _, op := range []string{"SET", "DEL"} {
			t.Run(r.name+"/"+op, func(t *testing.T) {
				key := sessionstore.KeyOf(sessionstore.NewID())
				name := f.prefix + key.String()
				write := func(version int) {
					rec := f.rec.Clone()
					rec.Data["version"] = strconv.Itoa(version)
					v, err := rec.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					if err := f.writer.Set(f.ctx, name, v, time.Hour).Err(); err != nil {
						t.Fatal(err)
					}
				}
				// until polls find until cond holds, for at most 2s.
				until := func(what string, cond func(rec sessionstore.Record, found, hit bool) bool) {
					for start := time.Now(); !cond(r.find(key)); runtime.Gosched() {
						if time.Since(start) > 2*time.Second {
							t.Fatalf("%s: not within 2s", what)
						}
					}
				}
				var lat, rtt []time.Duration
				version := 0
				write(version)
				for range rounds {
					if op == "DEL" {
						write(version)
					}
					// The reader holds the current version in its cache.
					until("cached", func(rec sessionstore.Record, found, hit bool) bool {
						return found && hit && rec.Data["version"] == strconv.Itoa(version)
					})
					start := time.Now()
					if op == "SET" {
						version++
						write(version)
					} else if err := f.writer.Del(f.ctx, name).Err(); err != nil {
						t.Fatal(err)
					}
					rtt = append(rtt, time.Since(start))
					until("change seen", func(rec sessionstore.Record, found, _ bool) bool {
						if op == "DEL" {
							return !found
						}
						return found && rec.Data["version"] == strconv.Itoa(version)
					})
					lat = append(lat, time.Since(start))
				}
				slices.Sort(lat)
				slices.Sort(rtt)
				t.Logf("%s: change seen after median %v (p90 %v, max %v); write rtt median %v; %d changes",
					r.name+" "+op, lat[rounds/2], lat[rounds*9/10], lat[rounds-1], rtt[rounds/2], rounds)
			})
		}
	}
}

// BenchmarkUnmarshalRecord is the decoding that every answer from Redis
// (and every rueidis cache hit, which keeps the bytes) costs; RedisCache
// keeps the decoded record and pays a Clone instead.
func BenchmarkUnmarshalRecord(b *testing.B) {
	v, err := record(time.Now()).MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var rec sessionstore.Record
		if err := rec.UnmarshalBinary(v); err != nil {
			b.Fatal(err)
		}
	}
}
