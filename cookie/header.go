package cookie

import (
	"iter"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// ReplaceSet adds a Set-Cookie line for name, dropping any earlier
// one for the same name, so a response sets the cookie once.
func ReplaceSet(h http.Header, name, line string) {
	lines := h["Set-Cookie"]
	kept := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(l, name+"=") {
			kept = append(kept, l)
		}
	}
	h["Set-Cookie"] = append(kept, line)
}

// Values returns the values of every cookie called name in the
// request, in order. (A browser may send two: one host-only, one for a
// parent domain.)
func Values(r *http.Request, name string) []string {
	return slices.Collect(Each(r, name))
}

// Each yields the values of every cookie called name in the request,
// in order, without collecting them.
func Each(r *http.Request, name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, line := range r.Header["Cookie"] {
			for part := range strings.SplitSeq(line, ";") {
				if n, v := Cut(part); n == name {
					if v = strings.Trim(v, `"`); v != "" && !yield(v) {
						return
					}
				}
			}
		}
	}
}

// Remove removes the cookie called name from the Cookie header and
// keeps every other cookie as it was sent, "; " between them. Lines
// without that cookie are kept as they are; each line that had it costs
// one allocation. A changed line is written in place: the header map is
// written to only when a line is gone.
func Remove(h http.Header, name string) {
	lines, ok := h["Cookie"]
	if !ok {
		return
	}
	kept := 0
	for _, line := range lines {
		if out, _ := without(line, name); out != "" || line == "" {
			lines[kept] = out
			kept++
		}
	}
	switch {
	case kept == len(lines):
	case kept == 0:
		delete(h, "Cookie")
	default:
		clear(lines[kept:])
		h["Cookie"] = lines[:kept]
	}
}

// without returns a line that mentions name rebuilt without the
// cookies called name and without empty parts (changed), and any other
// line as it is.
func without(line, name string) (out string, changed bool) {
	if !strings.Contains(line, name) {
		return line, false
	}
	var b strings.Builder
	for part := range strings.SplitSeq(line, ";") {
		if n, _ := Cut(part); n == name || n == "" {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(line))
		} else {
			b.WriteString("; ")
		}
		b.WriteString(textproto.TrimString(part))
	}
	return b.String(), true
}

// Cut splits one "name=value" part of a Cookie header the way
// net/http reads it: HTTP whitespace trimmed around both, so that
// "caddy_session =x" is the session cookie here as it is to a Go upstream.
func Cut(part string) (name, value string) {
	name, value, _ = strings.Cut(textproto.TrimString(part), "=")
	return textproto.TrimString(name), textproto.TrimString(value)
}

// IsTokenChar reports whether r may appear in a cookie name (an HTTP token,
// RFC 9110).
func IsTokenChar(r rune) bool { return httpguts.IsTokenRune(r) }
