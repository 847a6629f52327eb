package caddymodule

import (
	"encoding/json"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/edgesession/edgesession/authz"
	"github.com/edgesession/edgesession/cookie"
	"github.com/edgesession/edgesession/sessionstore"
)

// headerMatcher recognises the trusted header names: those that start with
// the prefix, and the user headers. Names are compared case-insensitively
// with '_' read as '-', as many servers and frameworks read them.
type headerMatcher struct {
	prefix string   // lower case, '-' for '_'
	names  []string // lower case, '-' for '_'
}

func newHeaderMatcher(prefix string, userHeaders []string) headerMatcher {
	m := headerMatcher{prefix: normalizeHeaderName(prefix)}
	for _, n := range userHeaders {
		m.names = append(m.names, normalizeHeaderName(n))
	}
	return m
}

func normalizeHeaderName(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// matches reports whether name is a trusted header name. It allocates
// nothing: it runs on every request, for every header.
func (m headerMatcher) matches(name string) bool {
	if m.matchesPrefix(name) {
		return true
	}
	for _, n := range m.names {
		if len(name) == len(n) && foldEqual(name, n) {
			return true
		}
	}
	return false
}

// prefixOnly is m without the user headers: the names an upstream's
// response may not carry to the client.
func (m headerMatcher) prefixOnly() headerMatcher { return headerMatcher{prefix: m.prefix} }

// matchesPrefix reports whether name starts with the prefix.
func (m headerMatcher) matchesPrefix(name string) bool {
	return len(name) >= len(m.prefix) && foldEqual(name[:len(m.prefix)], m.prefix)
}

// foldEqual compares s with the normalized t, reading s in lower case and
// with '_' as '-'.
func foldEqual(s, t string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}

// removeFrom deletes every trusted header from h.
func (m headerMatcher) removeFrom(h http.Header) {
	for name := range h {
		if m.matches(name) {
			delete(h, name)
		}
	}
}

// stripRequest takes out of r everything a client could use to pass a
// trusted header to the upstream, or to make Caddy drop one of ours:
// trusted names in the header, in the Connection header's list of
// hop-by-hop names (which a proxy deletes from the request it forwards),
// and in request trailers, which arrive only when the body has been read.
//
// It also takes out the path-override headers (isPathOverrideHeader):
// Zend Framework 1 and Symfony before 2.7.49 route on X-Original-URL or
// X-Rewrite-URL instead of the request's path, so "GET /public/x.css"
// with "X-Original-URL: /admin/keys" would run /admin/keys while public
// and the rules judged /public/x.css. Only IIS's rewrite modules set
// them, behind the server; a client never has a reason to send them.
func (h *Handler) stripRequest(r *http.Request) {
	h.strip.removeRequestHeaders(r.Header)
	if conn, ok := r.Header["Connection"]; ok {
		h.strip.removeFromList(r.Header, "Connection", conn)
	}
	if r.Trailer != nil {
		h.strip.removeRequestHeaders(r.Trailer)
	}
	// net/http merges whatever trailers the client sends into r.Trailer
	// when the body reaches EOF, declared or not: strip them then too.
	if r.Body != nil && r.Body != http.NoBody && (r.ContentLength < 0 || r.Trailer != nil) {
		r.Body = &trailerStripper{ReadCloser: r.Body, r: r, m: h.strip}
	}
}

// removeRequestHeaders deletes from a request's header (or trailer) h
// every trusted header and every path-override header. It allocates
// nothing.
func (m headerMatcher) removeRequestHeaders(h http.Header) {
	for name := range h {
		if m.matches(name) || isPathOverrideHeader(name) {
			delete(h, name)
		}
	}
}

// isPathOverrideHeader reports whether name is X-Original-URL or
// X-Rewrite-URL, in any case and with '_' or '.' for '-', as CGI, WSGI
// and PHP read header names (HTTP_X_ORIGINAL_URL).
func isPathOverrideHeader(name string) bool {
	for _, h := range [...]string{"x-original-url", "x-rewrite-url"} {
		if len(name) == len(h) && authz.HeaderNameIs(name, h) {
			return true
		}
	}
	return false
}

// removeFromList removes the trusted names from the comma-separated list
// header name, deleting the header if nothing is left.
func (m headerMatcher) removeFromList(hdr http.Header, name string, values []string) {
	var kept []string
	changed := false
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			tok = textproto.TrimString(tok)
			if tok == "" {
				continue
			}
			if m.matches(tok) {
				changed = true
				continue
			}
			kept = append(kept, tok)
		}
	}
	if !changed {
		return
	}
	if len(kept) == 0 {
		delete(hdr, name)
		return
	}
	hdr[name] = []string{strings.Join(kept, ", ")}
}

// trailerStripper removes trusted names from the request's trailers at
// EOF, in the Read that sees EOF: before any reader (reverse_proxy copies
// the trailers in that same Read) can see them.
type trailerStripper struct {
	io.ReadCloser
	r *http.Request
	m headerMatcher
}

func (t *trailerStripper) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF && t.r.Trailer != nil {
		t.m.removeRequestHeaders(t.r.Trailer)
	}
	return n, err
}

// forwardHeaders are the canonical names forward writes, worked out once
// (newForwardHeaders).
type forwardHeaders struct {
	user       []string       // <prefix>User, the user headers, the headers mapped to the user
	data       []mappedHeader // the headers mapped to a data key
	dataPrefix string         // <prefix>Data-
	groups     string         // <prefix>Groups
	source     string         // <prefix>Source
	dataNames  *dataNames     // <prefix>Data-<Key> of the keys seen so far
}

// dataNames remembers the header name of each data key forwarded, so that
// a request does not build it again: a map read without a lock, replaced
// by a copy with one more name when a key is new, up to maxDataNames
// (keys are set by upstreams, not clients, but need not be few).
type dataNames struct {
	names atomic.Pointer[map[string]string]
	mu    sync.Mutex // serializes adding
}

const maxDataNames = 256

// name returns prefix + the canonical form of data key k.
func (d *dataNames) name(prefix, k string) string {
	if m := d.names.Load(); m != nil {
		if name, ok := (*m)[k]; ok {
			return name
		}
	}
	name := prefix + canonicalKeyTail(k)
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[string]string{}
	if old := d.names.Load(); old != nil {
		if len(*old) >= maxDataNames {
			return name
		}
		m = maps.Clone(*old)
	}
	m[k] = name
	d.names.Store(&m)
	return name
}

// forward puts the session into the request for the upstream as trusted
// headers. (Its placeholders: sessionPlaceholders.)
func (h *Handler) forward(r *http.Request, s *session) {
	// One allocation for the values of all the headers, but no two headers
	// share a slice: its capacity is never exceeded.
	var values []string
	if n := len(h.fwd.user) + 2 + len(h.fwd.data) + len(s.rec.Data); s.rec.User != "" || len(s.rec.Data) > 0 {
		values = make([]string, 0, n)
	}
	slot := func(v string) []string {
		values = append(values, v)
		return values[len(values)-1 : len(values) : len(values)]
	}
	if user := s.rec.User; user != "" {
		for _, name := range h.fwd.user {
			r.Header[name] = slot(user)
		}
		h.forwardGroups(r, s, slot(""))
		// Where the name comes from (SPEC §9): password, upstream or
		// oidc:<provider>.
		if s.rec.Source != "" {
			r.Header[h.fwd.source] = slot(s.rec.Source)
		}
	}
	for k, v := range s.rec.Data {
		// Keys and values were validated when they were written (see
		// upstream.go); check again, since a store is not a client but
		// should not be able to inject headers either.
		if !validDataKey(k) || !validDataValue(v) {
			continue
		}
		r.Header[h.fwd.dataNames.name(h.fwd.dataPrefix, k)] = slot(v)
	}
	for _, m := range h.fwd.data {
		if v, ok := s.rec.Data[m.key]; ok && validDataValue(v) {
			r.Header[m.name] = slot(v)
		}
	}
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
		return p.groups.Value(), true
	}
	k, ok := strings.CutPrefix(rest, "session.data.")
	if !ok {
		return nil, false
	}
	if v, ok := p.rec.Data[k]; ok && validDataKey(k) && validDataValue(v) {
		return v, true
	}
	return "", true
}

// canonicalKeyTail is http.CanonicalHeaderKey for a valid data key
// ([a-z0-9-]): upper case after each '-' and at the start.
func canonicalKeyTail(k string) string {
	b := []byte(k)
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
		upper = c == '-'
	}
	return string(b)
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

// validHeaderName reports whether s can be (the start of) a header name.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !cookie.IsTokenChar(r) {
			return false
		}
	}
	return true
}
