package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// sentinelSetup is a master that one sentinel (quorum 1) watches as
// "mymaster", and a replica of it if asked for.
type sentinelSetup struct{ Master, Replica, Sentinel int }

// startSentinel starts a master (redis-server with masterArgs added), a
// replica if withReplica, and a sentinel that knows them both; it fails
// over a master that is down for 1s.
func startSentinel(t *testing.T, withReplica bool, masterArgs ...string) sentinelSetup {
	t.Helper()
	needRedisTools(t)
	args := func(port int, more ...string) []string {
		return append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, more...)
	}
	var s sentinelSetup
	s.Master = startRedisProcess(t, anyPort, func(port int) []string { return args(port, masterArgs...) })
	if withReplica {
		s.Replica = startRedisProcess(t, anyPort, func(port int) []string {
			return args(port, "--replicaof", "127.0.0.1", fmt.Sprint(s.Master))
		})
		// Before the sentinel starts, so that the master's first INFO to it
		// names the replica.
		waitFor(t, 10*time.Second, "the replica to be in sync", func() bool {
			return strings.Contains(redisCLI(t, "-p", fmt.Sprint(s.Replica), "info", "replication"), "master_link_status:up")
		})
	}
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	s.Sentinel = startRedisProcess(t, anyPort, func(port int) []string {
		writeFile(t, conf, fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %d 1\n"+
			"sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 2000\n", port, s.Master))
		return []string{conf, "--sentinel"}
	})
	waitFor(t, 10*time.Second, "sentinel to know the master", func() bool {
		return s.MasterPort(t) == s.Master
	})
	if withReplica {
		replica := fmt.Sprintf("127.0.0.1:%d", s.Replica)
		waitFor(t, 20*time.Second, "sentinel to know the replica", func() bool {
			out := redisCLI(t, "-p", fmt.Sprint(s.Sentinel), "sentinel", "replicas", "mymaster")
			return sentinelField(out, "name") == replica && sentinelField(out, "flags") == "slave"
		})
	}
	return s
}

// MasterPort is the port of the master that the sentinel has now, or 0.
// During a failover, SENTINEL GET-MASTER-ADDR-BY-NAME names the promoted
// replica as soon as it is promoted; SENTINEL MASTER names it once the
// sentinel switches to it and tells its subscribers (+switch-master),
// which is when go-redis's failover clients follow.
func (s sentinelSetup) MasterPort(t *testing.T) int {
	out, _ := exec.Command("redis-cli", "-p", fmt.Sprint(s.Sentinel), "sentinel", "master", "mymaster").Output()
	port, _ := strconv.Atoi(sentinelField(string(out), "port"))
	return port
}

// sentinelField is the value of name in redis-cli's output of a sentinel's
// reply, with names and values on alternate lines.
func sentinelField(out, name string) string {
	f := strings.Split(out, "\n")
	for i := 0; i+1 < len(f); i += 2 {
		if f[i] == name {
			return f[i+1]
		}
	}
	return ""
}

func TestRedisSentinel(t *testing.T) {
	s := startSentinel(t, false)
	up := StartUpstream(t)
	// The URL's host is not used with sentinel: the master comes from the
	// sentinels.
	store := fmt.Sprintf("redis redis://127.0.0.1:1/0 {\n\t\t\tsentinel mymaster 127.0.0.1:%d\n\t\t\tprefix sentinel-test:\n\t\t}", s.Sentinel)
	c := startSite(t, up, store, "")
	loginAndCheck(t, c, func() int {
		return countSessionKeys(redisCLI(t, "-p", fmt.Sprint(s.Master), "--scan", "--pattern", "sentinel-test:*"))
	})
}

// TestRedisSentinelCacheFailover: two Caddy instances with the cache on
// (for a minute: only Redis's invalidations, or a dropped cache, can end a
// session sooner) share a Sentinel-managed master with a replica. The
// master fails over; the session goes on working on both; a revocation
// through A, and a logout through A, made after the failover are seen on
// B, which held the session in memory.
//
// "failover" is SENTINEL FAILOVER: the old master stays up, a master, until
// the sentinel reconfigures it as a replica some 10s later. In
// "failover-old-master-stays" the sentinel cannot reconfigure it at all
// (REPLICAOF and SLAVEOF are renamed away), as when the sentinels cannot
// reach it but the Caddys can: B must not go on listening to it for
// invalidations. In "master-killed" the master process dies.
func TestRedisSentinelCacheFailover(t *testing.T) {
	for _, how := range []string{"failover", "failover-old-master-stays", "master-killed"} {
		t.Run(how, func(t *testing.T) { sentinelCacheFailover(t, how) })
	}
}

func sentinelCacheFailover(t *testing.T, how string) {
	var masterArgs []string
	if how == "failover-old-master-stays" {
		masterArgs = []string{"--rename-command", "REPLICAOF", "", "--rename-command", "SLAVEOF", ""}
	}
	s := startSentinel(t, true, masterArgs...)
	up := StartUpstream(t)
	const prefix = "sentinel-cache:"
	store := fmt.Sprintf("redis redis://127.0.0.1:1/0 {\n\t\t\tsentinel mymaster 127.0.0.1:%d\n\t\t\tprefix %s\n\t\t\tcache 1m\n\t\t}", s.Sentinel, prefix)
	const secret = "secret shared-by-both-instances-0123456789"
	a := startSite(t, up, store, secret)
	b := startSite(t, up, store, secret)
	sessionKeys := func(port int) int {
		return countSessionKeys(redisCLI(t, "-p", fmt.Sprint(port), "--scan", "--pattern", prefix+"*"))
	}

	onA := NewClient(t, a.Site)
	onA.MustLogin("alice", alicePassword)
	onB := NewClient(t, b.Site)
	onB.SetSessionCookie(onA.SessionCookie())
	onA.Allow5xx, onB.Allow5xx = true, true // 503 while the master is down
	servedFromMemory(t, onB, s.Master)
	waitFor(t, 10*time.Second, "the replica to hold the session", func() bool { return sessionKeys(s.Replica) == 1 })

	if how == "master-killed" {
		pid, err := redisPID(s.Master)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	} else {
		// The sentinel may refuse (NOGOODSLAVE) until it has the replica's
		// INFO.
		waitFor(t, 30*time.Second, "the sentinel to start a failover", func() bool {
			out, err := exec.Command("redis-cli", "-p", fmt.Sprint(s.Sentinel), "sentinel", "failover", "mymaster").Output()
			return err == nil && strings.TrimSpace(string(out)) == "OK"
		})
	}
	waitFor(t, 60*time.Second, "the sentinel to name the replica master", func() bool { return s.MasterPort(t) == s.Replica })
	for name, c := range map[string]*Client{"A": onA, "B": onB} {
		waitFor(t, 20*time.Second, "the session to work on "+name+" after the failover", func() bool {
			code, user := c.Whoami()
			return code == 200 && user == "alice"
		})
	}

	// Revoked through A's admin API: gone from the new master, and B,
	// which may have held it in memory, refuses it. (A write that A sends
	// before it heard of the switch goes to the old master; so revoke
	// until the revocation reaches the new master.)
	tries := 0
	waitFor(t, 20*time.Second, "a revocation on A to reach the new master", func() bool {
		tries++
		if code, body := a.Admin("DELETE", "/session/users/alice"); code != 200 || !strings.Contains(string(body), `"revoked":1`) {
			t.Fatalf("revoke alice on A: %d %s", code, body)
		}
		return sessionKeys(s.Replica) == 0
	})
	if tries > 1 {
		t.Logf("%s: %d revocations on A went to the old master", how, tries-1)
	}
	d := waitTime(t, 20*time.Second, "B to refuse the session revoked on A", func() bool {
		code, _ := onB.Whoami()
		return code == 401
	})
	role := oldMasterRole(s.Master)
	t.Logf("%s: B refused the revoked session %v after the revocation (old master: %s)", how, d, role)
	// Sentinel reconfigures the old master, which closes B's connections to
	// it, 8s or more after the switch; B must not wait for that.
	if how != "master-killed" && role != "master" {
		t.Fatalf("B served the revoked session until the old master was reconfigured (%s)", role)
	}

	// A new session, held by B in memory (read from the new master), and
	// a logout on A.
	onA.MustLogin("alice", alicePassword)
	onB.SetSessionCookie(onA.SessionCookie())
	servedFromMemory(t, onB, s.Replica)
	if r := onA.LogoutJSON(); r.StatusCode != 204 {
		t.Fatalf("logout on A: %d", r.StatusCode)
	}
	waitTime(t, 20*time.Second, "B to refuse the session logged out on A", func() bool {
		code, _ := onB.Whoami()
		return code == 401
	})
}

// oldMasterRole is the role that the Redis on port gives (master, slave),
// or "down".
func oldMasterRole(port int) string {
	out, err := exec.Command("redis-cli", "-p", fmt.Sprint(port), "role").Output()
	if f := strings.Fields(string(out)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "down"
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
