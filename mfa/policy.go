package mfa

import "slices"

// Groups are the groups a user is in, as the policy asks about them.
type Groups interface {
	Has(group string) bool
}

// Policy says who must prove a second factor at every login (`mfa
// required`). Step-up for some paths only is a rule's (authz.Rule.MFA).
type Policy struct {
	// Everyone must, or only these users and the members of these
	// groups.
	Everyone bool
	Users    []string
	Groups   []string
}

// Required reports whether user, a member of groups (nil: none), must
// prove a second factor.
func (p *Policy) Required(user string, groups Groups) bool {
	if p == nil {
		return false
	}
	if p.Everyone || slices.Contains(p.Users, user) {
		return true
	}
	if groups != nil {
		for _, g := range p.Groups {
			if groups.Has(g) {
				return true
			}
		}
	}
	return false
}
