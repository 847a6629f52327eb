package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/identity/oidc"
)

// unmarshalOIDC reads one provider of the session block. Syntax:
//
//	oidc <name> {
//		issuer <url>
//		client_id <id>
//		client_secret <secret>
//		scopes <scope>...
//		username_claim <claim>
//		groups_claim <claim>
//		names qualified|local
//		claims <claim>...
//		allow_domains <domain>...
//		allow_emails <email>...
//		allow_groups <group>...
//		label <text>
//		redirect_url <url>
//		provider_logout on|off
//		post_logout_redirect_url <url>
//	}
//
// issuer and client_id are required; every option may be given once, and
// every value is checked here, so that `caddy adapt` names the line of a
// bad one. The client secret's {env.*} and {file.*} placeholders are
// only checked for their form here (`caddy adapt` works without the
// production secrets); they are replaced at provision.
func unmarshalOIDC(d *caddyfile.Dispenser, s *Handler) error {
	start := d.Token()
	args := d.RemainingArgs()
	if len(args) != 1 {
		return d.Err("oidc needs a name (used in the callback path, e.g. oidc google { … }), then a block")
	}
	p := &OIDCProvider{Name: args[0]}
	if err := identity.ValidSourceName(p.Name); err != nil {
		return d.WrapErr(err)
	}
	for _, o := range s.OIDC {
		if o.Name == p.Name {
			return d.Errf("oidc %s given twice", p.Name)
		}
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("oidc %s: %s given twice", p.Name, opt)
		}
		seen[opt] = true
		var err error
		switch opt {
		case "issuer":
			p.Issuer, err = oneArg(d)
			if err == nil {
				if verr := oidc.ValidIssuer(p.Issuer); verr != nil {
					return d.Errf("oidc %s: %v", p.Name, verr)
				}
			}
		case "client_id":
			p.ClientID, err = oneArg(d)
		case "client_secret":
			p.ClientSecret, err = oneArg(d)
			if err == nil {
				if _, _, rerr := secretPlaceholders(p.ClientSecret); rerr != nil {
					return d.Errf("oidc %s: client_secret: %v", p.Name, rerr)
				}
			}
		case "scopes":
			p.Scopes, err = someArgs(d)
		case "username_claim":
			p.UsernameClaim, err = oneArg(d)
		case "groups_claim":
			p.GroupsClaim, err = oneArg(d)
		case "names":
			p.Names, err = oneArg(d)
		case "claims":
			p.Claims, err = someArgs(d)
		case "allow_domains":
			p.AllowDomains, err = someArgs(d)
		case "allow_emails":
			p.AllowEmails, err = someArgs(d)
		case "allow_groups":
			p.AllowGroups, err = someArgs(d)
		case "label":
			p.Label, err = oneArg(d)
		case "redirect_url":
			p.RedirectURL, err = oneArg(d)
		case "provider_logout":
			p.ProviderLogout, err = onOff(d)
		case "post_logout_redirect_url":
			p.PostLogoutRedirectURL, err = oneArg(d)
		default:
			return d.Errf("oidc %s: unknown option %q", p.Name, opt)
		}
		if err != nil {
			return err
		}
		// Check what is there so far, at the line that set it: every
		// check but the required options.
		check := *p
		check.Issuer, check.ClientID = "https://issuer.invalid", "-"
		if verr := check.Validate(); verr != nil {
			return d.WrapErr(verr)
		}
	}
	if p.Issuer == "" || p.ClientID == "" {
		return fmt.Errorf("%s:%d - Error during parsing: oidc %s: issuer and client_id are required", start.File, start.Line, p.Name)
	}
	s.OIDC = append(s.OIDC, p)
	return nil
}

// someArgs returns the one or more values of the current option.
func someArgs(d *caddyfile.Dispenser) ([]string, error) {
	opt := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.Errf("%s needs at least one value", opt)
	}
	return args, nil
}
