package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startRedisProcess starts redis-server with the arguments that args
// gives for a port that pick chooses, and stops it with the test. If
// another process took the port first, it tries another. It returns the
// port.
func startRedisProcess(t *testing.T, pick func(*testing.T) int, args func(port int) []string) int {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := pick(t)
		p, err := startRedis(t, port, args(port)...)
		if err == nil {
			t.Cleanup(p.kill)
			return port
		}
		if !errors.Is(err, errPortTaken) || attempt == startAttempts {
			t.Fatalf("starting redis-server (attempt %d): %v", attempt, err)
		}
	}
}

// anyPort chooses a port for startRedisProcess.
func anyPort(t *testing.T) int { return freePort(t) }

func redisCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func needRedisTools(t *testing.T) {
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (CI=true: tests may not skip)", bin)
			}
			t.Skipf("SKIP: %s not found", bin)
		}
	}
}

// countSessionKeys counts the session keys in redis-cli --scan's output,
// leaving out the users' indexes (<prefix>user:{…}).
func countSessionKeys(scan string) int {
	n := 0
	for _, k := range strings.Fields(scan) {
		if !strings.Contains(k, ":user:{") {
			n++
		}
	}
	return n
}

// loginAndCheck logs in through c and checks the session from a second
// client, and that the store holds exactly one key under prefix.
func loginAndCheck(t *testing.T, c *Caddy, countKeys func() int) {
	t.Helper()
	cl := NewClient(t, c.Site)
	cl.MustLogin("alice", alicePassword)
	other := NewClient(t, c.Site)
	other.SetSessionCookie(cl.SessionCookie())
	if e := other.Get("/private").Echo(t); e.Headers["X-Session-User"][0] != "alice" {
		t.Fatal("the session is not found")
	}
	if n := countKeys(); n != 1 {
		t.Fatalf("the store holds %d session keys, want 1", n)
	}
	cl.LogoutJSON()
	if code, _ := other.Whoami(); code != 401 {
		t.Fatal("logout did not end the session")
	}
	if n := countKeys(); n != 0 {
		t.Fatalf("after logout the store holds %d session keys", n)
	}
}

func TestRedisSentinel(t *testing.T) {
	needRedisTools(t)
	master := startRedisProcess(t, anyPort, func(port int) []string {
		return []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}
	})
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	sentinel := startRedisProcess(t, anyPort, func(port int) []string {
		writeFile(t, conf, fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 1000\n", port, master))
		return []string{conf, "--sentinel"}
	})
	waitFor(t, 10*time.Second, "sentinel to know the master", func() bool {
		out, _ := exec.Command("redis-cli", "-p", fmt.Sprint(sentinel), "sentinel", "get-master-addr-by-name", "mymaster").Output()
		return strings.Contains(string(out), fmt.Sprint(master))
	})

	up := StartUpstream(t)
	// The URL's host is not used with sentinel: the master comes from the
	// sentinels.
	store := fmt.Sprintf("redis redis://127.0.0.1:1/0 {\n\t\t\tsentinel mymaster 127.0.0.1:%d\n\t\t\tprefix sentinel-test:\n\t\t}", sentinel)
	c := startSite(t, up, store, "")
	loginAndCheck(t, c, func() int {
		return countSessionKeys(redisCLI(t, "-p", fmt.Sprint(master), "--scan", "--pattern", "sentinel-test:*"))
	})
}

func TestRedisCluster(t *testing.T) {
	needRedisTools(t)
	var ports []int
	var addrs []string
	for range 3 {
		p := startRedisProcess(t, clusterPort, func(p int) []string {
			return []string{"--port", fmt.Sprint(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
				"--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("nodes-%d.conf", p)}
		})
		ports = append(ports, p)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	redisCLI(t, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-yes")...)
	waitFor(t, 20*time.Second, "the cluster to be ok", func() bool {
		for _, p := range ports {
			out, _ := exec.Command("redis-cli", "-p", fmt.Sprint(p), "cluster", "info").Output()
			if !strings.Contains(string(out), "cluster_state:ok") {
				return false
			}
		}
		return true
	})

	up := StartUpstream(t)
	// Without and with the local cache (one tracking connection per
	// master), each under a prefix of its own.
	for _, cache := range []string{"cache off", "cache 5s"} {
		t.Run(fmt.Sprintf("%q", cache), func(t *testing.T) {
			prefix := fmt.Sprintf("cluster-test-%d:", len(cache))
			store := fmt.Sprintf("redis redis://%s {\n\t\t\tcluster %s %s\n\t\t\tprefix %s\n\t\t\t%s\n\t\t}", addrs[0], addrs[1], addrs[2], prefix, cache)
			c := startSite(t, up, store, "")
			count := func() int {
				n := 0
				for _, p := range ports {
					n += countSessionKeys(redisCLI(t, "-p", fmt.Sprint(p), "--scan", "--pattern", prefix+"*"))
				}
				return n
			}
			// Several sessions, so that they land on more than one node.
			for range 3 {
				loginAndCheck(t, c, count)
			}
		})
	}
}

// clusterPort returns a free port whose cluster bus port (+10000) is free
// too; both stay reserved as freePort's do.
func clusterPort(t *testing.T) int {
	for range 100 {
		p := freePort(t)
		if p+10000 <= 65535 && reserveExactPort(t, p+10000) {
			return p
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}
