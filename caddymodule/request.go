package caddymodule

import (
	"encoding/json"
	"net/http"
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

// forwardHeaders are the canonical names forward writes, worked out once.
type forwardHeaders struct {
	user       []string // <prefix>User and the user headers
	dataPrefix string   // <prefix>Data-
}

func newForwardHeaders(prefix string, userHeaders []string) forwardHeaders {
	f := forwardHeaders{user: []string{http.CanonicalHeaderKey(prefix + "User")}, dataPrefix: http.CanonicalHeaderKey(prefix + "Data-")}
	for _, name := range userHeaders {
		f.user = append(f.user, http.CanonicalHeaderKey(name))
	}
	return f
}

// forward puts the session into the request for the upstream: trusted
// headers and placeholders.
func (h *Handler) forward(r *http.Request, s *session) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if user := s.rec.User; user != "" {
		// One allocation, but no two headers share a slice.
		values := make([]string, len(h.fwd.user))
		for i, name := range h.fwd.user {
			values[i] = user
			r.Header[name] = values[i : i+1 : i+1]
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
		r.Header[h.fwd.dataPrefix+canonicalKeyTail(k)] = []string{v}
		if repl != nil {
			repl.Set("http.session.data."+k, v)
		}
	}
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
