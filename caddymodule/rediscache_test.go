package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/sessionstore/storetest"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestRedisStoreCacheCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		body string
		want time.Duration // 0: the default max age
		off  bool
	}{
		{"redis redis://127.0.0.1:6379", 0, false},
		{"redis redis://127.0.0.1:6379 {\ncache\n}", 0, false},
		{"redis redis://127.0.0.1:6379 {\ncache off\n}", 0, true},
		{"redis redis://127.0.0.1:6379 {\ncache 250ms\nprefix a:\n}", 250 * time.Millisecond, false},
		{"redis redis://127.0.0.1:6379 {\nsentinel m 127.0.0.1:26379\ncache 2s\n}", 2 * time.Second, false},
		{"redis redis://127.0.0.1:6379 {\ncache 3s\ncluster 127.0.0.1:7000\n}", 3 * time.Second, false},
	} {
		var rs RedisStore
		if err := rs.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.body)); err != nil {
			t.Errorf("%q: %v", tc.body, err)
			continue
		}
		if rs.CacheMaxAge != caddy.Duration(tc.want) || rs.DisableCache != tc.off {
			t.Errorf("%q: cache_max_age %v, disable_cache %v; want %v, %v", tc.body, time.Duration(rs.CacheMaxAge), rs.DisableCache, tc.want, tc.off)
		}
	}
}

// The cache is on unless turned off, and a negative max age is an error
// that names the way to turn it off.
func TestRedisStoreCacheIsTheDefault(t *testing.T) {
	_, url := storetest.RedisClient(t)
	for _, tc := range []struct {
		name   string
		rs     RedisStore
		cached bool
	}{
		{"default", RedisStore{URL: url}, true},
		{"max age", RedisStore{URL: url, CacheMaxAge: caddy.Duration(time.Minute)}, true},
		{"disabled", RedisStore{URL: url, DisableCache: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := tc.rs
			rs.Prefix = storetest.RedisPrefix(t)
			if err := rs.Provision(caddy.Context{}); err != nil {
				t.Fatal(err)
			}
			defer rs.Cleanup()
			_, cached := rs.SessionStore().(*sessionstore.RedisCache)
			if cached != tc.cached {
				t.Fatalf("store %T, want cached=%v", rs.SessionStore(), tc.cached)
			}
		})
	}
	rs := RedisStore{URL: url, CacheMaxAge: caddy.Duration(-time.Second)}
	if err := rs.Provision(caddy.Context{}); err == nil || !strings.Contains(err.Error(), "disable_cache") {
		t.Fatalf("negative cache_max_age: %v, want an error naming disable_cache", err)
	}
	rs = RedisStore{URL: url, CacheMaxAge: caddy.Duration(time.Second), DisableCache: true}
	if err := rs.Provision(caddy.Context{}); err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Fatalf("disable_cache with cache_max_age: %v, want an error", err)
	}
}
