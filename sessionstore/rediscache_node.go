package sessionstore

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The tracking connection must be on the node that the store's client
// reads from and writes to: a node sends invalidations only to the clients
// tracking on it. After a Sentinel failover the client moves to the new
// master (go-redis's failover client hears +switch-master and closes its
// idle connections to the old one), but nothing moves the tracking
// connection, which is a client of its own: it stays on the old master for
// as long as that node stays up and keeps it open. Sentinel closes it only
// when it reconfigures the old master as a replica, which it does some 10s
// after the switch, or never while it cannot reach that node; until then
// every change made through the other instances, on the new master, would
// be missed here, and kept for up to maxAge.
//
// So checkNode compares, every ping interval, the node the tracking
// connection is on with the node the client reaches, by their run_id
// (INFO server); when they differ it drops the cache and closes the
// tracking connection, which follow reopens through the client's dialer
// (for Sentinel, that asks the sentinels for the master). ROLE would not
// do: the old master says "master" until Sentinel reconfigures it. Where
// INFO is not allowed (an ACL user without @dangerous) nothing is compared,
// and the tracking connection follows a failover only once the old master
// closes it; a record is still kept at most maxAge. (A Cluster's masters
// are compared by address in track instead.)

// infoer is what runID needs of a client or connection.
type infoer interface {
	Info(ctx context.Context, section ...string) *redis.StringCmd
}

// runID returns the run_id of the node that r's next command reaches, or
// "" if it cannot tell.
func runID(ctx context.Context, r infoer) string {
	info, err := r.Info(ctx, "server").Result()
	if err != nil {
		return ""
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, "run_id:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// setNode records the node that t's connection, being opened, is on. It
// runs in OnConnect, so it takes no lock of c's.
func (c *RedisCache) setNode(t *tracker, id string) {
	t.node.Store(&id)
}

// checkNode drops the cache and closes the tracking connection of a
// single-node or Sentinel client when it is not on the node the client
// reaches. Called from track only.
func (c *RedisCache) checkNode(ctx context.Context) {
	client, ok := c.client.(*redis.Client)
	if !ok {
		return
	}
	c.mu.RLock()
	var t *tracker
	if len(c.trackers) == 1 {
		t = c.trackers[0]
	}
	var ps *redis.PubSub
	var node string
	if t != nil {
		ps = t.ps
		if id := t.node.Load(); id != nil {
			node = *id
		}
	}
	tracking := c.tracking
	c.mu.RUnlock()
	if t == nil || ps == nil || !tracking || node == "" {
		return
	}
	if id := runID(ctx, client); id == "" || id == node {
		return
	}
	c.mu.Lock()
	moved := t.ps == ps && c.tracking
	if moved {
		c.tracking = false
		t.subscribed = false
		c.dropAllLocked()
	}
	c.mu.Unlock()
	if moved {
		ps.Close() // follow's receive fails; it connects again (without c.mu: see RedisCache)
	}
}
