package identity

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// GroupSet is a user's groups as they are forwarded and judged: sorted,
// each once, and joined ahead of time, so that forwarding them costs no
// sort, join or boxing per request. A nil *GroupSet has no groups.
type GroupSet struct {
	names  []string // sorted, each once
	joined string   // names joined with ", "
	value  any      // joined, boxed once
}

// NewGroupSet returns the set of groups, or nil for none. It keeps only
// the groups that can go in a comma-separated header (see Forwardable).
func NewGroupSet(groups []string) *GroupSet {
	var names []string
	for _, g := range groups {
		if Forwardable(g) {
			names = append(names, g)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	names = slices.Compact(names)
	joined := strings.Join(names, ", ")
	return &GroupSet{names: slices.Clip(names), joined: joined, value: joined}
}

// Forwardable reports whether group can go in the groups header as it is
// and be told apart from its neighbours: valid UTF-8, no comma, no
// control character, no space at either end. Local groups are stricter
// (ValidGroup); a provider's groups may have spaces inside
// ("Domain Admins").
func Forwardable(group string) bool {
	return group != "" && len(group) <= 256 && utf8.ValidString(group) &&
		strings.TrimSpace(group) == group && !strings.ContainsRune(group, ',') &&
		!strings.ContainsFunc(group, unicode.IsControl) && !strings.ContainsFunc(group, InvisibleRune)
}

// Has reports whether group is in the set; a nil set has no groups.
func (g *GroupSet) Has(group string) bool {
	if g == nil {
		return false
	}
	_, found := slices.BinarySearch(g.names, group)
	return found
}

// Names returns the groups, sorted, each once. The slice is shared: the
// caller must not change it.
func (g *GroupSet) Names() []string {
	if g == nil {
		return nil
	}
	return g.names
}

// Joined returns the groups joined with ", ", as the groups header
// carries them; "" for none.
func (g *GroupSet) Joined() string {
	if g == nil {
		return ""
	}
	return g.joined
}

// Value returns Joined as an interface value boxed once, for a caller
// that hands it on as one (a placeholder) on every request.
func (g *GroupSet) Value() any {
	if g == nil {
		return nil
	}
	return g.value
}
