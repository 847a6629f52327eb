package caddymodule

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestRedisStoreCacheCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		body string
		want time.Duration
	}{
		{"redis redis://127.0.0.1:6379", 0},
		{"redis redis://127.0.0.1:6379 {\ncache\n}", time.Second},
		{"redis redis://127.0.0.1:6379 {\ncache 250ms\nprefix a:\n}", 250 * time.Millisecond},
		{"redis redis://127.0.0.1:6379 {\nsentinel m 127.0.0.1:26379\ncache 2s\n}", 2 * time.Second},
		{"redis redis://127.0.0.1:6379 {\ncache 3s\ncluster 127.0.0.1:7000\n}", 3 * time.Second},
	} {
		var rs RedisStore
		if err := rs.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.body)); err != nil {
			t.Errorf("%q: %v", tc.body, err)
			continue
		}
		if rs.CacheMaxAge != caddy.Duration(tc.want) {
			t.Errorf("%q: cache_max_age %v, want %v", tc.body, time.Duration(rs.CacheMaxAge), tc.want)
		}
	}
}
