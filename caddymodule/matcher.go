package caddymodule

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"

	"github.com/edgesession/edgesession/session"
)

func init() {
	caddy.RegisterModule(MatchSession{})
}

// MatchSession matches requests by their session: those with a logged-in
// user who, for each criterion given, meets it. Users: the user is one of
// them (a local name, or a provider's user as <provider>:<name>, as
// X-Session-User names them). Groups: the user is in one of them. Amr:
// the session's user proved who they are by one of these methods (RFC
// 8176, as X-Session-Amr lists them: "pwd", "otp", "hwk", "mfa"...). Data:
// for each key, the session holds the key, with one of the listed values
// if any are listed.
// With no criteria it matches any logged-in user.
//
// It reads the session that the session handler loaded for the request,
// so it works only in routes after that handler (handle, respond, error,
// reverse_proxy and the like); anywhere else, and for anonymous requests,
// it does not match. With several session handlers in a request's path
// (realms), it sees the last one's session.
//
// It judges who is asking, not what is asked: the path and method
// matchers beside it (in a named matcher, or a handle around it) see only
// Caddy's reading of the request, while the handler's rules and public
// judge every reading an upstream may make of it (see package authz). Say
// who may reach what with rules; use this matcher for the rest.
type MatchSession struct {
	Users  []string            `json:"users,omitempty"`
	Groups []string            `json:"groups,omitempty"`
	Amr    []string            `json:"amr,omitempty"`
	Data   map[string][]string `json:"data,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (MatchSession) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.matchers.session",
		New: func() caddy.Module { return new(MatchSession) },
	}
}

// sessionVarKey is the request variable under which the session handler
// leaves the session it loaded, for MatchSession.
const sessionVarKey = "edgesession.session"

// sessionVar is the request variable's value: a type no other module can
// make, so that no one but the session handler can pass a session to the
// matcher. It boxes without allocating.
type sessionVar struct{ s *session.Session }

// String keeps the session's contents out of {http.vars.*}: it is the
// user's name.
func (v sessionVar) String() string { return v.s.Rec.User }

// identify works out the logged-in user's groups and leaves the session
// for MatchSession; a request without a session leaves none, not even
// that of a session handler it passed before.
func (h *Handler) identify(r *http.Request, s *session.Session) {
	if s == nil {
		if caddyhttp.GetVar(r.Context(), sessionVarKey) != nil {
			caddyhttp.SetVar(r.Context(), sessionVarKey, nil)
		}
		return
	}
	s.Groups = h.groupsOf(s.Rec)
	caddyhttp.SetVar(r.Context(), sessionVarKey, sessionVar{s})
}

// Provision checks the criteria.
func (m *MatchSession) Provision(caddy.Context) error {
	for _, u := range m.Users {
		if err := identity.ValidUserRef(u); err != nil {
			return fmt.Errorf("session matcher: user %q: %w", u, err)
		}
	}
	for _, g := range m.Groups {
		if !forwardable(g) {
			return fmt.Errorf("session matcher: group %q: want 1 to 256 bytes of UTF-8, no comma or control character, no space at either end", g)
		}
	}
	for _, a := range m.Amr {
		if !identity.ValidAmr(a) {
			return fmt.Errorf("session matcher: amr %q: want a method as RFC 8176 names them, such as pwd, otp, hwk or mfa", a)
		}
	}
	for k := range m.Data {
		if !sessionstore.ValidDataKey(k) {
			return fmt.Errorf("session matcher: data key %q: want lower-case letters, digits and '-'", k)
		}
	}
	return nil
}

// Match implements caddyhttp.RequestMatcher.
func (m MatchSession) Match(r *http.Request) bool {
	ok, _ := m.MatchWithError(r)
	return ok
}

// MatchWithError implements caddyhttp.RequestMatcherWithError.
func (m MatchSession) MatchWithError(r *http.Request) (bool, error) {
	v, ok := caddyhttp.GetVar(r.Context(), sessionVarKey).(sessionVar)
	if !ok || v.s == nil || v.s.Rec.User == "" {
		return false, nil
	}
	s := v.s
	if len(m.Users) > 0 && !slices.Contains(m.Users, s.Rec.User) {
		return false, nil
	}
	if len(m.Groups) > 0 && !slices.ContainsFunc(m.Groups, s.Groups.Has) {
		return false, nil
	}
	if len(m.Amr) > 0 && !slices.ContainsFunc(amrOf(s.Rec), func(a string) bool { return slices.Contains(m.Amr, a) }) {
		return false, nil
	}
	for k, values := range m.Data {
		got, ok := s.Rec.Data[k]
		if !ok || (len(values) > 0 && !slices.Contains(values, got)) {
			return false, nil
		}
	}
	return true, nil
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens. Syntax:
//
//	session [user <name>... | group <name>... | amr <method>... | data <key> [<value>...]]
//	session {
//		user <name>...
//		group <name>...
//		amr <method>...
//		data <key> [<value>...]
//	}
//
// A criterion given twice adds to its list: any of the names, any of the
// values. Different criteria must all hold. Plain `session` matches any
// logged-in user.
func (m *MatchSession) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for d.Next() { // "session"; a named matcher may give it more than once
		if d.NextArg() {
			if err := m.unmarshalCriterion(d); err != nil {
				return err
			}
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if err := m.unmarshalCriterion(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// unmarshalCriterion reads one criterion, the dispenser at its name.
func (m *MatchSession) unmarshalCriterion(d *caddyfile.Dispenser) error {
	kind := d.Val()
	args := d.RemainingArgs()
	switch kind {
	case "user":
		if len(args) == 0 {
			return d.Err("session user: needs at least one name")
		}
		m.Users = append(m.Users, args...)
	case "group":
		if len(args) == 0 {
			return d.Err("session group: needs at least one group")
		}
		m.Groups = append(m.Groups, args...)
	case "amr":
		if len(args) == 0 {
			return d.Err("session amr: needs at least one method, such as otp hwk or mfa")
		}
		m.Amr = append(m.Amr, args...)
	case "data":
		if len(args) == 0 {
			return d.Err("session data: needs a key, then any values")
		}
		if m.Data == nil {
			m.Data = map[string][]string{}
		}
		values := m.Data[args[0]]
		if values == nil {
			values = []string{}
		}
		m.Data[args[0]] = append(values, args[1:]...)
	default:
		return d.Errf("session matcher: unknown criterion %q; want user, group, amr or data", kind)
	}
	return m.Provision(caddy.Context{})
}

// Interface guards
var (
	_ caddy.Provisioner                 = (*MatchSession)(nil)
	_ caddyhttp.RequestMatcherWithError = (*MatchSession)(nil)
	_ caddyhttp.RequestMatcher          = (*MatchSession)(nil)
	_ caddyfile.Unmarshaler             = (*MatchSession)(nil)
)
