//go:build unix

package sessionstore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Redis Cluster of a test's own, started with redis-server and
// redis-cli as the end-to-end tests (../tests) do, in a smaller form.

// redisCluster is a Redis Cluster that a test started; it stops with the
// test.
type redisCluster struct {
	nodes []*redisNode
}

// redisNode is one redis-server of a redisCluster.
type redisNode struct {
	port   int
	dir    string        // its working directory: nodes.conf, redis.log
	rdb    *redis.Client // a client of this node alone
	proc   *os.Process   // nil when stopped
	exited chan struct{}
}

func (n *redisNode) addr() string { return fmt.Sprintf("127.0.0.1:%d", n.port) }

// needRedisTools skips the test when redis-server or redis-cli is
// missing, except under CI=true, where it fails.
func needRedisTools(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (CI=true: tests may not skip)", bin)
			}
			t.Skipf("SKIP: %s not found", bin)
		}
	}
}

// startRedisCluster starts a Redis Cluster of masters masters with
// replicas replicas each, and waits until it is ok.
func startRedisCluster(t testing.TB, masters, replicas int) *redisCluster {
	t.Helper()
	needRedisTools(t)
	rc := &redisCluster{}
	args := []string{"--cluster", "create"}
	for range masters * (1 + replicas) {
		n := startRedisNode(t)
		rc.nodes = append(rc.nodes, n)
		args = append(args, n.addr())
	}
	args = append(args, "--cluster-replicas", fmt.Sprint(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	rc.waitOK(t)
	return rc
}

// waitOK waits until every node says the cluster is ok and knows every
// node, and every replica is in sync with its master.
func (rc *redisCluster) waitOK(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	known := fmt.Sprintf("cluster_known_nodes:%d\r\n", len(rc.nodes))
	waitSlowly(t, "the cluster to be ok", func() bool {
		for _, n := range rc.nodes {
			info, err := n.rdb.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok\r\n") || !strings.Contains(info, known) {
				return false
			}
			repl, err := n.rdb.Info(ctx, "replication").Result()
			if err != nil || strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return false
			}
		}
		return true
	})
}

// client returns a Cluster client seeded with every node, closed with the
// test.
func (rc *redisCluster) client(t testing.TB) *redis.ClusterClient {
	var addrs []string
	for _, n := range rc.nodes {
		addrs = append(addrs, n.addr())
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// node returns the node at addr.
func (rc *redisCluster) node(t testing.TB, addr string) *redisNode {
	for _, n := range rc.nodes {
		if n.addr() == addr {
			return n
		}
	}
	t.Fatalf("no node at %s", addr)
	return nil
}

// replicaOf returns a replica of master.
func (rc *redisCluster) replicaOf(t testing.TB, master *redisNode) *redisNode {
	for _, n := range rc.nodes {
		repl, _ := n.rdb.Info(context.Background(), "replication").Result()
		if strings.Contains(repl, "role:slave") && strings.Contains(repl, fmt.Sprintf("master_port:%d\r\n", master.port)) {
			return n
		}
	}
	t.Fatalf("%s has no replica", master.addr())
	return nil
}

// startRedisNode starts a cluster-enabled redis-server on a port pair of
// its own (see reservePort); if another process took a port first, it
// tries others.
func startRedisNode(t testing.TB) *redisNode {
	t.Helper()
	for attempt := 1; ; attempt++ {
		n := &redisNode{port: reserveNodePorts(t), dir: t.TempDir()}
		n.rdb = redis.NewClient(&redis.Options{Addr: n.addr(), DialTimeout: time.Second, MaxRetries: -1})
		t.Cleanup(func() { n.rdb.Close() })
		err := n.start()
		if err == nil {
			t.Cleanup(n.stop)
			return n
		}
		if attempt == 5 {
			t.Fatalf("starting redis-server (attempt %d): %v", attempt, err)
		}
	}
}

// start starts n's redis-server, again if it was stopped, and waits until
// it answers. n keeps its cluster config (nodes.conf) across a restart,
// not its data. The node timeout is long, so that the other nodes never
// hold a stopped node as failed: the cluster stays ok without it.
func (n *redisNode) start() error {
	logName := filepath.Join(n.dir, "redis.log")
	log, err := os.OpenFile(logName, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(n.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "60000")
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	n.proc, n.exited = cmd.Process, make(chan struct{})
	go func(exited chan struct{}) { cmd.Wait(); log.Close(); close(exited) }(n.exited)
	ours := fmt.Sprintf("process_id:%d\r\n", cmd.Process.Pid)
	for deadline := time.Now().Add(20 * time.Second); ; {
		select {
		case <-n.exited:
			n.proc = nil
			out, _ := os.ReadFile(logName)
			return fmt.Errorf("redis-server on port %d exited: %s", n.port, out)
		case <-time.After(20 * time.Millisecond):
		}
		info, err := n.rdb.Info(context.Background(), "server").Result()
		switch {
		case err == nil && strings.Contains(info, ours):
			return nil
		case err == nil:
			n.stop()
			return fmt.Errorf("another Redis answers on port %d", n.port)
		case time.Now().After(deadline):
			n.stop()
			return fmt.Errorf("redis-server on port %d not ready in 20s: %v", n.port, err)
		}
	}
}

// stop kills n's redis-server, if it runs.
func (n *redisNode) stop() {
	if n.proc != nil {
		n.proc.Kill()
		<-n.exited
		n.proc = nil
	}
}

// reserveNodePorts reserves a port and its cluster bus port (+10000).
func reserveNodePorts(t testing.TB) int {
	for range 100 {
		if p := reservePort(t, 0); p > 0 && p+10000 <= 65535 && reservePort(t, p+10000) > 0 {
			return p
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// reservePort keeps port (0: any free port) for the test until it ends
// and returns it, or 0 if it is taken: a socket of this process is bound
// to it with SO_REUSEADDR but does not listen. The kernel hands the port
// to nobody who asks for a free one (another test, an outgoing
// connection), while redis-server, which binds with SO_REUSEADDR too, can
// still listen on it, and listen again after a restart.
func reservePort(t testing.TB, port int) int {
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) != nil ||
		syscall.Bind(fd, &syscall.SockaddrInet4{Port: port}) != nil {
		syscall.Close(fd)
		return 0
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return 0
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return sa.(*syscall.SockaddrInet4).Port
}

// waitSlowly waits until cond, checking it every 20ms, for up to a
// minute: for conditions that cost a round trip to several nodes.
func waitSlowly(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
	}
}
