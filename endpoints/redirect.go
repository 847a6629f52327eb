package endpoints

import (
	"net/url"
	"strings"
)

// safeRedirect returns target if it is a local path on this site, and "/"
// otherwise. See localPath.
func safeRedirect(target string) string { return safeRedirectOr(target, "/") }

// safeRedirectOr returns target if it is a local path on this site, and
// fallback (a local path the handler made: the site's home under its
// mount) otherwise.
func safeRedirectOr(target, fallback string) string {
	if localPath(target) {
		return target
	}
	return fallback
}

// LocalPath reports whether target is a local path on this site, the
// only redirect target the endpoints follow. See localPath.
func LocalPath(target string) bool { return localPath(target) }

// localPath reports whether target is a local path on this site: one '/'
// followed by neither '/' nor '\' (which browsers read as a host), and no
// scheme, host, user, backslash or control character anywhere.
func localPath(target string) bool {
	if len(target) < 1 || target[0] != '/' || len(target) > 2048 {
		return false
	}
	if len(target) > 1 && (target[1] == '/' || target[1] == '\\') {
		return false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c < ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return false
	}
	// Nor once decoded: "/%09/x" is harmless to browsers today, but
	// nothing a user needs either.
	return !strings.ContainsFunc(u.Path, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\\' }) && !strings.HasPrefix(u.Path, "//")
}
