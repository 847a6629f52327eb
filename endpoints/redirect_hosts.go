package endpoints

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/net/idna"

	"github.com/edgesession/edgesession/cookie"
)

// RedirectHosts are the hosts outside this one to which the login and
// logout pages may send a browser back with an absolute URL (a redirect,
// rd or next parameter). An entry is a host name ("app.example.com"),
// or "*." and a domain with at least one dot ("*.example.com"), which
// matches every host under the domain at any depth but never the domain
// itself; either may name a port (":8443"), and a target may have a port
// only if its entry names that one. Compared in lower case, in the ASCII
// (IDNA) form. The zero value allows no host.
type RedirectHosts struct {
	exact    map[string]bool // host[:port]
	suffixes []string        // ".example.com[:port]" split below
	ports    []string        // the port of each suffix ("" for none)
}

// NewRedirectHosts checks and normalizes entries (see RedirectHosts).
func NewRedirectHosts(entries []string) (RedirectHosts, error) {
	var h RedirectHosts
	for _, e := range entries {
		norm, err := NormalizeRedirectHost(e)
		if err != nil {
			return RedirectHosts{}, err
		}
		host, port := splitPort(norm)
		if rest, ok := strings.CutPrefix(host, "*"); ok {
			h.suffixes = append(h.suffixes, rest)
			h.ports = append(h.ports, port)
			continue
		}
		if h.exact == nil {
			h.exact = map[string]bool{}
		}
		h.exact[norm] = true
	}
	return h, nil
}

// NormalizeRedirectHost checks one redirect_hosts entry and returns it in
// lower case and IDNA ASCII form.
func NormalizeRedirectHost(e string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("redirect_hosts %q: %s; want a host name such as app.example.com or *.example.com, with a port only if the targets have one", e, why)
	}
	host, port := splitPort(e)
	if port != "" || strings.HasSuffix(e, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return "", bad("bad port")
		}
	}
	wild := strings.HasPrefix(host, "*.")
	if wild {
		host = host[2:]
	}
	ascii, err := idna.Lookup.ToASCII(host)
	if err != nil || ascii == "" {
		return "", bad("not a host name")
	}
	ascii = strings.ToLower(ascii)
	if !plainHost(ascii) {
		return "", bad("not a host name")
	}
	if wild {
		if !strings.Contains(ascii, ".") {
			return "", bad("a wildcard needs a domain with at least one dot")
		}
		ascii = "*." + ascii
	}
	if port != "" {
		ascii += ":" + port
	}
	return ascii, nil
}

// splitPort cuts ":port" off a host that has one (no IPv6 literals here).
func splitPort(s string) (host, port string) {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// plainHost reports whether h is a lower-case ASCII host name: labels of
// letters, digits and '-', 1 to 63 bytes, not starting or ending with
// '-', at most 253 bytes, no empty label (no leading, trailing or doubled
// dot).
func plainHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// allows reports whether hostport (lower case, plain) is an allowed host.
func (h RedirectHosts) allows(hostport string) bool {
	if h.exact[hostport] {
		return true
	}
	host, port := splitPort(hostport)
	for i, suffix := range h.suffixes {
		if port == h.ports[i] && len(host) > len(suffix) && strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

var errNotAbsolute = errors.New("not an absolute http(s) URL")

// absoluteTarget splits an absolute redirect target into its scheme and
// its authority (host[:port], lower case), or fails: only
// "http://" or "https://" (any case) followed by a plain host name and
// an optional port, then nothing or '/', '?' or '#'; no userinfo, no
// percent-encoding, no backslash, control character, space or non-ASCII
// anywhere.
func absoluteTarget(target string) (scheme, authority string, err error) {
	if len(target) > 2048 {
		return "", "", errNotAbsolute
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "", "", errNotAbsolute
		}
	}
	var rest string
	switch {
	case len(target) > 8 && strings.EqualFold(target[:8], "https://"):
		scheme, rest = "https", target[8:]
	case len(target) > 7 && strings.EqualFold(target[:7], "http://"):
		scheme, rest = "http", target[7:]
	default:
		return "", "", errNotAbsolute
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority = strings.ToLower(rest[:end])
	host, port := splitPort(authority)
	if port != "" || strings.HasSuffix(authority, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return "", "", errNotAbsolute
		}
	}
	if !plainHost(host) {
		return "", "", errNotAbsolute
	}
	if p := rest[end:]; p != "" && p[0] == '/' && len(p) > 1 && (p[1] == '/') {
		return "", "", errNotAbsolute // "https://host//evil": harmless, but nothing a user needs
	}
	return scheme, authority, nil
}

// redirectTarget returns target if the login or logout page of r may
// send the browser there: a local path on this site (localPath), or an
// absolute http(s) URL of this very origin or of an allowed host (see
// RedirectHosts), https unless r itself came over http. Anything else is
// fallback, a local path the handler made.
func (s *Server) redirectTarget(r *http.Request, target, fallback string) string {
	if localPath(target) {
		return target
	}
	if target == "" {
		return fallback
	}
	scheme, authority, err := absoluteTarget(target)
	if err == nil {
		overHTTPS := cookie.CameOverHTTPS(r)
		sameOrigin := strings.EqualFold(authority, r.Host) && (scheme == "https") == overHTTPS
		if sameOrigin || (scheme == "https" || !overHTTPS) && s.c.RedirectHosts.allows(authority) {
			return target
		}
	}
	s.c.Logger.Debug("redirect target refused: neither a local path nor an allowed host", zap.String("target", truncate(target)), s.zapRemoteIP(r))
	return fallback
}

func truncate(s string) string {
	if len(s) > 128 {
		s = s[:128] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
