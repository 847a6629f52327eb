package caddymodule

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/upstream"
)

// forward puts the session into the request for the upstream as trusted
// headers. (Its placeholders: sessionPlaceholders.)
func (h *Handler) forward(r *http.Request, s *session.Session) {
	h.fwd.Forward(r.Header, viewOf(s))
}

// viewOf is what the upstream gets of s.
func viewOf(s *session.Session) upstream.View {
	v := upstream.View{User: s.Rec.User, Source: s.Rec.Source, Data: s.Rec.Data}
	if s.Groups != nil {
		v.Groups = s.Groups.Joined()
	}
	if v.User != "" {
		v.Amr = identity.AmrHeader(amrOf(s.Rec))
	}
	return v
}

// sessionPlaceholders answers the session's placeholders for one
// request: {http.session.user} and {http.auth.user.id},
// {http.session.source}, {http.session.groups}, {http.session.amr} (as
// X-Session-Amr: "pwd otp mfa"), {http.session.data.*}. Each is "" until a session
// is forwarded (and without one), so that `request_header X-User
// {http.session.user}` never sends its own literal text. It reads them
// from the forwarded record when asked, so that a request costs no boxing
// or map writes for placeholders nobody uses.
//
// One per request, in the request's vars, is the replacer's provider:
// with several session handlers on one request (nested realms, a handler
// run again by handle_errors), each starts it afresh and the last one to
// forward a session wins, as the headers the upstream gets do.
type sessionPlaceholders struct {
	repl   *caddy.Replacer
	rec    sessionstore.Record // as forwarded
	groups *groupSet
}

// placeholdersVarKey is the request variable that holds the request's
// sessionPlaceholders.
const placeholdersVarKey = "edgesession.placeholders"

// String keeps the forwarded session out of {http.vars.*}.
func (p *sessionPlaceholders) String() string { return "" }

// placeholdersFor returns r's session placeholders, empty: made, and
// given to r's replacer, the first time a handler asks.
func placeholdersFor(r *http.Request) *sessionPlaceholders {
	p, _ := caddyhttp.GetVar(r.Context(), placeholdersVarKey).(*sessionPlaceholders)
	if p == nil {
		p = new(sessionPlaceholders)
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			p.repl = repl
			repl.Map(p.lookup)
		}
		caddyhttp.SetVar(r.Context(), placeholdersVarKey, p)
	}
	*p = sessionPlaceholders{repl: p.repl}
	return p
}

// set makes the placeholders s's, as forwarded now. The session's user is
// the request's user: it takes {http.auth.user.id} over from any handler
// before.
func (p *sessionPlaceholders) set(s *session.Session) {
	p.rec, p.groups = s.Rec, s.Groups
	if s.Rec.User != "" && p.repl != nil {
		p.repl.Delete("http.auth.user.id")
	}
}

// lookup is the replacer's provider.
func (p *sessionPlaceholders) lookup(key string) (any, bool) {
	rest, ok := strings.CutPrefix(key, "http.")
	if !ok {
		return nil, false
	}
	switch rest {
	case "session.user", "auth.user.id":
		return p.rec.User, true
	case "session.source":
		if p.rec.User == "" {
			return "", true
		}
		return p.rec.Source, true
	case "session.groups":
		if p.groups == nil {
			return "", true
		}
		return p.groups.Value(), true
	case "session.amr":
		if p.rec.User == "" {
			return "", true
		}
		return identity.AmrHeader(amrOf(p.rec)), true
	}
	k, ok := strings.CutPrefix(rest, "session.data.")
	if !ok {
		return nil, false
	}
	if v, ok := p.rec.Data[k]; ok && sessionstore.ValidDataKey(k) && sessionstore.ValidDataValue(v) {
		return v, true
	}
	return "", true
}

// originalRequestURI is the path and query the client asked for, before
// any rewrite.
func originalRequestURI(r *http.Request) string {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL.RequestURI()
	}
	return r.URL.RequestURI()
}

func zapRemoteIP(r *http.Request) zap.Field { return zap.String("remote_ip", clientIP(r)) }
func zapPath(r *http.Request) zap.Field     { return zap.String("path", r.URL.Path) }

func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		return ip
	}
	return r.RemoteAddr
}
