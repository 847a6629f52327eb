package storetest

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RedisClient connects to the Redis that tests share:
// EDGESESSION_REDIS_URL, default redis://127.0.0.1:6379/0. Without one the
// test skips and says so, except under CI=true, where it fails. The client
// is closed when the test ends.
func RedisClient(t testing.TB) (*redis.Client, string) {
	t.Helper()
	url := os.Getenv("EDGESESSION_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	if err := client.Ping(context.Background()).Err(); err != nil {
		client.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s: %v (CI=true: tests may not skip)", url, err)
		}
		t.Skipf("SKIP: no Redis at %s: %v", url, err)
	}
	t.Cleanup(func() { client.Close() })
	return client, url
}
