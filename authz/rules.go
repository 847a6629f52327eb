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

// allows reports whether the rule lets user, a member of groups, in;
// mfa: whether their session proved a second factor.
func (r *Rule) allows(user string, groups Groups, mfa bool) bool {
	return (mfa || !r.MFA) && r.names(user, groups)
}

// names reports whether the rule names user, a member of groups.
func (r *Rule) names(user string, groups Groups) bool {
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
	// SecondFactor: the rules would allow the request (every reading)
	// if the session had proved a second factor; a rule that says mfa
	// matched a reading, and named the user.
	SecondFactor
)

// Judge decides whether user, a member of groups, whose session proved a
// second factor or not (mfa), may reach r, read as rd says (Read it
// first); for a request it does not allow it returns the rule that
// decided.
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
// A rule that says mfa (step-up) denies a user it names whose session
// has no second factor as SecondFactor, not Forbidden: proving one would
// let them in. That holds only if no reading is forbidden outright (a
// rule that does not name them), and for an unplain request only if
// every rule names them; else the verdict is what it would be without a
// second step.
//
// r is changed while the matchers run and restored before Judge returns.
func (rs Rules) Judge(r *http.Request, rd *Readings, user string, groups Groups, mfa bool) (Verdict, *Rule, error) {
	ru := rs.FirstNotAllowing(user, groups, mfa)
	if ru == nil {
		return Allowed, nil, nil // no reading can be denied
	}
	if rd.refused != "" {
		if !mfa && rs.FirstNotAllowing(user, groups, true) == nil {
			return SecondFactor, ru, nil // every reading is allowed once proved
		}
		return Unplain, ru, nil
	}
	var denied, stepUp *Rule
	visit := func(r *http.Request) (bool, error) {
		ru, err := rs.firstDenying(r, user, groups, mfa)
		if ru != nil && ru.MFA && ru.names(user, groups) {
			// Denied for want of a second factor: go on, another
			// reading may be forbidden outright.
			if stepUp == nil {
				stepUp = ru
			}
			return false, err
		}
		denied = ru
		return ru != nil, err
	}
	stop, err := rd.each(r, 0, rd.routes, visit)
	if !stop && err == nil {
		rd.withVariants() // only now: they cost an allocation
		_, err = rd.each(r, rd.routes, len(rd.paths()), visit)
	}
	switch {
	case denied != nil || err != nil:
		return Forbidden, denied, err
	case stepUp != nil:
		return SecondFactor, stepUp, nil
	}
	return Allowed, nil, nil
}

// FirstNotAllowing returns the first rule that does not let the user in
// (with a second factor proved or not: mfa); nil if every rule does, and
// then no reading of any request can be denied to the user.
func (rs Rules) FirstNotAllowing(user string, groups Groups, mfa bool) *Rule {
	for _, ru := range rs {
		if !ru.allows(user, groups, mfa) {
			return ru
		}
	}
	return nil
}

// firstDenying returns the first rule that matches r if it does not let
// the user in, and nil if it does or no rule matches.
func (rs Rules) firstDenying(r *http.Request, user string, groups Groups, mfa bool) (*Rule, error) {
	for _, ru := range rs {
		match, err := ru.Match.AnyMatchWithError(r)
		if err != nil {
			return nil, err
		}
		if match {
			if ru.allows(user, groups, mfa) {
				return nil, nil
			}
			return ru, nil
		}
	}
	return nil, nil
}
