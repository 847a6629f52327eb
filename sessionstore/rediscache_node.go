package sessionstore

import (
	"context"
	"strings"
	"time"

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
// So watchNode compares, every ping interval, the node the tracking
// connection is on with the node the client reaches, by their run_id
// (INFO server); when they differ it drops the cache and closes the
// tracking connection, which track reopens through the client's dialer
// (for Sentinel, that asks the sentinels for the master). ROLE would not
// do: the old master says "master" until Sentinel reconfigures it. Where
// INFO is not allowed (an ACL user without @dangerous) nothing is compared,
// and the tracking connection follows a failover only once the old master
// closes it; a record is still kept at most maxAge.

// pingEvery is how often the tracking connection is checked.
func (c *RedisCache) pingEvery() time.Duration {
	return min(max(c.maxAge/2, 50*time.Millisecond), time.Second)
}

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

// setNode records the node that the tracking connection being opened is
// on (called from its OnConnect).
func (c *RedisCache) setNode(id string) {
	c.mu.Lock()
	c.node = id
	c.mu.Unlock()
}

// watchNode starts comparing the tracking connection's node with the
// client's until ctx is done, and returns a function that waits for that.
func (c *RedisCache) watchNode(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(c.pingEvery())
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			c.mu.RLock()
			ps, node, tracking := c.ps, c.node, c.tracking
			c.mu.RUnlock()
			if !tracking || node == "" {
				continue
			}
			if id := runID(ctx, c.client); id == "" || id == node {
				continue
			}
			c.mu.Lock()
			if c.ps == ps && c.node == node && c.tracking {
				c.tracking = false
				c.dropAllLocked()
				ps.Close() // track's receive fails; it reconnects
			}
			c.mu.Unlock()
		}
	}()
	return func() { <-done }
}
