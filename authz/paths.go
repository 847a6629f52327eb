package authz

import (
	"net/url"
	"strings"
)

// PlainPath reports whether u's path means the same to every reader: to
// Caddy's path matchers, which clean the decoded path, and to an upstream
// that routes on the raw path (Express, Flask's <path:>, PHP front
// controllers), decodes it once more, reads '\' as '/' or cuts ";params"
// off a segment (Tomcat). A path is plain when it has no dot segment ("."
// or "..", however encoded, with or without ";params"), no encoded '/',
// no '\' (raw or encoded), no control character and no percent-encoding
// left after one decoding (a double-encoded "%252e%252e").
//
// Only a plain path can be public: "/admin/../static/x" matches
// `path /static/*` once cleaned, but the upstream may serve /admin.
func PlainPath(u *url.URL) bool {
	p := u.Path
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < ' ' || c == 0x7f || c == '\\':
			return false
		case c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]):
			return false // still encoded after one decoding
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		if seg == "." || seg == ".." {
			return false
		}
	}
	if u.RawPath != "" && containsFold(u.RawPath, "%2f") {
		return false // an encoded '/' is one segment to Caddy, two to others
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// containsFold reports whether s contains the lower-case ASCII substr in
// any case.
func containsFold(s, substr string) bool {
	for i := 0; i+len(substr) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(substr)], substr) {
			return true
		}
	}
	return false
}

// resourcePath is p with ";params" cut off each segment and runs of '/'
// merged, as Tomcat, Jetty and Spring read it. A trailing slash stays.
func resourcePath(p string) string {
	if !strings.Contains(p, ";") && !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for seg := range strings.SplitSeq(p, "/") {
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		if seg != "" {
			b.WriteByte('/')
			b.WriteString(seg)
		}
	}
	if b.Len() == 0 || p[len(p)-1] == '/' {
		b.WriteByte('/')
	}
	return b.String()
}
