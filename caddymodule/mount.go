package caddymodule

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// mountPrefix is the path prefix that Caddy stripped from the request
// before it reached the handler, as `handle_path /app/*` or
// `uri strip_prefix /app` do: "/app", in the escaped form the browser
// uses, or "" when nothing was stripped. The handler's own URLs (the login
// page, the forms' actions, the default landing page) are the paths the
// browser sees, so they keep this prefix in front.
//
// It is the original request's path, cleaned as strip_prefix cleans it,
// less the current path, and only when that is a true prefix strip: the
// original path ends with the current one and what is left is a plain
// local path of whole segments. Anything else (another kind of rewrite,
// a path a client shaped to look like a host) is no mount: "". The client
// controls the original path, so the prefix is checked as strictly as a
// redirect target, and whatever is built from it goes through
// safeRedirect's rules too.
func mountPrefix(r *http.Request) string {
	orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok || orig.URL == nil {
		return ""
	}
	return strippedPrefix(orig.URL.EscapedPath(), r.URL.EscapedPath())
}

// strippedPrefix is mountPrefix on escaped paths: the prefix of the
// original path origPath that was stripped to give current, or "".
func strippedPrefix(origPath, current string) string {
	if current == "" || current[0] != '/' || origPath == current {
		return ""
	}
	cleaned := caddyhttp.CleanPath(origPath, true)
	prefix, ok := strings.CutSuffix(cleaned, current)
	if !ok || !validMount(prefix) {
		return ""
	}
	return prefix
}

// validMount reports whether prefix (escaped) can stand in front of a
// local path: "/" and at least one segment, no empty, "." or ".."
// segment however encoded, no encoded '/' or '\', no '\', '?', '#' or
// control character, and valid percent-encoding.
func validMount(prefix string) bool {
	if len(prefix) < 2 || prefix[0] != '/' || len(prefix) > 1024 {
		return false
	}
	if strings.ContainsAny(prefix, "?#\\") || containsFold(prefix, "%2f") || containsFold(prefix, "%5c") {
		return false
	}
	decoded, err := url.PathUnescape(prefix)
	if err != nil {
		return false
	}
	if strings.ContainsFunc(decoded, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\\' }) {
		return false
	}
	for seg := range strings.SplitSeq(decoded[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// home is where a visitor goes when no (safe) redirect target is given:
// the root of the site as the browser sees it, under the mount.
func home(mount string) string { return mount + "/" }
