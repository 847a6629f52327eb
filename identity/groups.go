package identity

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Groups is a user's groups as they are forwarded and judged: sorted,
// each once, and joined ahead of time, so that forwarding them costs no
// sort, join or boxing per request. A nil *Groups is no groups.
type Groups struct {
	names  []string // sorted, each once
	joined string   // names joined with ", "
	value  any      // joined, boxed once for a replacer
}

// NewGroups returns the set of groups, or nil for none. It keeps only
// the groups that can go in a comma-separated header (see
// ForwardableGroup).
func NewGroups(groups []string) *Groups {
	var names []string
	for _, g := range groups {
		if ForwardableGroup(g) {
			names = append(names, g)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	names = slices.Compact(names)
	joined := strings.Join(names, ", ")
	return &Groups{names: slices.Clip(names), joined: joined, value: joined}
}

// ForwardableGroup reports whether group can go in a comma-separated
// header as it is and be told apart from its neighbours: valid UTF-8, no
// comma, no control character, no space at either end. Local groups are
// stricter (ValidGroup); a provider's groups may have spaces inside
// ("Domain Admins").
func ForwardableGroup(group string) bool {
	return group != "" && len(group) <= 256 && utf8.ValidString(group) &&
		strings.TrimSpace(group) == group && !strings.ContainsRune(group, ',') &&
		!strings.ContainsFunc(group, unicode.IsControl) && !strings.ContainsFunc(group, InvisibleRune)
}

// Has reports whether group is in the set; a nil set has no groups.
func (g *Groups) Has(group string) bool {
	if g == nil {
		return false
	}
	_, found := slices.BinarySearch(g.names, group)
	return found
}

// Names are the groups, sorted, each once. Not to be modified.
func (g *Groups) Names() []string { return g.names }

// Joined is the names joined with ", ".
func (g *Groups) Joined() string { return g.joined }

// Value is Joined, boxed once (for a placeholder replacer).
func (g *Groups) Value() any { return g.value }
