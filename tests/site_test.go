package tests

import (
	"fmt"
	"testing"

	"github.com/edgesession/edgesession/sessionstore/storetest"
)

// siteTemplate is the Caddyfile most tests run: session in front of the
// echo upstream, with alice and bob, a public path and two user headers.
// [[.Extra.store]] and [[.Extra.more]] fill in the rest.
const siteTemplate = `
[[.Site]] {
	session {
		store [[.Extra.store]]
		user alice [[.Extra.alice]]
		user bob [[.Extra.bob]]
		public {
			path /public/*
		}
		user_header Remote-User X-Webauth-User
		[[.Extra.more]]
	}
	reverse_proxy [[.Upstream]]
}
`

// serverStores are the stores that keep sessions on the server; every
// store-parameterized test runs against them. allStores adds the cookie
// store, for the tests whose behaviour it shares (it cannot revoke a
// copied cookie, so logout tests leave it out).
var (
	serverStores = []string{"memory", "bolt", "redis"}
	allStores    = append([]string{"cookie"}, serverStores...)
)

// storeConfig is the `store` line for a store name. Each Redis config gets
// a prefix of its own.
func storeConfig(t testing.TB, name string) string {
	switch name {
	case "redis":
		url := redisURL(t)
		return fmt.Sprintf("redis %s {\n\t\t\tprefix %s\n\t\t}", url, storetest.RedisPrefix(t))
	}
	return name
}

// redisURL is the Redis the tests share (see storetest.RedisClient).
func redisURL(t testing.TB) string {
	t.Helper()
	_, url := storetest.RedisClient(t)
	return url
}

// startSite starts Caddy with siteTemplate and the given store and extra
// session subdirectives.
func startSite(t testing.TB, up *Upstream, store, more string, opts ...Option) *Caddy {
	t.Helper()
	opts = append([]Option{
		WithExtra("store", store), WithExtra("more", more),
		WithExtra("alice", aliceHash), WithExtra("bob", bobHash),
	}, opts...)
	return StartCaddy(t, up.Addr, siteTemplate, opts...)
}

// forEachStore runs f once per server-side store, in parallel, with the
// store's config line.
func forEachStore(t *testing.T, f func(t *testing.T, store string)) {
	forStores(t, serverStores, f)
}

// forStores runs f once for each named store, in parallel.
func forStores(t *testing.T, names []string, f func(t *testing.T, store string)) {
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, storeConfig(t, name))
		})
	}
}
