package caddymodule

import (
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/edgesession/edgesession/sessionstore"
)

// BoltStore keeps sessions in a bbolt file: they survive restarts, and
// expired ones are swept every minute.
type BoltStore struct {
	// Path of the file. Default: edgesession/sessions.db in Caddy's data
	// directory.
	Path string `json:"path,omitempty"`

	key   string
	store sessionstore.Store
}

// CaddyModule returns the Caddy module information.
func (BoltStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session.stores.bolt",
		New: func() caddy.Module { return new(BoltStore) },
	}
}

// Provision implements caddy.Provisioner.
func (b *BoltStore) Provision(caddy.Context) error {
	path := b.Path
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), "edgesession", "sessions.db")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	key := "bolt:" + abs
	p, err := loadStore(key, func() (pooledStore, error) {
		s, err := sessionstore.OpenBolt(abs, sessionstore.BoltOptions{})
		if err != nil {
			return pooledStore{}, err
		}
		return pooledStore{Store: s, close: s.Close}, nil
	})
	if err == nil {
		b.store = p.Store
		b.key = key // Cleanup releases only what Provision took
	}
	return err
}

// Cleanup implements caddy.CleanerUpper.
func (b *BoltStore) Cleanup() error {
	if b.key == "" {
		return nil
	}
	_, err := stores.Delete(b.key)
	return err
}

// SessionStore implements StoreProvider.
func (b *BoltStore) SessionStore() sessionstore.Store { return b.store }

// UnmarshalCaddyfile reads `store bolt [<path>]`.
func (b *BoltStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "bolt"
	if d.NextArg() {
		b.Path = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Err("store bolt takes no options")
	}
	return nil
}
