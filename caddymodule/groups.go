package caddymodule

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

// groupSet is a user's groups as they are forwarded and judged: sorted,
// each once, and joined for the header ahead of time, so that forwarding
// them costs no sort, join or boxing per request.
type groupSet struct {
	names  []string // sorted, each once
	header string   // names joined with ", "
	value  any      // header, boxed once for the replacer
}

// newGroupSet returns the set of groups, or nil for none. It keeps only
// the groups that can go in a comma-separated header (see forwardable).
func newGroupSet(groups []string) *groupSet {
	var names []string
	for _, g := range groups {
		if forwardable(g) {
			names = append(names, g)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	names = slices.Compact(names)
	header := strings.Join(names, ", ")
	return &groupSet{names: slices.Clip(names), header: header, value: header}
}

// forwardable reports whether group can go in the groups header as it is
// and be told apart from its neighbours: valid UTF-8, no comma, no
// control character, no space at either end. Local groups are stricter
// (validGroup); a provider's groups may have spaces inside
// ("Domain Admins").
func forwardable(group string) bool {
	return group != "" && len(group) <= 256 && utf8.ValidString(group) &&
		strings.TrimSpace(group) == group && !strings.ContainsRune(group, ',') &&
		!strings.ContainsFunc(group, unicode.IsControl) && !strings.ContainsFunc(group, identity.InvisibleRune)
}

// has reports whether group is in the set; a nil set has no groups.
func (g *groupSet) Has(group string) bool {
	if g == nil {
		return false
	}
	_, found := slices.BinarySearch(g.names, group)
	return found
}

// groupsOf returns the groups of a logged-in session's user now: for a
// local user those of their user line or users_file line as they are at
// this moment (a change applies at once, without a new login), for
// anyone else those the identity source recorded at login.
func (h *Handler) groupsOf(rec sessionstore.Record) *groupSet {
	if rec.User == "" {
		return nil
	}
	if rec.Source == identity.Password {
		return h.users.groupSet(rec.User)
	}
	return newGroupSet(rec.Groups)
}

// groupSet returns the groups of user name, nil for an unknown user or one
// without groups.
func (db *userDB) groupSet(name string) *groupSet {
	if db == nil {
		return nil
	}
	db.refresh(false)
	if acct, ok := db.users.Load().accounts[name]; ok {
		return acct.groupSet
	}
	return nil
}
