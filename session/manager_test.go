package session

import (
	"strings"
	"testing"
	"time"

	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// newTestManager is a Manager over store (nil: the cookie store) with the
// handler's defaults, its sessions logged in as an upstream would log
// them in; each of mods changes the configuration first.
func newTestManager(t testing.TB, store sessionstore.Store, mods ...func(*Config)) *Manager {
	t.Helper()
	c := Config{
		Store:      store,
		Cookie:     cookie.Config{Name: "caddy_session", Path: "/"},
		Idle:       30 * time.Minute,
		Lifetime:   12 * time.Hour,
		TouchEvery: 30 * time.Minute / 20,
		Sources:    map[string]identity.Source{identity.Upstream: identity.UpstreamSource{}},
	}
	for _, m := range mods {
		m(&c)
	}
	codec, err := cookie.NewCodec(c.Cookie.Name, c.Realm, [][]byte{[]byte(strings.Repeat("k", 32))}, c.Lifetime)
	if err != nil {
		t.Fatal(err)
	}
	c.Codec = codec
	return New(c)
}
