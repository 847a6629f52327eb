package storetest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisURL is the Redis that tests share unless EDGESESSION_REDIS_URL
// names another: database 9 of the local server, so that a developer's
// own keys (database 0) are never among the tests'.
const DefaultRedisURL = "redis://127.0.0.1:6379/9"

// RedisURL is EDGESESSION_REDIS_URL, or DefaultRedisURL.
func RedisURL() string {
	if url := os.Getenv("EDGESESSION_REDIS_URL"); url != "" {
		return url
	}
	return DefaultRedisURL
}

// RedisClient connects to the Redis that tests share (RedisURL). Without
// one the test skips and says so, except under CI=true, where it fails.
// The client is closed when the test ends. A test writes its keys under
// RedisPrefix, so that Main removes them after the run.
func RedisClient(t testing.TB) (*redis.Client, string) {
	t.Helper()
	url := RedisURL()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("EDGESESSION_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	if err := client.Ping(context.Background()).Err(); err != nil {
		client.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s: %v (CI=true: tests may not skip)", url, err)
		}
		t.Skipf("SKIP: no Redis at %s: %v", url, err)
	}
	usedRedis.Store(true)
	t.Cleanup(func() { client.Close() })
	return client, url
}

// runPrefix is the start of every key this test process writes to the
// shared Redis: one per run, so that Main removes this run's keys and
// no other's (packages' tests run at the same time, on the same Redis).
var runPrefix = fmt.Sprintf("edgesession-test:%d-%d:", os.Getpid(), time.Now().UnixNano())

var (
	usedRedis atomic.Bool
	prefixes  sync.Map // test name → how many prefixes it had
	unsafe    = regexp.MustCompile(`[^A-Za-z0-9_./-]+`)
)

// RedisPrefix is a key prefix of t's own on the shared Redis, under this
// run's (RunPrefix). Braces are left out of it: in a Redis Cluster they
// would choose the keys' hash slot.
func RedisPrefix(t testing.TB) string {
	n, _ := prefixes.LoadOrStore(t.Name(), new(atomic.Int64))
	return fmt.Sprintf("%s%s:%d:", runPrefix, unsafe.ReplaceAllString(t.Name(), "_"), n.(*atomic.Int64).Add(1))
}

// RunPrefix is the prefix of every RedisPrefix of this process.
func RunPrefix() string { return runPrefix }

// CleanRedis removes every key of this run (RunPrefix) from the shared
// Redis, if a test used it, and returns how many it removed.
func CleanRedis() (int, error) {
	if !usedRedis.Load() {
		return 0, nil
	}
	opts, err := redis.ParseURL(RedisURL())
	if err != nil {
		return 0, err
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	removed := 0
	iter := client.Scan(ctx, 0, runPrefix+"*", 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := client.Unlink(ctx, batch...).Result()
		removed += int(n)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			if err := flush(); err != nil {
				return removed, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return removed, err
	}
	return removed, flush()
}

// Main runs a package's tests, then removes what they left in the shared
// Redis (CleanRedis), and exits: for a package's TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if _, err := CleanRedis(); err != nil {
		fmt.Fprintf(os.Stderr, "removing the tests' keys (%s*) from %s: %v\n", runPrefix, RedisURL(), err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
