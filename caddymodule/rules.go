package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/authz"
	"github.com/edgesession/edgesession/endpoints"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/session"
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

	// MFA makes the rule also require a second factor (step-up): a user
	// it names whose session proved none is sent to prove one (the
	// second step, <prefix>/mfa) and then back; a user it does not name
	// is forbidden as ever.
	MFA bool `json:"mfa,omitempty"`
}

// loadRules provisions the handler's rules.
func loadRules(ctx caddy.Context, rules []Rule) (authz.Rules, error) {
	var rs authz.Rules
	for i := range rules {
		raw := &rules[i]
		if err := raw.validate(); err != nil {
			return nil, fmt.Errorf("rule #%d: %w", i+1, err)
		}
		ru := &authz.Rule{Users: raw.Users, Groups: raw.Groups, MFA: raw.MFA, Name: raw.describe(i + 1)}
		if raw.MatchRaw != nil {
			sets, err := ctx.LoadModule(raw, "MatchRaw")
			if err != nil {
				return nil, fmt.Errorf("rule #%d: loading matchers: %w", i+1, err)
			}
			if err := ru.Match.FromInterface(sets); err != nil {
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
		if err := identity.ValidUserRef(u); err != nil {
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
	if r.MFA {
		b.WriteString(" (mfa)")
	}
	return b.String()
}

// authorize applies the rules to a logged-in user's request (see
// authz.Rules.Judge): Pass, Forbidden, SecondFactor (a rule that says
// mfa names the user, whose session proved none), or Refused when the
// request's readings cannot be judged.
func (h *Handler) authorize(r *http.Request, s *session.Session, rd *authz.Readings) (endpoints.Verdict, error) {
	if len(h.rules) == 0 || s.Rec.User == "" {
		return endpoints.Pass, nil
	}
	mfa := h.hasMFA(s.Rec)
	if h.rules.FirstNotAllowing(s.Rec.User, s.Groups, mfa) == nil {
		return endpoints.Pass, nil // no reading of the request could be denied
	}
	rd.Read(r, &h.readings)
	v, ru, err := h.rules.Judge(r, rd, s.Rec.User, s.Groups, mfa)
	if err != nil {
		return endpoints.Refused, err
	}
	if v == authz.Allowed {
		return endpoints.Pass, nil
	}
	// A public request needs no user, so it needs no rule either.
	public, err := h.isPublic(r, rd)
	if err != nil {
		return endpoints.Refused, err
	}
	if public {
		return endpoints.Pass, nil
	}
	switch v {
	case authz.Unplain:
		h.logger.Info("request refused: its readings cannot be judged, and not every rule lets the user in",
			zap.String("reason", rd.Refused()), zap.String("user", s.Rec.User), zap.String("rule", ru.Name), zapPath(r), zapRemoteIP(r))
		return endpoints.Refused, errors.New(rd.Refused() + " refused where rules apply")
	case authz.SecondFactor:
		h.logger.Info("second factor required", zap.String("user", s.Rec.User), zap.String("rule", ru.Name), zapPath(r), zapRemoteIP(r))
		return endpoints.SecondFactor, nil
	}
	h.logger.Info("forbidden", zap.String("user", s.Rec.User), zap.String("rule", ru.Name), zapPath(r), zapRemoteIP(r))
	return endpoints.Forbidden, nil
}

// unmarshalRule reads one rule:
//
//	allow [user <name>...] [group <name>...] [{
//		<matchers>
//		mfa
//	}]
//
// for example `allow group admin { path /admin/* }`. "user" and "group"
// may come in any order and more than once; without a block the rule
// judges every request. `mfa` on a line of its own in the block is no
// matcher: it makes the rule also require a second factor (step-up).
func unmarshalRule(d *caddyfile.Dispenser, s *Handler) error {
	// The rule's tokens, without its mfa line, so that the block is
	// Caddy's matcher set as it is everywhere else.
	seg, mfaLine, err := withoutMFALine(d.NextSegment())
	if err != nil {
		return err
	}
	d = caddyfile.NewDispenser(seg)
	d.Next() // "allow"
	ru := Rule{MFA: mfaLine}
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

// withoutMFALine returns seg, an allow line and its block, without the
// block's `mfa` line, and whether it had one. Only an unquoted mfa alone
// on a line directly in the block counts ("mfa" as a value of a matcher,
// or in a nested block, is the matcher's).
func withoutMFALine(seg caddyfile.Segment) (caddyfile.Segment, bool, error) {
	out := make(caddyfile.Segment, 0, len(seg))
	found := false
	depth := 0
	for i, tok := range seg {
		alone := (i == 0 || seg[i-1].Line != tok.Line || seg[i-1].File != tok.File) &&
			(i+1 == len(seg) || seg[i+1].Line != tok.Line || seg[i+1].File != tok.File)
		startsLine := i > 0 && (seg[i-1].Line != tok.Line || seg[i-1].File != tok.File)
		if depth == 1 && startsLine && tok.Text == "mfa" && !tok.Quoted() {
			d := caddyfile.NewDispenser(seg[i:])
			d.Next()
			switch {
			case !alone:
				return nil, false, d.Err("allow: mfa takes no arguments; it stands alone on its line in the rule's block")
			case found:
				return nil, false, d.Err("allow: mfa given twice")
			}
			found = true
			continue
		}
		switch tok.Text {
		case "{":
			if !tok.Quoted() {
				depth++
			}
		case "}":
			if !tok.Quoted() {
				depth--
			}
		}
		out = append(out, tok)
	}
	return out, found, nil
}
