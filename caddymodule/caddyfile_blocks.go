// The session directive's sub-blocks: logout_cookies, user, store, cookie.

package caddymodule

import (
	"fmt"
	"os"
	"slices"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/identity/password"
	"github.com/edgesession/edgesession/pages"
)

// unmarshalLogoutCookies reads one logout_cookies line: names, and the
// path(s) and domain the app sets them with.
func unmarshalLogoutCookies(d *caddyfile.Dispenser, s *Handler) error {
	names := d.RemainingArgs()
	if len(names) == 0 {
		return d.Err("logout_cookies needs the names of the app's cookies, e.g. logout_cookies sessionid")
	}
	paths, domain := []string{""}, ""
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("logout_cookies: %s given twice", sub)
		}
		seen[sub] = true
		switch sub {
		case "path":
			if paths = d.RemainingArgs(); len(paths) == 0 {
				return d.Err("path needs at least one path")
			}
		case "domain":
			var err error
			if domain, err = oneArg(d); err != nil {
				return err
			}
		default:
			return d.Errf("logout_cookies: unknown option %q; want path or domain", sub)
		}
	}
	sessionCookie := s.Cookie.Name
	if sessionCookie == "" {
		sessionCookie = DefaultCookieName
	}
	for _, name := range names {
		for _, path := range paths {
			c := AppCookie{Name: name, Path: path, Domain: domain}
			if err := c.Validate(sessionCookie); err != nil {
				return d.Errf("logout_cookies %q: %v", name, err)
			}
			if slices.Contains(s.LogoutCookies, c) {
				return d.Errf("logout_cookies %q (path %q, domain %q) given twice", name, path, domain)
			}
			s.LogoutCookies = append(s.LogoutCookies, c)
		}
	}
	return nil
}

// unmarshalUser reads `user <name> <hash> [<group>...]`.
func unmarshalUser(d *caddyfile.Dispenser, s *Handler) error {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return d.Err("user needs a name and a password hash (from `caddy hash-password`), then any groups")
	}
	u := User{Name: args[0], Hash: args[1]}
	if len(args) > 2 {
		u.Groups = args[2:]
	}
	if err := identity.ValidUsername(u.Name); err != nil {
		return d.Errf("user %q: %v", u.Name, err)
	}
	if err := password.CheckHash(u.Hash, u.Groups); err != nil {
		return d.Errf("user %q: %v", u.Name, err)
	}
	for _, o := range s.Users {
		if o.Name == u.Name {
			return d.Errf("user %q given twice", u.Name)
		}
	}
	s.Users = append(s.Users, u)
	return nil
}

// checkLoginTemplate parses the login template at path as Provision
// would, after making sure it is a regular file of a sane size.
func checkLoginTemplate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("login_template: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxLoginTemplate {
		return fmt.Errorf("login_template %s: not a regular file of at most %d KiB", path, maxLoginTemplate>>10)
	}
	_, err = pages.Load(path)
	return err
}

// maxLoginTemplate bounds the login template checked at parse time.
const maxLoginTemplate = 1 << 20

func unmarshalStore(d *caddyfile.Dispenser, s *Handler) error {
	if !d.NextArg() {
		return d.Err("store needs a backend: bolt, memory, cookie or redis")
	}
	name := d.Val()
	switch name {
	case "bolt", "memory", "cookie", "redis":
	default:
		return d.Errf("store %q: unknown backend; want bolt, memory, cookie or redis", name)
	}
	unm, err := caddyfile.UnmarshalModule(d, "http.handlers.session.stores."+name)
	if err != nil {
		return err
	}
	s.StoreRaw = caddyconfig.JSONModuleObject(unm, "backend", name, nil)
	return nil
}

func unmarshalCookie(d *caddyfile.Dispenser, c *Cookie) error {
	if d.NextArg() {
		return d.Errf("cookie takes a block, not %q", d.Val())
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("cookie: %s given twice", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "name":
			c.Name, err = oneArg(d)
			if err == nil && (Cookie{Name: c.Name, Path: "/"}).Validate() != nil {
				return d.Errf("cookie name %q: not a valid cookie name", c.Name)
			}
		case "domain":
			c.Domain, err = oneArg(d)
		case "path":
			c.Path, err = oneArg(d)
			if err == nil && (len(c.Path) == 0 || c.Path[0] != '/') {
				return d.Errf("cookie path %q: must start with /", c.Path)
			}
		case "secure":
			c.Secure, err = oneOf(d, "auto", "always", "never")
		case "same_site":
			c.SameSite, err = oneOf(d, "lax", "strict", "none")
		case "persist":
			c.Persist, err = onOff(d)
		default:
			return d.Errf("cookie: unknown option %q", sub)
		}
		if err != nil {
			return err
		}
		// The options so far, with the defaults for the rest, must make
		// a valid cookie: a conflict is reported at the option that
		// completes it, whatever the order.
		cc := *c
		if cc.Name == "" {
			cc.Name = DefaultCookieName
		}
		if cc.Path == "" {
			cc.Path = "/"
		}
		if err := cc.Validate(); err != nil {
			return d.WrapErr(err)
		}
	}
	return nil
}
