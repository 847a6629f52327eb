// RedisCache's client-side tracking: one tracking connection per node, following invalidations.

package sessionstore

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// invalidateChannel is where Redis publishes a tracking client's
// invalidations when the client is a RESP2 connection that redirects to
// itself.
const invalidateChannel = "__redis__:invalidate"

// tracker is one tracking connection, to one Redis node.
type tracker struct {
	client     *redis.Client          // a pool of one connection with tracking on
	ps         *redis.PubSub          // guarded by RedisCache.mu, for replaceTrackers to interrupt
	subscribed bool                   // guarded by RedisCache.mu
	node       atomic.Pointer[string] // the run_id of the node client is on (see checkNode)
	cancel     context.CancelFunc
	done       chan struct{}
}

// track keeps one tracker per Redis that holds keys, and sweeps old
// records. Every ping interval it reads the nodes again: when they are not
// the ones tracked, it drops the cache and replaces the trackers.
func (c *RedisCache) track(ctx context.Context) {
	defer close(c.done)
	var tracked []string
	for {
		nodes, err := c.nodes(ctx)
		if addrs := addrsOf(nodes); err == nil && !slices.Equal(addrs, tracked) {
			tracked = addrs
			c.replaceTrackers(ctx, nodes)
		}
		c.checkNode(ctx)
		c.sweep()
		select {
		case <-ctx.Done():
			c.replaceTrackers(ctx, nil)
			return
		case <-time.After(c.ping):
		}
	}
}

// nodes returns the client options of each Redis whose keys the cache
// must track, sorted by address: the node of a *redis.Client, or each
// master of a Cluster, as the Cluster says now.
func (c *RedisCache) nodes(ctx context.Context) ([]*redis.Options, error) {
	cluster, ok := c.client.(*redis.ClusterClient)
	if !ok {
		return []*redis.Options{c.client.(*redis.Client).Options()}, nil
	}
	var mu sync.Mutex
	var nodes []*redis.Options
	// ForEachMaster reloads the Cluster's slots first (CLUSTER SLOTS).
	err := cluster.ForEachMaster(ctx, func(_ context.Context, master *redis.Client) error {
		mu.Lock()
		nodes = append(nodes, master.Options())
		mu.Unlock()
		return nil
	})
	slices.SortFunc(nodes, func(a, b *redis.Options) int { return strings.Compare(a.Addr, b.Addr) })
	return nodes, err
}

// addrsOf returns the addresses of nodes, in order.
func addrsOf(nodes []*redis.Options) []string {
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// replaceTrackers drops the cache, stops every tracker and starts one for
// each of nodes. Called from track only.
func (c *RedisCache) replaceTrackers(ctx context.Context, nodes []*redis.Options) {
	c.mu.Lock()
	old := c.trackers
	c.trackers = nil
	c.tracking = false
	c.dropAllLocked()
	var open []*redis.PubSub
	for _, t := range old {
		t.cancel()
		if t.ps != nil {
			open = append(open, t.ps)
		}
	}
	c.mu.Unlock()
	// Closed without c.mu: a PubSub that is connecting again holds its
	// own lock while its OnConnect runs, and Close waits for that lock.
	for _, ps := range open {
		ps.Close() // interrupts a receive
	}
	for _, t := range old {
		<-t.done
		t.client.Close()
	}

	trackers := make([]*tracker, len(nodes))
	for i, opts := range nodes {
		t := &tracker{done: make(chan struct{})}
		t.client = c.trackingClient(opts, t)
		trackers[i] = t
	}
	c.mu.Lock()
	c.trackers = trackers
	c.mu.Unlock()
	for _, t := range trackers {
		tctx, cancel := context.WithCancel(ctx)
		t.cancel = cancel
		go c.follow(tctx, t)
	}
}

// trackingClient returns t's client: one connection to the node of opts,
// that turns tracking on whenever it connects and records which node it
// is on.
func (c *RedisCache) trackingClient(node *redis.Options, t *tracker) *redis.Client {
	opts := *node
	// A RESP2 connection that redirects its own invalidations to itself
	// and subscribes to them reads them as plain Pub/Sub messages.
	opts.Protocol = 2
	// Maintenance notifications need RESP3, so it has none. And a config
	// of its own: node's is the live one of a client in use, which
	// go-redis changes (turning them off, in auto mode, when the server
	// refuses them) as that client connects; NewClient would copy it
	// meanwhile, a data race.
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	opts.PoolSize = 1
	opts.ClientName = "edgesession-tracking"
	onConnect := opts.OnConnect
	prefix := c.prefix
	opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if onConnect != nil {
			if err := onConnect(ctx, cn); err != nil {
				return err
			}
		}
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			return err
		}
		args := []any{"CLIENT", "TRACKING", "on", "REDIRECT", id, "BCAST"}
		if prefix != "" {
			args = append(args, "PREFIX", prefix)
		}
		if err := cn.Do(ctx, args...).Err(); err != nil {
			return err
		}
		c.setNode(t, runID(ctx, cn))
		return nil
	}
	return redis.NewClient(&opts)
}

// follow keeps t subscribed to its invalidations until ctx ends, and
// drops the cache whenever its connection fails. It tries again after a
// backoff: up to a second after a connection failed, up to half a minute
// after Redis refused to track (that is not likely to change soon).
func (c *RedisCache) follow(ctx context.Context, t *tracker) {
	defer close(t.done)
	backoff := 50 * time.Millisecond
	reported := false
	for ctx.Err() == nil {
		ps := t.client.Subscribe(ctx, invalidateChannel)
		c.mu.Lock()
		t.ps = ps
		c.mu.Unlock()
		pending := 0
		var err error
		for ctx.Err() == nil {
			var msg any
			msg, err = ps.ReceiveTimeout(ctx, c.ping)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && pending < 2 {
				pending++
				if ps.Ping(ctx) == nil {
					continue
				}
			}
			if err != nil {
				break
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" && m.Channel == invalidateChannel {
					c.subscribed(t)
					backoff, reported = 50*time.Millisecond, false
				}
			case *redis.Pong:
				pending = 0
			case *redis.Message:
				c.invalidate(m.PayloadSlice, m.Payload)
			}
		}
		c.lost(t)
		ps.Close()
		if ctx.Err() != nil {
			return
		}
		if !reported && c.failed != nil {
			c.failed(t.client.Options().Addr, err)
			reported = true
		}
		limit := time.Second
		if refused(err) {
			limit = 30 * time.Second
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, limit)
	}
}

// refused reports whether err is Redis refusing a command (an unknown
// command, or one the user's ACL does not allow), not a passing state
// such as LOADING or MASTERDOWN.
func refused(err error) bool {
	e, ok := errors.AsType[redis.Error](err)
	return ok && (strings.HasPrefix(e.Error(), "ERR ") || strings.HasPrefix(e.Error(), "NOPERM"))
}

// subscribed marks t as receiving its invalidations: once every tracker
// is, records may be kept.
func (c *RedisCache) subscribed(t *tracker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t.subscribed = true
	c.tracking = len(c.trackers) > 0
	for _, t := range c.trackers {
		c.tracking = c.tracking && t.subscribed
	}
}

// lost drops every record and voids every read in flight: t's connection
// is gone, so invalidations may be missed from now on.
func (c *RedisCache) lost(t *tracker) {
	c.mu.Lock()
	t.subscribed = false
	c.tracking = false
	c.dropAllLocked()
	c.mu.Unlock()
}

// invalidate handles a message from Redis: the names of changed keys, or
// none (payload nil) for a flush of the whole database.
func (c *RedisCache) invalidate(names []string, payload string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(names) == 0 && payload != "" {
		names = []string{payload}
	}
	if len(names) == 0 {
		c.dropAllLocked()
		return
	}
	for _, name := range names {
		if key, ok := c.keyOf(name); ok {
			c.dropLocked(key)
		}
	}
}

// keyOf returns the session key that a Redis name stands for, if it is one.
func (c *RedisCache) keyOf(name string) (Key, bool) {
	var key Key
	s, ok := strings.CutPrefix(name, c.prefix)
	if !ok || hex.DecodedLen(len(s)) != len(key) {
		return key, false
	}
	_, err := hex.Decode(key[:], []byte(s))
	return key, err == nil
}
