package upstream

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/edgesession/edgesession/sessionstore"
	"golang.org/x/net/http/httpguts"
)

// Header names an app already trusts (SPEC §12). Many apps read who the
// user is from a header of their own choosing: tt-rss User-Name and
// User-Mail, Grafana X-WEBAUTH-EMAIL, oauth2-proxy's X-Forwarded-Email.
// The handler forwards the user or a session data key under such a name
// (a mapped header). Each name is a trusted name like the prefix and the
// user headers: removed from every client request (any case, '_' and '.' as '-',
// also out of Connection and the trailers) before the handler writes its
// own.

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
		if !sessionstore.ValidDataKey(key) {
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
	if !ValidHeaderName(name) {
		return fmt.Errorf("not a valid header name")
	}
	if slices.Contains(reservedHeaders, normalizeHeaderName(name)) {
		return fmt.Errorf("HTTP or the proxy relies on this header; it cannot carry the user")
	}
	return nil
}

// CheckNames checks the user headers and the mapped headers (name ->
// "user" or "data.<key>") together: every name valid and not reserved, no
// mapped header under prefix (the prefix is the handler's own), no name
// given twice in any spelling, every source a user or a valid data key.
// prefix "" skips the prefix check (a Caddyfile may still set it).
func CheckNames(prefix string, userHeaders []string, mapped map[string]string) error {
	seen := map[string]string{}
	for _, name := range userHeaders {
		if err := checkTrustedName(name); err != nil {
			return fmt.Errorf("user_header %q: %v", name, err)
		}
		seen[normalizeHeaderName(name)] = "user_header " + name
	}
	for _, name := range slices.Sorted(maps.Keys(mapped)) {
		if err := checkTrustedName(name); err != nil {
			return fmt.Errorf("header %q: %v", name, err)
		}
		if prefix != "" && UnderPrefix(name, prefix) {
			return fmt.Errorf("header %q: starts with the header prefix %q, which is the handler's own", name, prefix)
		}
		if other, dup := seen[normalizeHeaderName(name)]; dup {
			return fmt.Errorf("header %q: the same name as %s (names are compared case-insensitively, '_' and '.' as '-')", name, other)
		}
		seen[normalizeHeaderName(name)] = "header " + name
		if _, err := parseHeaderSource(mapped[name]); err != nil {
			return fmt.Errorf("header %q: %v", name, err)
		}
	}
	return nil
}

// UnderPrefix reports whether the header name starts with prefix, as the
// handler compares them.
func UnderPrefix(name, prefix string) bool {
	return NewTrusted(prefix, nil).MatchesPrefix(name)
}

// TrustedNames are the names besides the prefix that no client may send:
// the user headers and the mapped headers.
func TrustedNames(userHeaders []string, mapped map[string]string) []string {
	names := slices.Clone(userHeaders)
	for name := range mapped {
		names = append(names, name)
	}
	return names
}

// ValidHeaderName reports whether s can be (the start of) a header name:
// an HTTP token (RFC 9110).
func ValidHeaderName(s string) bool { return httpguts.ValidHeaderFieldName(s) }
