package caddymodule

import (
	"net/http"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// groupSet is a user's groups as they are forwarded and judged.
type groupSet = identity.GroupSet

func newGroupSet(groups []string) *groupSet { return identity.NewGroupSet(groups) }

func forwardable(group string) bool { return identity.Forwardable(group) }

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

// forwardGroups sends the session's groups as <prefix>Groups. slot is a
// one-element slice of forward's single allocation, so that no two
// headers share a slice.
func (h *Handler) forwardGroups(r *http.Request, s *session, slot []string) {
	g := s.groups
	if g == nil {
		return
	}
	slot[0] = g.Joined()
	r.Header[h.fwd.groups] = slot
}
