// Argument helpers for the Caddyfile parsers.

package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// oneArg returns the one value of the current subdirective; an error
// names the subdirective, not its last value.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	sub := d.Val()
	args := d.RemainingArgs()
	if len(args) != 1 {
		return "", d.Errf("%s needs exactly one value", sub)
	}
	return args[0], nil
}

func oneOf(d *caddyfile.Dispenser, allowed ...string) (string, error) {
	sub := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return "", err
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", d.Errf("%s %q: want one of %v", sub, v, allowed)
}

func onOff(d *caddyfile.Dispenser) (bool, error) {
	v, err := oneOf(d, "on", "off")
	return v == "on", err
}

func durationArg(d *caddyfile.Dispenser, zeroOK bool) (caddy.Duration, error) {
	sub := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur < 0 || (dur == 0 && !zeroOK) {
		if zeroOK {
			return 0, d.Errf("%s %q: want a duration such as 30m, or 0 to disable", sub, v)
		}
		return 0, d.Errf("%s %q: want a positive duration such as 30m", sub, v)
	}
	return caddy.Duration(dur), nil
}
