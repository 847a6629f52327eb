package authz

import (
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Groups are the groups a user is in, as the rules ask about them. A nil
// Groups is no group.
type Groups interface {
	Has(group string) bool
}

// Rule is a provisioned rule: who may reach the requests its matchers
// match.
type Rule struct {
	// Match are the rule's matcher sets, provisioned; a request that any
	// set matches is judged by this rule. Without any, the rule judges
	// every request.
	Match caddyhttp.MatcherSets
	// Users and Groups are who the rule lets in.
	Users  []string
	Groups []string
	// MFA: the rule lets the users it names in only with a second
	// factor (step-up; see Judge).
	MFA bool
	// Name names the rule in logs: "#1 allow group admin".
	Name string
}

// allows reports whether the rule lets user, a member of groups, in.
func (r *Rule) allows(user string, groups Groups) bool {
	if slices.Contains(r.Users, user) {
		return true
	}
	if groups == nil {
		return false
	}
	for _, g := range r.Groups {
		if groups.Has(g) {
			return true
		}
	}
	return false
}

// Rules are a handler's rules, in order. Authorization is a function of
// the request and who the session is for; it keeps no state of its own.
type Rules []*Rule

// Verdict is what the rules make of a request.
type Verdict int

// The verdicts of Judge.
const (
	Allowed   Verdict = iota // no reading is denied to the user
	Forbidden                // a rule matched that does not name the user
	Unplain                  // the readings cannot be enumerated (Readings.Refused)
)

// Judge decides whether user, a member of groups, may reach r, read as
// rd says (Read it first); for a request it does not allow it returns
// the rule that decided.
//
// Rules judge the request the upstream will act on, which need not be
// the one Caddy's matchers see: Caddy's path matcher cleans the decoded
// path (dot segments, doubled slashes) and ignores case, while an
// upstream may route on the raw path, decode it again, read '\' or "%2f"
// as '/', cut ";params" off a segment, ignore a trailing slash, fold
// Unicode, run a PHP script and route on its PATH_INFO, or take another
// method than the request line's. So:
//
//   - Readings that cannot be enumerated (a path that is not plain,
//     see PlainPath: dot segments, encoded slashes, backslashes, double
//     encoding; and the others the package comment names) are
//     open-ended: no finite set of them can be judged with confidence.
//     Such a request is refused (Unplain) unless every rule lets the
//     user in, so that no reading of it could be denied. Browsers never
//     send one (they resolve dot segments, "%2e" too, before a
//     request), so only hand-made requests and the rare app that puts
//     "%2f" in its paths meet this.
//   - Otherwise the request is judged in every reading, route readings
//     and spelling variants, with every method reading. It is forbidden
//     if any reading is forbidden. Readings can only add denials: the
//     first rule that matches each reading decides that reading.
//
// r is changed while the matchers run and restored before Judge returns.
func (rs Rules) Judge(r *http.Request, rd *Readings, user string, groups Groups) (Verdict, *Rule, error) {
	ru := rs.FirstNotAllowing(user, groups)
	if ru == nil {
		return Allowed, nil, nil // no reading can be denied
	}
	if rd.refused != "" {
		return Unplain, ru, nil
	}
	var denied *Rule
	visit := func(r *http.Request) (bool, error) {
		ru, err := rs.firstDenying(r, user, groups)
		denied = ru
		return ru != nil, err
	}
	stop, err := rd.each(r, 0, rd.routes, visit)
	if !stop && err == nil {
		rd.withVariants() // only now: they cost an allocation
		_, err = rd.each(r, rd.routes, len(rd.paths()), visit)
	}
	if denied != nil || err != nil {
		return Forbidden, denied, err
	}
	return Allowed, nil, nil
}

// FirstNotAllowing returns the first rule that does not let the user in;
// nil if every rule does, and then no reading of any request can be
// denied to the user.
func (rs Rules) FirstNotAllowing(user string, groups Groups) *Rule {
	for _, ru := range rs {
		if !ru.allows(user, groups) {
			return ru
		}
	}
	return nil
}

// firstDenying returns the first rule that matches r if it does not let
// the user in, and nil if it does or no rule matches.
func (rs Rules) firstDenying(r *http.Request, user string, groups Groups) (*Rule, error) {
	for _, ru := range rs {
		match, err := ru.Match.AnyMatchWithError(r)
		if err != nil {
			return nil, err
		}
		if match {
			if ru.allows(user, groups) {
				return nil, nil
			}
			return ru, nil
		}
	}
	return nil, nil
}
