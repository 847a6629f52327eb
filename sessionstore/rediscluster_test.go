//go:build unix

package sessionstore_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Redis Cluster of a test's own, started with redis-server and
// redis-cli as the end-to-end tests (../tests) do, in a smaller form.

// redisCluster is a Redis Cluster that a test started; it stops with the
// test.
type redisCluster struct {
	nodes []*redisServer
}

// startRedisCluster starts a Redis Cluster of masters masters with
// replicas replicas each, and waits until it is ok.
func startRedisCluster(t testing.TB, masters, replicas int) *redisCluster {
	t.Helper()
	needRedisTools(t, "redis-server", "redis-cli")
	rc := &redisCluster{}
	args := []string{"--cluster", "create"}
	for range masters * (1 + replicas) {
		n := startRedisServer(t, reserveNodePorts, redisNodeArgs)
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
func (rc *redisCluster) node(t testing.TB, addr string) *redisServer {
	for _, n := range rc.nodes {
		if n.addr() == addr {
			return n
		}
	}
	t.Fatalf("no node at %s", addr)
	return nil
}

// replicaOf returns a replica of master.
func (rc *redisCluster) replicaOf(t testing.TB, master *redisServer) *redisServer {
	for _, n := range rc.nodes {
		repl, _ := n.rdb.Info(context.Background(), "replication").Result()
		if strings.Contains(repl, "role:slave") && strings.Contains(repl, fmt.Sprintf("master_port:%d\r\n", master.port)) {
			return n
		}
	}
	t.Fatalf("%s has no replica", master.addr())
	return nil
}

// redisNodeArgs are the arguments of a cluster node. It keeps its
// cluster config (nodes.conf) across a restart. The node timeout is long,
// so that the other nodes never hold a stopped node as failed: the
// cluster stays ok without it.
var redisNodeArgs = redisArgs("--cluster-enabled", "yes",
	"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "60000")

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
