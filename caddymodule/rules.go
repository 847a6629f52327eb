package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// Rule says who may reach the requests its matchers match. The first rule
// whose matchers match a request decides it: a logged-in user it names (by
// name or by group) goes on, anyone else logged in gets 403. A request that
// no rule matches is open to every logged-in user. Public requests are not
// judged by rules: no user is needed for them at all.
type Rule struct {
	// MatchRaw are request matcher sets (any of Caddy's request
	// matchers); a request that any set matches is judged by this rule.
	// Without matchers, the rule judges every request that reaches it.
	MatchRaw caddyhttp.RawMatcherSets `json:"match,omitempty" caddy:"namespace=http.matchers"`

	// Users who may reach the rule's requests, as X-Session-User names
	// them: a local name (password users, upstream logins, providers
	// with names local), or a provider's user as <provider>:<name>.
	Users []string `json:"users,omitempty"`

	// Groups whose members may reach the rule's requests.
	Groups []string `json:"groups,omitempty"`
}

// rule is a provisioned Rule.
type rule struct {
	match  caddyhttp.MatcherSets
	users  []string
	groups []string
	name   string // for logs: "#1 allow group admin"
}

// allows reports whether the rule lets user, a member of groups, in.
func (r *rule) allows(user string, groups *groupSet) bool {
	if slices.Contains(r.users, user) {
		return true
	}
	for _, g := range r.groups {
		if groups.has(g) {
			return true
		}
	}
	return false
}

// ruleSet is the handler's rules, in order. Authorization is a function of
// the request and who the session is for; it keeps no state of its own.
type ruleSet []*rule

// loadRules provisions the handler's rules.
func loadRules(ctx caddy.Context, rules []Rule) (ruleSet, error) {
	var rs ruleSet
	for i := range rules {
		raw := &rules[i]
		if err := raw.validate(); err != nil {
			return nil, fmt.Errorf("rule #%d: %w", i+1, err)
		}
		ru := &rule{users: raw.Users, groups: raw.Groups, name: raw.describe(i + 1)}
		if raw.MatchRaw != nil {
			sets, err := ctx.LoadModule(raw, "MatchRaw")
			if err != nil {
				return nil, fmt.Errorf("rule #%d: loading matchers: %w", i+1, err)
			}
			if err := ru.match.FromInterface(sets); err != nil {
				return nil, fmt.Errorf("rule #%d: %w", i+1, err)
			}
		}
		rs = append(rs, ru)
	}
	return rs, nil
}

func (r *Rule) validate() error {
	if len(r.Users) == 0 && len(r.Groups) == 0 {
		return errors.New("names no user and no group: it would let no one in")
	}
	for _, u := range r.Users {
		if err := validUserRef(u); err != nil {
			return fmt.Errorf("user %q: %w", u, err)
		}
	}
	for _, g := range r.Groups {
		if !forwardable(g) {
			return fmt.Errorf("group %q: want 1 to 256 bytes of UTF-8, no comma or control character, no space at either end", g)
		}
	}
	return nil
}

// describe names the rule in logs as the Caddyfile says it.
func (r *Rule) describe(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d allow", n)
	if len(r.Users) > 0 {
		b.WriteString(" user " + strings.Join(r.Users, " "))
	}
	if len(r.Groups) > 0 {
		b.WriteString(" group " + strings.Join(r.Groups, " "))
	}
	return b.String()
}

// verdict is what the rules make of a request.
type verdict int

const (
	allowed   verdict = iota
	forbidden         // a rule matched that does not name the user
	unplain           // the readings cannot be enumerated (readings.refused)
)

// judge decides whether user, a member of groups, may reach r, read as
// rd says (see readings.go); for a refused request it returns the rule
// that decided.
//
// Rules judge the request the upstream will act on, which need not be
// the one Caddy's matchers see: Caddy's path matcher cleans the decoded
// path (dot segments, doubled slashes) and ignores case, while an
// upstream may route on the raw path, decode it again, read '\' or "%2f"
// as '/', cut ";params" off a segment, ignore a trailing slash, fold
// Unicode, run a PHP script and route on its PATH_INFO, or take another
// method than the request line's. So:
//
//   - Readings that cannot be enumerated (a path that is not plain, see
//     plainPath: dot segments, encoded slashes, backslashes, double
//     encoding; and the others readings.go names) are open-ended: no
//     finite set of them can be judged with confidence. Such a request
//     is refused (unplain) unless every rule lets the user in, so that
//     no reading of it could be denied. Browsers never send one (they
//     resolve dot segments, "%2e" too, before a request), so only
//     hand-made requests and the rare app that puts "%2f" in its paths
//     meet this.
//   - Otherwise the request is judged in every reading, route readings
//     and spelling variants, with every method reading. It is forbidden
//     if any reading is forbidden. Readings can only add denials: the
//     first rule that matches each reading decides that reading.
func (rs ruleSet) judge(r *http.Request, rd *readings, user string, groups *groupSet) (verdict, *rule, error) {
	ru := rs.firstNotAllowing(user, groups)
	if ru == nil {
		return allowed, nil, nil // no reading can be denied
	}
	if rd.refused != "" {
		return unplain, ru, nil
	}
	var denied *rule
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
		return forbidden, denied, err
	}
	return allowed, nil, nil
}

// firstNotAllowing returns the first rule that does not let the user in;
// nil if every rule does.
func (rs ruleSet) firstNotAllowing(user string, groups *groupSet) *rule {
	for _, ru := range rs {
		if !ru.allows(user, groups) {
			return ru
		}
	}
	return nil
}

// firstDenying returns the first rule that matches r if it does not let
// the user in, and nil if it does or no rule matches.
func (rs ruleSet) firstDenying(r *http.Request, user string, groups *groupSet) (*rule, error) {
	for _, ru := range rs {
		match, err := ru.match.AnyMatchWithError(r)
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

// authorize applies the rules to a logged-in user's request. It answers
// the request itself (done) when the rules refuse it.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, s *session, rd *readings) (done bool, err error) {
	if len(h.rules) == 0 || s.rec.User == "" || h.rules.firstNotAllowing(s.rec.User, s.groups) == nil {
		return false, nil // no reading of the request could be denied
	}
	rd.readRequest(r, &h.readings)
	v, ru, err := h.rules.judge(r, rd, s.rec.User, s.groups)
	if err != nil {
		return true, caddyhttp.Error(http.StatusBadRequest, err)
	}
	if v == allowed {
		return false, nil
	}
	// A public request needs no user, so it needs no rule either.
	public, err := h.isPublic(r, rd)
	if err != nil {
		return true, caddyhttp.Error(http.StatusBadRequest, err)
	}
	if public {
		return false, nil
	}
	if v == unplain {
		h.logger.Info("request refused: its readings cannot be judged, and not every rule lets the user in",
			zap.String("reason", rd.refused), zap.String("user", s.rec.User), zap.String("rule", ru.name), zapPath(r), zapRemoteIP(r))
		return true, caddyhttp.Error(http.StatusBadRequest, errors.New(rd.refused+" refused where rules apply"))
	}
	h.logger.Info("forbidden", zap.String("user", s.rec.User), zap.String("rule", ru.name), zapPath(r), zapRemoteIP(r))
	return true, h.forbidden(w, r, s)
}

// unmarshalRule reads one rule:
//
//	allow [user <name>...] [group <name>...] [{
//		<matchers>
//	}]
//
// for example `allow group admin { path /admin/* }`. "user" and "group"
// may come in any order and more than once; without a block the rule
// judges every request.
func (s *Handler) unmarshalRule(d *caddyfile.Dispenser) error {
	var ru Rule
	var list *[]string
	keyword, names := "", 0
	for d.NextArg() {
		v := d.Val()
		if (v == "user" || v == "group") && !d.Token().Quoted() {
			if keyword != "" && names == 0 {
				return d.Errf("allow %s: names no one", keyword)
			}
			keyword, names, list = v, 0, &ru.Users
			if v == "group" {
				list = &ru.Groups
			}
			continue
		}
		if list == nil {
			return d.Errf("allow %q: want `allow user <name>...` or `allow group <name>...`, then a block of matchers", v)
		}
		*list = append(*list, v)
		names++
	}
	if keyword != "" && names == 0 {
		return d.Errf("allow %s: names no one", keyword)
	}
	set, err := caddyhttp.ParseCaddyfileNestedMatcherSet(d)
	if err != nil {
		return err
	}
	if len(set) > 0 {
		ru.MatchRaw = caddyhttp.RawMatcherSets{set}
	}
	if err := ru.validate(); err != nil {
		return d.Errf("allow: %v", err)
	}
	s.Rules = append(s.Rules, ru)
	return nil
}
