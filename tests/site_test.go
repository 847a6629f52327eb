package tests

import (
	"testing"
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

// stores are the server-side stores that every store-parameterized test
// runs against. (redis and cookie have their own tests besides.)
var stores = map[string]string{
	"memory": "memory",
	"bolt":   "bolt",
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

// forEachStore runs f once per server-side store, in parallel.
func forEachStore(t *testing.T, f func(t *testing.T, store string)) {
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, store)
		})
	}
}
