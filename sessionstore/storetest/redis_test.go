package storetest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { Main(m) }

// A test run writes to database 9 of the local Redis unless
// EDGESESSION_REDIS_URL says otherwise, and what it wrote there under
// RedisPrefix is gone when the run ends. The run is a child process: this
// test binary again, running only writeOneKey.
func TestRedisRunLeavesNoKeys(t *testing.T) {
	if os.Getenv("STORETEST_WRITE_ONE_KEY") == "1" {
		writeOneKey(t)
		return
	}
	if os.Getenv("EDGESESSION_REDIS_URL") == "" && RedisURL() != "redis://127.0.0.1:6379/9" {
		t.Fatalf("RedisURL() = %s without EDGESESSION_REDIS_URL, want database 9", RedisURL())
	}
	client, url := RedisClient(t)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestRedisRunLeavesNoKeys$", "-test.v")
	cmd.Env = append(os.Environ(), "STORETEST_WRITE_ONE_KEY=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child run: %v\n%s", err, out)
	}
	var key, childURL string
	for _, line := range strings.Split(string(out), "\n") {
		if k, ok := strings.CutPrefix(strings.TrimSpace(line), "wrote "); ok {
			childURL, key, _ = strings.Cut(k, " ")
		}
	}
	if key == "" || !strings.HasPrefix(key, "edgesession-test:") {
		t.Fatalf("the child did not say which key it wrote:\n%s", out)
	}
	if childURL != url {
		t.Errorf("the child wrote to %s, want %s", childURL, url)
	}
	if n, err := client.Exists(context.Background(), key).Result(); err != nil || n != 0 {
		t.Errorf("after the child's run, %s holds its key %s: %d, %v", url, key, n, err)
	}
	// Nor did it write to database 0 instead.
	opts, _ := redis.ParseURL(url)
	opts.DB = 0
	db0 := redis.NewClient(opts)
	defer db0.Close()
	if n, err := db0.Exists(context.Background(), key).Result(); err != nil || n != 0 {
		t.Errorf("database 0 holds the child's key %s: %d, %v", key, n, err)
	}
}

// writeOneKey is the child run: it writes a key that outlives the test
// and says where.
func writeOneKey(t *testing.T) {
	client, url := RedisClient(t)
	key := RedisPrefix(t) + "left-behind"
	if err := client.Set(context.Background(), key, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := client.Exists(context.Background(), key).Result(); n != 1 {
		t.Fatal("the key is not there")
	}
	t.Logf("\nwrote %s %s", url, key)
}
