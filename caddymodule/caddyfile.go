package caddymodule

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/authz"
	"github.com/edgesession/edgesession/endpoints"
	"github.com/edgesession/edgesession/identity/password"
	"github.com/edgesession/edgesession/pages"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/upstream"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("session", parseCaddyfile)
	// After rewrites, before the other auth handlers: no `order` needed.
	httpcaddyfile.RegisterDirectiveOrder("session", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(Handler)
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return s, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	session [<matcher>] {
//		store bolt [<path>] | memory | cookie | redis <url> { ... }
//		secret <secret> [<older_secret>...]
//		user <name> <hash> [<group>...]
//		users_file <path>
//		realm <name>
//		path_prefix <prefix>
//		public { <matchers> }
//		allow [user <name>...] [group <name>...] [{ <matchers> }]
//		split_path <marker>...
//		assertion [{
//			header <name>
//			issuer <iss>
//			audience <aud>...
//			lifetime <duration>
//			rotate_every <duration>
//		}]
//		idle_timeout <duration>
//		lifetime <duration>
//		cookie {
//			name <name>
//			domain <domain>
//			path <path>
//			secure auto|always|never
//			same_site lax|strict|none
//			persist on|off
//		}
//		header_prefix <prefix>
//		user_header <name>...
//		forward_cookie on|off
//		upstream_control on|off
//		header <name> user|data.<key>
//		logout_cookies <name>... {
//			path <path>...
//			domain <domain>
//		}
//		clear_site_data cookies|storage|cache|*...
//		http_basic on|off [<realm>]
//		login_template <file>
//		title <text>
//		login_limit <failures> <window>
//		oidc <name> { ... }
//		auth_endpoint
//		redirect_hosts <host>...
//		mfa [required] [{ ... }]
//	}
//
// oidc is described at unmarshalOIDC, mfa at unmarshalMFA. Every subdirective but user,
// header, logout_cookies, oidc and allow may be given once. Every value is
// checked here, so that `caddy adapt` and `caddy validate` name the line of
// a bad one: a literal secret is measured, and the users file and the
// login template are read. The {env.*} and {file.*} placeholders of
// secrets are only checked for their form here, so that `caddy adapt`
// works without the production secrets; what they stand for is read and
// measured at provision, by `caddy validate` and `caddy run`.
func (s *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "session"
	if d.NextArg() {
		return d.Errf("session takes no arguments, only a block; got %q", d.Val())
	}
	seen := map[string]bool{}
	headerLines := map[string]int{} // where each header was given
	for d.NextBlock(0) {
		sub := d.Val()
		if seen[sub] && sub != "user" && sub != "header" && sub != "logout_cookies" && sub != "oidc" && sub != "allow" {
			return d.Errf("session: %s given twice", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "store":
			err = unmarshalStore(d, s)
		case "secret":
			s.Secrets = d.RemainingArgs()
			if len(s.Secrets) == 0 {
				return d.Err("secret needs at least one value")
			}
			for i, v := range s.Secrets {
				if err := checkSecret(i+1, v); err != nil {
					return d.WrapErr(err)
				}
			}
		case "user":
			err = unmarshalUser(d, s)
		case "oidc":
			err = unmarshalOIDC(d, s)
		case "realm":
			s.Realm, err = oneArg(d)
			if err == nil {
				if verr := validRealm(s.Realm); verr != nil || s.Realm == "" {
					return d.Errf("realm %q: want 1 to 64 letters, digits, '.', '_' or '-'", s.Realm)
				}
			}
		case "users_file":
			s.UsersFile, err = oneArg(d)
			if err == nil {
				if err := password.CheckFile(s.UsersFile); err != nil {
					return d.WrapErr(err)
				}
			}
		case "path_prefix":
			s.PathPrefix, err = oneArg(d)
			if err == nil && (len(s.PathPrefix) < 2 || s.PathPrefix[0] != '/') {
				return d.Errf("path_prefix %q: must be a path such as /.session", s.PathPrefix)
			}
		case "public":
			set, err := caddyhttp.ParseCaddyfileNestedMatcherSet(d)
			if err != nil {
				return err
			}
			if len(set) == 0 {
				return d.Err("public needs at least one matcher")
			}
			s.PublicRaw = append(s.PublicRaw, set)
		case "allow":
			err = unmarshalRule(d, s)
		case "split_path":
			s.SplitPath = d.RemainingArgs()
			if len(s.SplitPath) == 0 {
				return d.Err("split_path needs at least one marker, such as .php")
			}
			for _, m := range s.SplitPath {
				if err := authz.ValidSplitMarker(m); err != nil {
					return d.Err(err.Error())
				}
			}
		case "assertion":
			err = unmarshalAssertion(d, s)
		case "idle_timeout":
			var dur caddy.Duration
			dur, err = durationArg(d, true)
			s.IdleTimeout = &dur
		case "lifetime":
			s.Lifetime, err = durationArg(d, false)
		case "cookie":
			err = unmarshalCookie(d, &s.Cookie)
		case "header_prefix":
			s.HeaderPrefix, err = oneArg(d)
			if err == nil && !upstream.ValidHeaderName(s.HeaderPrefix) {
				return d.Errf("header_prefix %q: not a valid header name", s.HeaderPrefix)
			}
		case "user_header":
			s.UserHeaders = d.RemainingArgs()
			if len(s.UserHeaders) == 0 {
				return d.Err("user_header needs at least one header name")
			}
			if err := upstream.CheckNames("", s.UserHeaders, s.Headers); err != nil {
				return d.Err(err.Error())
			}
		case "forward_cookie":
			s.ForwardCookie, err = onOff(d)
		case "upstream_control":
			s.UpstreamControl, err = onOff(d)
		case "header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Err("header needs a header name and what it carries, user or data.<key>: e.g. header X-Forwarded-Email data.email")
			}
			if _, dup := s.Headers[args[0]]; dup {
				return d.Errf("header %q given twice", args[0])
			}
			if s.Headers == nil {
				s.Headers = map[string]string{}
			}
			s.Headers[args[0]] = args[1]
			headerLines[args[0]] = d.Line()
			if err := upstream.CheckNames("", s.UserHeaders, s.Headers); err != nil {
				return d.Err(err.Error())
			}
		case "logout_cookies":
			err = unmarshalLogoutCookies(d, s)
		case "clear_site_data":
			s.ClearSiteData = d.RemainingArgs()
			if len(s.ClearSiteData) == 0 {
				return d.Errf("clear_site_data needs at least one of %s", strings.Join(session.ClearSiteDataTypes, ", "))
			}
			if err := session.ValidateAppLogout(s.Cookie.Name, s.LogoutCookies, s.ClearSiteData); err != nil {
				return d.Err(err.Error())
			}
		case "http_basic":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 || (args[0] != "on" && args[0] != "off") || (args[0] == "off" && len(args) == 2) {
				return d.Err("http_basic needs on [<realm>] or off")
			}
			s.HTTPBasic = nil
			if args[0] == "on" {
				s.HTTPBasic = &HTTPBasic{}
				if len(args) == 2 {
					if err := validBasicRealm(args[1]); err != nil {
						return d.Err(err.Error())
					}
					s.HTTPBasic.Realm = args[1]
				}
			}
		case "login_template":
			s.LoginTemplate, err = oneArg(d)
			if err == nil {
				if err := checkLoginTemplate(s.LoginTemplate); err != nil {
					return d.WrapErr(err)
				}
			}
		case "title":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return d.Err(`title needs one value; quote a name with spaces: title "Acme Wiki"`)
			}
			if err := pages.ValidTitle(args[0]); err != nil {
				return d.Err(err.Error())
			}
			s.Title = args[0]
		case "login_limit":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Err("login_limit needs <failures> <window>, e.g. login_limit 5 15m")
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return d.Errf("login_limit failures %q: want a positive whole number", args[0])
			}
			w, err := caddy.ParseDuration(args[1])
			if err != nil || w <= 0 {
				return d.Errf("login_limit window %q: want a positive duration", args[1])
			}
			s.LoginLimit = &LoginLimit{Failures: n, Window: caddy.Duration(w)}
		case "auth_endpoint":
			if d.NextArg() {
				return d.Errf("auth_endpoint takes no arguments, got %q", d.Val())
			}
			s.AuthEndpoint = true
		case "mfa":
			err = unmarshalMFA(d, s)
		case "redirect_hosts":
			s.RedirectHosts = d.RemainingArgs()
			if len(s.RedirectHosts) == 0 {
				return d.Err("redirect_hosts needs at least one host, such as app.example.com or *.example.com")
			}
			if _, err := endpoints.NewRedirectHosts(s.RedirectHosts); err != nil {
				return d.Err(err.Error())
			}
		default:
			return d.Errf("session: unknown subdirective %q", sub)
		}
		if err != nil {
			return err
		}
	}
	// Only now is the header prefix known.
	prefix := s.HeaderPrefix
	if prefix == "" {
		prefix = DefaultHeaderPrefix
	}
	for _, name := range slices.SortedFunc(maps.Keys(headerLines), func(a, b string) int { return headerLines[a] - headerLines[b] }) {
		if upstream.UnderPrefix(name, prefix) {
			return fmt.Errorf("header %q: starts with the header prefix %q, which is the handler's own, at %s:%d", name, prefix, d.File(), headerLines[name])
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
