package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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

// forward puts the session into the request for the upstream: trusted
// headers and placeholders.
func (h *Handler) forward(r *http.Request, s *session) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if user := s.rec.User; user != "" {
		r.Header[http.CanonicalHeaderKey(h.HeaderPrefix+"User")] = []string{user}
		for _, name := range h.UserHeaders {
			r.Header[http.CanonicalHeaderKey(name)] = []string{user}
		}
		if repl != nil {
			repl.Set("http.session.user", user)
			repl.Set("http.auth.user.id", user)
		}
	}
	for k, v := range s.rec.Data {
		// Keys and values were validated when they were written (see
		// upstream.go); check again, since a store is not a client but
		// should not be able to inject headers either.
		if !validDataKey(k) || !validDataValue(v) {
			continue
		}
		r.Header[http.CanonicalHeaderKey(h.HeaderPrefix+"Data-"+k)] = []string{v}
		if repl != nil {
			repl.Set("http.session.data."+k, v)
		}
	}
}

// acceptsHTML reports whether the client is a browser navigating, judged by
// Accept.
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

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

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
		if !isTokenChar(r) {
			return false
		}
	}
	return true
}
