// C's stand-in for D's Caddyfile `mfa` (branch policy,
// caddyfile_mfa.go): only what the passkey tests need. DELETE THIS FILE
// when merging branch policy (same function name, on purpose).

package caddymodule

import "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

// unmarshalMFA reads `mfa [required] [{ rp_id <host>; origins <origin>... }]`.
func unmarshalMFA(d *caddyfile.Dispenser, s *Handler) error {
	m := &MFA{}
	if d.NextArg() {
		if d.Val() != "required" {
			return d.Errf("mfa %q: want `mfa`, `mfa required` or a block", d.Val())
		}
		m.Required = &MFARequired{}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "rp_id":
			m.RPID, err = oneArg(d)
		case "origins":
			if m.Origins = d.RemainingArgs(); len(m.Origins) == 0 {
				return d.Err("mfa: origins needs at least one origin, such as https://example.com")
			}
		default:
			return d.Errf("mfa: unknown option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	s.MFA = m
	return nil
}
