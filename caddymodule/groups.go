package caddymodule

import (
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// groupSet is a user's groups as they are forwarded and judged.
type groupSet = identity.Groups

// newGroupSet returns the set of groups, or nil for none.
func newGroupSet(groups []string) *groupSet { return identity.NewGroups(groups) }

// forwardable reports whether group can go in the groups header as it is.
func forwardable(group string) bool { return identity.ForwardableGroup(group) }

// groupsOf returns the groups of a logged-in session's user now: for a
// local user those of their user line or users_file line as they are at
// this moment (a change applies at once, without a new login), for
// anyone else those the identity source recorded at login.
func (h *Handler) groupsOf(rec sessionstore.Record) *groupSet {
	if rec.User == "" {
		return nil
	}
	if rec.Source == identity.Password {
		return h.users.GroupSet(rec.User)
	}
	return newGroupSet(rec.Groups)
}
