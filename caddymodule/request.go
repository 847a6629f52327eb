package caddymodule

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/sessionstore"
	"github.com/edgesession/edgesession/upstream"
)

// forward puts the session into the request for the upstream as trusted
// headers. (Its placeholders: sessionPlaceholders.)
func (h *Handler) forward(r *http.Request, s *session) {
	v := upstream.View{User: s.rec.User, Source: s.rec.Source, Data: s.rec.Data}
	if s.groups != nil {
		v.Groups = s.groups.header
	}
	h.fwd.Forward(r.Header, v)
}

// sessionPlaceholders answers the session's placeholders for one
// request: {http.session.user} and {http.auth.user.id},
// {http.session.source}, {http.session.groups}, {http.session.data.*}. Each is "" until a session
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
func (p *sessionPlaceholders) set(s *session) {
	p.rec, p.groups = s.rec, s.groups
	if s.rec.User != "" && p.repl != nil {
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
		return p.groups.value, true
	}
	k, ok := strings.CutPrefix(rest, "session.data.")
	if !ok {
		return nil, false
	}
	if v, ok := p.rec.Data[k]; ok && upstream.ValidDataKey(k) && upstream.ValidDataValue(v) {
		return v, true
	}
	return "", true
}

// isNavigation reports whether r is a browser navigating to a page, which
// may be sent to the login page: a GET or HEAD that accepts HTML and is not
// a script's request. Prototype.js and jQuery accept text/html too, but say
// X-Requested-With; fetch() and XMLHttpRequest in today's browsers say
// Sec-Fetch-Mode cors, same-origin or no-cors. A script would only follow
// the redirect and get the login page's HTML where it wants data.
func isNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && acceptsHTML(r) && !fromScript(r)
}

// fromScript reports whether r was sent by a page's script rather than by
// the browser navigating.
func fromScript(r *http.Request) bool {
	if _, ok := r.Header["X-Requested-With"]; ok {
		return true
	}
	mode, ok := r.Header["Sec-Fetch-Mode"]
	return ok && (len(mode) != 1 || mode[0] != "navigate")
}

// wantsPage reports whether an answer that is not a success (a refused
// cross-origin form, a throttled login) is for a person to read: a browser
// that posted a form by navigating. API clients (Accept: application/json,
// a JSON body, a script, a client that does not accept HTML) get JSON.
func wantsPage(r *http.Request) bool {
	if !acceptsHTML(r) || acceptsJSON(r) || fromScript(r) {
		return false
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mediaType != "application/json"
}

// acceptsHTML reports whether the client accepts HTML, judged by Accept.
func acceptsHTML(r *http.Request) bool {
	for _, v := range r.Header["Accept"] {
		if strings.Contains(v, "text/html") {
			return true
		}
	}
	return false
}

// acceptsJSON reports whether the client asked for JSON first.
func acceptsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

// originalRequestURI is the path and query the client asked for, before
// any rewrite.
func originalRequestURI(r *http.Request) string {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL.RequestURI()
	}
	return r.URL.RequestURI()
}

func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		return ip
	}
	return r.RemoteAddr
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
