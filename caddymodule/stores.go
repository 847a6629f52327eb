package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"

	"github.com/edgesession/edgesession/sessionstore"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
	caddy.RegisterModule(BoltStore{})
	caddy.RegisterModule(RedisStore{})
	caddy.RegisterModule(CookieStore{})
}

// StoreProvider is what a module in http.handlers.session.stores provides.
// A new backend is a sessionstore.Store and a guest module that implements
// this (the cookie store is the one exception: it keeps nothing).
type StoreProvider interface {
	SessionStore() sessionstore.Store
}

// underlyingStore returns the store below the handler's wrappers (metrics,
// closing hijacked connections), for an optional power such as Lister.
// Deletes still go through the wrappers.
func underlyingStore(s sessionstore.Store) sessionstore.Store {
	for {
		u, ok := s.(interface{ Unwrap() sessionstore.Store })
		if !ok {
			return s
		}
		s = u.Unwrap()
	}
}

// stores holds the server-side stores, so that a config reload reuses the
// store of the config before it: every session is kept, and bolt's file
// lock is never waited on.
var stores = caddy.NewUsagePool()

type pooledStore struct {
	sessionstore.Store
	close func() error
	// redis is the Redis store's client, which the login throttle shares.
	redis redis.UniversalClient
}

func (p pooledStore) Destruct() error { return p.close() }

func loadStore(key string, open func() (pooledStore, error)) (pooledStore, error) {
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		p, err := open()
		if err != nil {
			return nil, err
		}
		return p, nil
	})
	if err != nil {
		return pooledStore{}, err
	}
	return v.(pooledStore), nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*MemoryStore)(nil)
	_ caddy.CleanerUpper    = (*MemoryStore)(nil)
	_ caddyfile.Unmarshaler = (*MemoryStore)(nil)
	_ StoreProvider         = (*MemoryStore)(nil)
	_ caddy.Provisioner     = (*BoltStore)(nil)
	_ caddy.CleanerUpper    = (*BoltStore)(nil)
	_ caddyfile.Unmarshaler = (*BoltStore)(nil)
	_ StoreProvider         = (*BoltStore)(nil)
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.CleanerUpper    = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
	_ StoreProvider         = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*CookieStore)(nil)
)
