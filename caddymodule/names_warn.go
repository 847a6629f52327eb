package caddymodule

import (
	"strings"

	"github.com/edgesession/edgesession/identity/oidc"
	"go.uber.org/zap"
)

// warnBareNames logs, at provision, each rule's bare user or group (no
// "<provider>:") that no local user has, when a provider qualifies its
// names: such a rule likely means the provider's user or group, which is
// "<provider>:<name>" (a deny written for "mallory" no longer stops the
// provider's mallory, who is corp:mallory). Not an error: the name may
// be one the upstream logs in (upstream_control) or a user yet to be
// added to the users file.
func (h *Handler) warnBareNames() {
	var qualified []string
	for _, p := range h.oidc.List() {
		if p.Names != oidc.NamesLocal {
			qualified = append(qualified, p.Name)
		}
	}
	if len(qualified) == 0 {
		return
	}
	localUsers, localGroups := map[string]bool{}, map[string]bool{}
	for name, groups := range h.users.All() {
		localUsers[name] = true
		for _, g := range groups {
			localGroups[g] = true
		}
	}
	hint := func(name string) []string {
		out := make([]string, len(qualified))
		for i, p := range qualified {
			out[i] = p + ":" + name
		}
		return out
	}
	for _, ru := range h.rules {
		for _, u := range ru.Users {
			if !localUsers[u] && !strings.Contains(u, ":") {
				h.logger.Warn("a rule names a user who is no local user; a provider's users are <provider>:<name>",
					zap.String("rule", ru.Name), zap.String("user", u), zap.Strings("did_you_mean", hint(u)))
			}
		}
		for _, g := range ru.Groups {
			if !localGroups[g] && !strings.Contains(g, ":") {
				h.logger.Warn("a rule names a group no local user is in; a provider's groups are <provider>:<group>",
					zap.String("rule", ru.Name), zap.String("group", g), zap.Strings("did_you_mean", hint(g)))
			}
		}
	}
}
