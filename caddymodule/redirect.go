package caddymodule

import (
	"net/url"
	"strings"
)

// safeRedirect returns target if it is a local path on this site, and "/"
// otherwise. A local path starts with one '/' followed by neither '/' nor
// '\' (which browsers read as a host), and has no scheme, host, user,
// backslash or control character anywhere.
func safeRedirect(target string) string {
	if len(target) < 1 || target[0] != '/' || len(target) > 2048 {
		return "/"
	}
	if len(target) > 1 && (target[1] == '/' || target[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c < ' ' || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	// Nor once decoded: "/%09/x" is harmless to browsers today, but
	// nothing a user needs either.
	if strings.ContainsFunc(u.Path, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\\' }) || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return target
}
