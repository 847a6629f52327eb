// The session directive's mfa sub-block (SPEC §13).

package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// unmarshalMFA reads the mfa subdirective:
//
//	mfa                       # on: offered to everyone, required of no one
//	mfa required              # required of every local user
//	mfa [required] {
//		user <name>...    # with required: only these users ...
//		group <name>...   # ... and the members of these groups
//		issuer <text>     # the TOTP issuer an authenticator app shows
//		rp_id <host>      # the WebAuthn relying party ID
//		origins <origin>...
//		oidc_amr on|off   # whether a provider's "mfa" counts here
//	}
//
// user and group name who must, so they need `required`; they may come
// more than once and add up.
func unmarshalMFA(d *caddyfile.Dispenser, s *Handler) error {
	m := &MFA{}
	if d.NextArg() {
		if d.Val() != "required" {
			return d.Errf("mfa %q: want `mfa`, `mfa required` or a block", d.Val())
		}
		m.Required = &MFARequired{}
		if d.NextArg() {
			return d.Errf("mfa required %q: name who must in a block: `mfa required { user %s }`", d.Val(), d.Val())
		}
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] && sub != "user" && sub != "group" {
			return d.Errf("mfa: %s given twice", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "user", "group":
			if m.Required == nil {
				return d.Errf("mfa: %s names who must prove a second factor: write `mfa required {`", sub)
			}
			names := d.RemainingArgs()
			if len(names) == 0 {
				return d.Errf("mfa: %s needs at least one name", sub)
			}
			if sub == "user" {
				m.Required.Users = append(m.Required.Users, names...)
			} else {
				m.Required.Groups = append(m.Required.Groups, names...)
			}
		case "issuer":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return d.Err(`mfa: issuer needs one value; quote a name with spaces: issuer "Acme Wiki"`)
			}
			if m.Issuer = args[0]; m.Issuer == "" {
				return d.Err("mfa: issuer is empty; leave it out for the default (the title, else the host)")
			}
		case "rp_id":
			m.RPID, err = oneArg(d)
		case "origins":
			if m.Origins = d.RemainingArgs(); len(m.Origins) == 0 {
				return d.Err("mfa: origins needs at least one origin, such as https://example.com")
			}
		case "oidc_amr":
			var on bool
			on, err = onOff(d)
			m.OIDCAmr = &on
		default:
			return d.Errf("mfa: unknown option %q; want user, group, issuer, rp_id, origins or oidc_amr", sub)
		}
		if err != nil {
			return err
		}
		// Each option is checked as it comes, so that the error names
		// its line.
		if err := m.validate(); err != nil {
			return d.Errf("mfa: %v", err)
		}
	}
	s.MFA = m
	return nil
}
