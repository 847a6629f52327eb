package caddymodule

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// Header names an app already trusts (SPEC §12). Many apps read who the
// user is from a header of their own choosing: tt-rss User-Name and
// User-Mail, Grafana X-WEBAUTH-EMAIL, oauth2-proxy's X-Forwarded-Email.
// Handler.Headers forwards the user or a session data key under such a
// name. Each name is a trusted name like the prefix and the user headers:
// removed from every client request (any case, '_' as '-', also out of
// Connection and the trailers) before the handler writes its own.

// headerSourceUser and headerSourceData are what a mapped header carries:
// the user, or "data.<key>", the value of one session data key.
const (
	headerSourceUser = "user"
	headerSourceData = "data."
)

// mappedHeader is a header carrying one session data key.
type mappedHeader struct {
	name string // canonical
	key  string
}

// parseHeaderSource returns the data key that source names, or "" for the
// user.
func parseHeaderSource(source string) (string, error) {
	if source == headerSourceUser {
		return "", nil
	}
	if key, ok := strings.CutPrefix(source, headerSourceData); ok {
		if !validDataKey(key) {
			return "", fmt.Errorf("session data key %q: keys are 1 to 64 of a-z, 0-9 and '-'", key)
		}
		return key, nil
	}
	return "", fmt.Errorf("%q: want user or data.<key>", source)
}

// reservedHeaders are names the handler will not treat as trusted: HTTP
// itself, Caddy or the proxy rely on them, so stripping them from every
// client request would break requests (or let the user's name overwrite
// a client's credentials or forwarded address).
var reservedHeaders = []string{
	"host", "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
	"upgrade", "content-length", "content-type", "content-encoding", "expect",
	"cookie", "authorization", "proxy-authorization",
	"forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "via",
}

// checkTrustedName checks one user header or mapped header name.
func checkTrustedName(name string) error {
	if !validHeaderName(name) {
		return fmt.Errorf("not a valid header name")
	}
	if slices.Contains(reservedHeaders, normalizeHeaderName(name)) {
		return fmt.Errorf("HTTP or the proxy relies on this header; it cannot carry the user")
	}
	return nil
}

// checkHeaderNames checks the prefix, the user headers and the mapped
// headers together: every name valid and not reserved, no mapped header
// under the prefix (the prefix is the handler's own), no name given twice
// in any spelling, every source a user or a valid data key.
func (h *Handler) checkHeaderNames() error {
	prefix := h.HeaderPrefix
	if prefix == "" {
		prefix = DefaultHeaderPrefix
	}
	if !validHeaderName(prefix) {
		return fmt.Errorf("header_prefix %q: not a valid header name prefix", prefix)
	}
	return h.checkTrustedNames(prefix)
}

// checkTrustedNames is checkHeaderNames with the prefix given, or none
// ("") while a Caddyfile may still set it.
func (h *Handler) checkTrustedNames(prefix string) error {
	seen := map[string]string{}
	for _, name := range h.UserHeaders {
		if err := checkTrustedName(name); err != nil {
			return fmt.Errorf("user_header %q: %v", name, err)
		}
		seen[normalizeHeaderName(name)] = "user_header " + name
	}
	for _, name := range slices.Sorted(maps.Keys(h.Headers)) {
		if err := checkTrustedName(name); err != nil {
			return fmt.Errorf("header %q: %v", name, err)
		}
		if prefix != "" && underPrefix(name, prefix) {
			return fmt.Errorf("header %q: starts with the header prefix %q, which is the handler's own", name, prefix)
		}
		if other, dup := seen[normalizeHeaderName(name)]; dup {
			return fmt.Errorf("header %q: the same name as %s (names are compared case-insensitively, '_' as '-')", name, other)
		}
		seen[normalizeHeaderName(name)] = "header " + name
		if _, err := parseHeaderSource(h.Headers[name]); err != nil {
			return fmt.Errorf("header %q: %v", name, err)
		}
	}
	return nil
}

// underPrefix reports whether the header name starts with prefix, as the
// handler compares them.
func underPrefix(name, prefix string) bool {
	return newHeaderMatcher(prefix, nil).matchesPrefix(name)
}

// trustedNames are the names besides the prefix that no client may send:
// the user headers and the mapped headers.
func (h *Handler) trustedNames() []string {
	names := slices.Clone(h.UserHeaders)
	for name := range h.Headers {
		names = append(names, name)
	}
	return names
}

// newForwardHeaders works out the canonical names forward writes: the
// user under <prefix>User, the user headers and the headers mapped to the
// user; each data key under <prefix>Data-<Key> and the headers mapped to
// it. Sources were checked by checkHeaderNames.
func newForwardHeaders(prefix string, userHeaders []string, mapped map[string]string) forwardHeaders {
	f := forwardHeaders{user: []string{http.CanonicalHeaderKey(prefix + "User")}, dataPrefix: http.CanonicalHeaderKey(prefix + "Data-"), dataNames: new(dataNames)}
	for _, name := range userHeaders {
		f.user = append(f.user, http.CanonicalHeaderKey(name))
	}
	for _, name := range slices.Sorted(maps.Keys(mapped)) {
		key, err := parseHeaderSource(mapped[name])
		switch {
		case err != nil:
			continue
		case key == "":
			f.user = append(f.user, http.CanonicalHeaderKey(name))
		default:
			f.data = append(f.data, mappedHeader{name: http.CanonicalHeaderKey(name), key: key})
		}
	}
	f.groups = http.CanonicalHeaderKey(prefix + "Groups")
	f.source = http.CanonicalHeaderKey(prefix + "Source")
	return f
}
