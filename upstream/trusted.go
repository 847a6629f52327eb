package upstream

import (
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/edgesession/edgesession/authz"
)

// Trusted recognises the trusted header names: those that start with the
// prefix, and the other trusted names (user headers, mapped headers, an
// assertion header outside the prefix). Names are compared
// case-insensitively with '_' and '.' read as '-', as many servers and
// frameworks read them (CGI, WSGI and PHP name X.Session.User and
// X_Session_User both HTTP_X_SESSION_USER).
type Trusted struct {
	prefix string   // lower case, '-' for '_' and '.'
	names  []string // lower case, '-' for '_' and '.'
}

// NewTrusted returns the matcher of prefix and names.
func NewTrusted(prefix string, names []string) Trusted {
	m := Trusted{prefix: normalizeHeaderName(prefix)}
	for _, n := range names {
		m.names = append(m.names, normalizeHeaderName(n))
	}
	return m
}

func normalizeHeaderName(s string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(s))
}

// Add makes name trusted too, unless it is already.
func (m *Trusted) Add(name string) {
	if !m.Matches(name) {
		m.names = append(m.names, normalizeHeaderName(name))
	}
}

// Matches reports whether name is a trusted header name. It allocates
// nothing: it runs on every request, for every header.
func (m Trusted) Matches(name string) bool {
	if m.MatchesPrefix(name) {
		return true
	}
	for _, n := range m.names {
		if len(name) == len(n) && foldEqual(name, n) {
			return true
		}
	}
	return false
}

// prefixOnly is m without the other names: the names an upstream's
// response may not carry to the client.
func (m Trusted) prefixOnly() Trusted { return Trusted{prefix: m.prefix} }

// MatchesPrefix reports whether name starts with the prefix.
func (m Trusted) MatchesPrefix(name string) bool {
	return len(name) >= len(m.prefix) && foldEqual(name[:len(m.prefix)], m.prefix)
}

// foldEqual compares s with the normalized t, reading s in lower case and
// with '_' and '.' as '-'.
func foldEqual(s, t string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' || c == '.' {
			c = '-'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}

// RemoveFrom deletes every trusted header from h.
func (m Trusted) RemoveFrom(h http.Header) {
	for name := range h {
		if m.Matches(name) {
			delete(h, name)
		}
	}
}

// StripRequest takes out of r everything a client could use to pass a
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
func (m Trusted) StripRequest(r *http.Request) {
	m.removeRequestHeaders(r.Header)
	if conn, ok := r.Header["Connection"]; ok {
		m.removeFromList(r.Header, "Connection", conn)
	}
	if r.Trailer != nil {
		m.removeRequestHeaders(r.Trailer)
	}
	// net/http merges whatever trailers the client sends into r.Trailer
	// when the body reaches EOF, declared or not: strip them then too.
	if r.Body != nil && r.Body != http.NoBody && (r.ContentLength < 0 || r.Trailer != nil) {
		r.Body = &trailerStripper{ReadCloser: r.Body, r: r, m: m}
	}
}

// removeRequestHeaders deletes from a request's header (or trailer) h
// every trusted header and every path-override header. It allocates
// nothing.
func (m Trusted) removeRequestHeaders(h http.Header) {
	for name := range h {
		if m.Matches(name) || isPathOverrideHeader(name) {
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
func (m Trusted) removeFromList(hdr http.Header, name string, values []string) {
	var kept []string
	changed := false
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			tok = textproto.TrimString(tok)
			if tok == "" {
				continue
			}
			if m.Matches(tok) {
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
	m Trusted
}

func (t *trailerStripper) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF && t.r.Trailer != nil {
		t.m.removeRequestHeaders(t.r.Trailer)
	}
	return n, err
}
