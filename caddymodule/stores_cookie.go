package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// CookieStore keeps the whole session inside the encrypted cookie and
// nothing on the server. A logout cannot revoke a copy of the cookie
// before it expires, and a session must fit in one cookie (about 4 KB).
type CookieStore struct{}

// CaddyModule returns the Caddy module information.
func (CookieStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session.stores.cookie",
		New: func() caddy.Module { return new(CookieStore) },
	}
}

// UnmarshalCaddyfile reads `store cookie`.
func (*CookieStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "cookie"
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Err("store cookie takes no options")
	}
	return nil
}
