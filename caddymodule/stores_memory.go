package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/edgesession/edgesession/sessionstore"
)

// MemoryStore keeps sessions in this process's memory. They survive config
// reloads, not restarts. Every memory store of the process is the same
// one.
type MemoryStore struct {
	store sessionstore.Store
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session.stores.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

const memoryPoolKey = "memory"

// Provision implements caddy.Provisioner.
func (m *MemoryStore) Provision(caddy.Context) error {
	p, err := loadStore(memoryPoolKey, func() (pooledStore, error) {
		s := sessionstore.NewMemory(0)
		return pooledStore{Store: s, close: s.Close}, nil
	})
	m.store = p.Store
	return err
}

// Cleanup implements caddy.CleanerUpper.
func (m *MemoryStore) Cleanup() error {
	_, err := stores.Delete(memoryPoolKey)
	return err
}

// SessionStore implements StoreProvider.
func (m *MemoryStore) SessionStore() sessionstore.Store { return m.store }

// UnmarshalCaddyfile reads `store memory`.
func (m *MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "memory"
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Err("store memory takes no options")
	}
	return nil
}
