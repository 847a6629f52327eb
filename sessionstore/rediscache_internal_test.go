package sessionstore

import (
	"testing"
	"time"
)

// An invalidation that arrives while a Find is reading from Redis voids
// that read: what it read may be older than the change, and is not kept.
func TestRedisCacheFillRacingInvalidation(t *testing.T) {
	c := &RedisCache{
		Redis:    &Redis{prefix: "p:"},
		maxAge:   time.Minute,
		tracking: true,
		entries:  make(map[Key]cacheEntry),
		fills:    make(map[Key][]*cacheFill),
	}
	key := KeyOf(NewID())
	rec := Record{User: "u", Expires: time.Now().Add(time.Hour)}

	f := c.startFill(key)
	c.invalidate([]string{"p:" + key.String()}, "")
	c.endFill(key, f, rec, true, time.Now())
	if _, ok := c.entries[key]; ok {
		t.Fatal("a read overtaken by an invalidation was kept")
	}

	f = c.startFill(key)
	c.lost(&tracker{})
	c.endFill(key, f, rec, true, time.Now())
	if _, ok := c.entries[key]; ok {
		t.Fatal("a read overtaken by a lost connection was kept")
	}

	c.tracking = true
	f = c.startFill(key)
	c.invalidate([]string{"p:user:{x}", "p:" + KeyOf(NewID()).String()}, "")
	c.endFill(key, f, rec, true, time.Now())
	if _, ok := c.entries[key]; !ok {
		t.Fatal("a read was voided by another key's invalidation")
	}
	c.invalidate(nil, "") // FLUSHDB
	if len(c.entries) != 0 {
		t.Fatal("a flush left records")
	}
	if len(c.fills) != 0 {
		t.Fatalf("%d fills left registered", len(c.fills))
	}
}

// With several tracking connections (a Cluster's masters), records are
// kept only while every one is subscribed, and losing any one drops them
// all.
func TestRedisCacheTracksOnlyWithEveryConnection(t *testing.T) {
	a, b := &tracker{}, &tracker{}
	c := &RedisCache{
		Redis:    &Redis{prefix: "p:"},
		maxAge:   time.Minute,
		trackers: []*tracker{a, b},
		entries:  make(map[Key]cacheEntry),
		fills:    make(map[Key][]*cacheFill),
	}
	key := KeyOf(NewID())
	rec := Record{User: "u", Expires: time.Now().Add(time.Hour)}

	c.subscribed(a)
	if c.Tracking() || c.startFill(key) != nil {
		t.Fatal("tracking with one of two connections subscribed")
	}
	c.subscribed(b)
	if !c.Tracking() {
		t.Fatal("not tracking with every connection subscribed")
	}
	c.endFill(key, c.startFill(key), rec, true, time.Now())
	if _, ok := c.entries[key]; !ok {
		t.Fatal("a read was not kept")
	}
	f := c.startFill(key)
	c.lost(b)
	c.endFill(key, f, rec, true, time.Now())
	if c.Tracking() || len(c.entries) != 0 {
		t.Fatal("losing one connection did not drop the cache")
	}
	c.subscribed(b)
	if !c.Tracking() {
		t.Fatal("not tracking once the lost connection is back")
	}

	c.trackers = nil
	c.subscribed(a)
	if c.Tracking() {
		t.Fatal("tracking with no connection at all")
	}
}
